"""Every read parameter: a bad value gets a 400 naming that parameter; good ones are echoed."""

import pytest

from tests.factories import make_project


@pytest.fixture
def dims(project):
    project.dimensions = ["customer", "plan"]
    project.save()
    return project


BAD = [
    ("/api/v1/features", {"start": "yesterday"}, "start", "invalid"),
    ("/api/v1/features", {"end": "2026-13-45"}, "end", "invalid"),
    ("/api/v1/features", {"start": "2026-11-01T00:00:00"}, "start", "invalid"),  # no offset
    ("/api/v1/features", {"start": "2026-11-10", "end": "2026-11-10"}, "start", "start_not_before_end"),
    ("/api/v1/features", {"start": "2020-01-01", "end": "2026-11-10"}, "start", "range_too_long"),
    ("/api/v1/features", {"environment": "x" * 51}, "environment", "max_length"),
    ("/api/v1/features", {"attr.colour": "red"}, "attr.colour", "unknown_dimension"),
    ("/api/v1/features", {"attr.customer": ""}, "attr.customer", "blank"),
    ("/api/v1/features", {"attr.customer": "a", "attr.plan": "b"}, "attr.plan", "one_dimension_only"),
    ("/api/v1/models", {"attr.customer": "acme"}, "attr.customer", "not_daily"),
    ("/api/v1/timeseries", {}, "metric", "required"),
    ("/api/v1/timeseries", {"metric": "profit"}, "metric", "invalid_choice"),
    ("/api/v1/timeseries", {"metric": "calls", "granularity": "week"}, "granularity", "invalid_choice"),
    ("/api/v1/timeseries", {"metric": "calls", "group_by": "colour"}, "group_by", "invalid_choice"),
    ("/api/v1/timeseries", {"metric": "calls", "granularity": "hour", "group_by": "customer"}, "group_by",
     "not_daily"),
    ("/api/v1/timeseries", {"metric": "calls", "granularity": "hour", "attr.customer": "acme"}, "attr.customer",
     "not_daily"),
    ("/api/v1/timeseries", {"metric": "calls", "group_by": "tier", "attr.customer": "acme"}, "group_by",
     "not_with_attr"),
    ("/api/v1/timeseries", {"metric": "calls", "feature": "nope"}, "feature", "not_found"),
    ("/api/v1/timeseries", {"metric": "calls", "granularity": "hour", "start": "2026-01-01",
                            "end": "2026-11-01"}, "start", "range_too_long"),
    ("/api/v1/breakdown", {}, "dimension", "required"),
    ("/api/v1/breakdown", {"dimension": "colour"}, "dimension", "unknown_dimension"),
    ("/api/v1/breakdown", {"dimension": "customer", "attr.plan": "pro"}, "attr.plan", "not_with_dimension"),
    ("/api/v1/breakdown", {"dimension": "customer", "feature": "nope"}, "feature", "not_found"),
]


@pytest.mark.django_db
@pytest.mark.parametrize("url, query, field, code", BAD)
def test_a_bad_parameter_gets_a_400_naming_it(read_client, dims, url, query, field, code):
    response = read_client.get(url, query)
    assert response.status_code == 400, response.content
    errors = response.json()["errors"]
    assert (errors[0]["field"], errors[0]["code"]) == (field, code), errors
    assert errors[0]["message"]


@pytest.mark.django_db
def test_dates_are_project_timezone_midnights_and_datetimes_are_floored_to_the_hour(read_client, key_client, user):
    project = make_project("Paris", owner=user, timezone_name="Europe/Paris")
    client = key_client(project, "read")
    body = client.get("/api/v1/features", {"start": "2026-11-01", "end": "2026-11-03T10:30:00+01:00"}).json()
    assert (body["start"], body["end"]) == ("2026-11-01T00:00:00+01:00", "2026-11-03T10:00:00+01:00")
    # an offset whose '+' was not URL-encoded arrives as a space
    body = client.get("/api/v1/features?start=2026-11-01T05:20:00 01:00&end=2026-11-02").json()
    assert body["start"] == "2026-11-01T05:00:00+01:00"
    body = client.get("/api/v1/timeseries", {"metric": "calls", "granularity": "hour",
                                             "start": "2026-11-01T10:45:00Z", "end": "2026-11-01T13:10:00Z"}).json()
    assert (body["start"], body["end"]) == ("2026-11-01T11:00:00+01:00", "2026-11-01T14:00:00+01:00")  # echoed
    assert [p["t"] for p in body["results"]] == ["2026-11-01T10:00:00Z", "2026-11-01T11:00:00Z",
                                                  "2026-11-01T12:00:00Z"]
    assert [p["value"] for p in body["results"]] == [0, 0, 0]


@pytest.mark.django_db
def test_default_range_is_30_days_ending_at_the_next_hour(read_client):
    import datetime as dt

    from django.utils import timezone

    body = read_client.get("/api/v1/timeseries", {"metric": "pro_share", "granularity": "hour"}).json()
    end = dt.datetime.fromisoformat(body["end"])
    now = timezone.now()
    assert now < end <= now + dt.timedelta(hours=1) and end.minute == 0
    assert end - dt.datetime.fromisoformat(body["start"]) == dt.timedelta(days=30)
    assert len(body["results"]) == 720 and all(p["value"] is None for p in body["results"])


@pytest.mark.django_db
def test_schema_generates_without_warnings_for_the_read_api(client):
    from drf_spectacular.drainage import GENERATOR_STATS
    from drf_spectacular.generators import SchemaGenerator

    GENERATOR_STATS.reset()
    schema = SchemaGenerator().get_schema(request=None, public=True)
    for path in ("/api/v1/features", "/api/v1/features/{name}", "/api/v1/timeseries", "/api/v1/models",
                 "/api/v1/breakdown"):
        assert path in schema["paths"]
    warnings = [message for message in GENERATOR_STATS._warn_cache
                if any(view in message for view in ("FeaturesView", "FeatureDetailView", "TimeseriesView",
                                                    "ModelsView", "BreakdownView"))]
    assert warnings == []
    row = schema["components"]["schemas"]["FeatureRow"]["properties"]
    assert row["cost_usd"]["type"] == "string" and row["cost_usd"].get("nullable") is True
