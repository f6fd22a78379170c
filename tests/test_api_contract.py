"""The OpenAPI contract's common errors: documented on every operation, answered as the envelope."""

import pytest
from drf_spectacular.generators import SchemaGenerator

from budgets.models import Rule

ERRORS_REF = {"$ref": "#/components/schemas/Errors"}


@pytest.fixture(scope="module")
def schema():
    return SchemaGenerator().get_schema(request=None, public=True)


def operations(schema):
    for path, methods in schema["paths"].items():
        for method, operation in methods.items():
            yield f"{method.upper()} {path}", operation


def test_every_operation_documents_the_errors_any_request_can_meet(schema):
    for name, operation in operations(schema):
        assert {"400", "401", "503"} <= set(operation["responses"]), name
        if "{" in name or any(p["name"] == "project" for p in operation.get("parameters", [])):
            assert "404" in operation["responses"], name
        if "requestBody" in operation:
            assert "415" in operation["responses"], name
            assert list(operation["requestBody"]["content"]) == ["application/json"], name


def test_every_error_status_has_the_envelope_as_its_body(schema):
    for name, operation in operations(schema):
        for status, response in operation["responses"].items():
            if int(status) < 400:
                continue
            body = response["content"]["application/json"]["schema"]
            assert body == ERRORS_REF or ERRORS_REF in body.get("anyOf", []), (name, status, body)
    error = schema["components"]["schemas"]["Error"]
    assert error["required"] == ["code", "field", "message"]


def test_paged_lists_document_their_cursor_and_limit(schema):
    for path in ("/api/v1/rules", "/api/v1/channels", "/api/v1/alerts", "/api/v1/prices"):
        names = {p["name"] for p in schema["paths"][path]["get"]["parameters"]}
        assert {"cursor", "limit"} <= names, path


@pytest.mark.django_db
def test_a_bad_cursor_is_a_400_naming_it(manage_client):
    response = manage_client.get("/api/v1/rules?cursor=not-a-cursor")
    assert response.status_code == 400
    assert response.json()["errors"][0]["field"] == "cursor"


@pytest.mark.django_db
def test_an_id_that_is_no_id_is_a_404_envelope_not_a_page(manage_client):
    for method, url in [("get", "/api/v1/rules/null,null"), ("delete", "/api/v1/channels/x"),
                        ("post", "/api/v1/alerts/-1/ack"), ("get", "/api/v1/no-such-thing")]:
        response = getattr(manage_client, method)(url)
        assert response.status_code == 404, (method, url)
        assert response["Content-Type"] == "application/json", (method, url)
        assert response.json()["errors"][0]["code"] == "not_found", (method, url)


@pytest.mark.django_db
def test_a_form_body_is_a_415_envelope(manage_client):
    rules_before = Rule.objects.count()
    response = manage_client.post("/api/v1/rules", {"kind": "unpriced_traffic"})  # multipart by default
    assert response.status_code == 415
    assert response.json()["errors"][0]["code"] == "unsupported_media_type"
    assert Rule.objects.count() == rules_before


@pytest.mark.django_db
def test_budget_status_refuses_a_name_no_feature_can_have(read_client):
    response = read_client.get("/api/v1/budget-status", {"feature": "ticket triage/\u00e9"})
    assert response.status_code == 400
    assert response.json()["errors"] == [{"field": "feature", "code": "invalid",
                                          "message": "may contain only letters, digits and . _ : -"}]


def test_every_429_and_503_documents_its_retry_after_header(schema):
    answering = 0
    for name, operation in operations(schema):
        for status in {"429", "503"} & set(operation["responses"]):
            headers = operation["responses"][status].get("headers", {})
            assert headers.get("Retry-After", {}).get("schema") == {"type": "integer"}, (name, status)
            assert headers["Retry-After"]["required"] is True, (name, status)
            answering += 1
        for status, response in operation["responses"].items():
            if status not in ("429", "503"):
                assert "Retry-After" not in response.get("headers", {}), (name, status)
    assert answering >= len(list(operations(schema))) + 1  # a 503 everywhere, and the events API's 429


@pytest.mark.django_db
def test_a_real_429_and_503_carry_the_documented_retry_after(schema, settings, project, ingest_client):
    from costwatch.devtools import free_port
    from tests.ingest.helpers import event

    documented = schema["paths"]["/api/v1/events"]["post"]["responses"]
    settings.INGEST_RATE_LIMIT = 1  # a bucket of 1000 events, refilled at one a second
    batch = {"events": [event(f"e{n}") for n in range(1000)]}
    assert ingest_client.post("/api/v1/events", batch, format="json").status_code == 200
    limited = ingest_client.post("/api/v1/events", {"events": [event("one-more")]}, format="json")
    settings.REDIS_URL = f"redis://127.0.0.1:{free_port()}/0"  # the limiter's store is down
    settings.INGEST_RATE_LIMIT_FAIL_OPEN = False
    unavailable = ingest_client.post("/api/v1/events", {"events": [event("later")]}, format="json")
    for response, status in ((limited, 429), (unavailable, 503)):
        assert response.status_code == status
        for header in documented[str(status)]["headers"]:
            assert int(response[header]) >= 1, (status, header)
