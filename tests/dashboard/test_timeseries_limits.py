"""A timeseries answers at most 10,000 points (more: a 400 saying how to narrow it), and
grouping into more than 50 groups keeps the top 50 by value plus one `other` group."""

import datetime as dt

import pytest

from costwatch.metrics import services
from tests.ingest.helpers import event, iso, recent

pytestmark = pytest.mark.django_db
MODELS = 60


@pytest.fixture
def sixty_models(project, ingest_client):
    """Model m-NN gets NN + 1 calls, all in one hour: calls rank the models without ties."""
    when = recent(hours=3)
    events = [event(f"m{m}-{n}", model=f"m-{m:02d}", timestamp=iso(when)) for m in range(MODELS) for n in range(m + 1)]
    for start in range(0, len(events), 1000):
        response = ingest_client.post("/api/v1/events", {"events": events[start:start + 1000]}, format="json")
        assert response.status_code == 200
    services.rollups_refresh_dirty(project=project)
    return when


@pytest.mark.parametrize("granularity", ["hour", "day"])
def test_more_than_50_groups_keep_the_top_50_by_value_and_an_other_group(read_client, sixty_models, granularity):
    start = sixty_models - dt.timedelta(hours=1)
    response = read_client.get("/api/v1/timeseries", {
        "metric": "calls", "granularity": granularity, "group_by": "model", "start": iso(start) if granularity == "hour"
        else start.date().isoformat(), "end": iso(start + dt.timedelta(hours=3)) if granularity == "hour"
        else (start.date() + dt.timedelta(days=2)).isoformat()})
    assert response.status_code == 200, response.content
    totals = {}
    for point in response.json()["results"]:
        totals[point["group"]] = totals.get(point["group"], 0) + point["value"]
    kept = {f"m-{m:02d}": m + 1 for m in range(MODELS - 50, MODELS)}  # the 50 busiest models
    other = sum(m + 1 for m in range(MODELS - 50))
    assert totals == {**kept, "other": other}


def test_a_series_over_10000_points_is_a_400_saying_how_to_narrow_it(read_client, sixty_models):
    end = sixty_models + dt.timedelta(hours=1)
    start = end - dt.timedelta(days=9)  # 216 hours x 51 groups = 11,016 points
    response = read_client.get("/api/v1/timeseries", {"metric": "calls", "granularity": "hour", "group_by": "model",
                                                      "start": iso(start), "end": iso(end)})
    assert response.status_code == 400
    [error] = response.json()["errors"]
    assert (error["field"], error["code"]) == ("start", "too_many_points")
    assert f"{216 * 51} points (216 hours x 51 groups)" in error["message"]
    assert "granularity=day" in error["message"] and "group_by" in error["message"]


def test_a_series_at_the_limit_is_answered(read_client, sixty_models):
    end = sixty_models + dt.timedelta(hours=1)
    start = end - dt.timedelta(hours=196)  # 196 x 51 = 9,996 points
    response = read_client.get("/api/v1/timeseries", {"metric": "calls", "granularity": "hour", "group_by": "model",
                                                      "start": iso(start), "end": iso(end)})
    assert response.status_code == 200 and len(response.json()["results"]) == 196 * 51
