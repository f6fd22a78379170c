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
