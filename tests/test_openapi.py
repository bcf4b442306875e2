from __future__ import annotations

import pytest
from django.core.management import call_command


def test_schema_validates_as_openapi3_without_warnings(tmp_path):
    target = tmp_path / "openapi.yaml"
    call_command("spectacular", "--validate", "--fail-on-warn", "--file", str(target))
    text = target.read_text()
    assert text.startswith("openapi: 3")
    assert "/api/v1/auth/token/" in text


@pytest.mark.django_db
def test_schema_and_docs_are_served_to_signed_in_users(client, make_user):
    assert client.get("/api/schema/").status_code == 401
    signed_out = client.get("/api/docs/")  # a person, sent to sign in and back
    assert signed_out.status_code == 302
    assert signed_out["Location"] == "/account/login/?next=/api/docs/"
    client.force_login(make_user(), backend="django.contrib.auth.backends.ModelBackend")
    schema = client.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json")
    assert schema.status_code == 200
    assert schema.json()["info"]["title"] == "Imewe API"
    docs = client.get("/api/docs/")
    assert docs.status_code == 200
    assert b"swagger-ui" in docs.content
    assert b"cdn.jsdelivr" not in docs.content  # assets come from the sidecar package


@pytest.fixture(scope="module")
def document():
    from drf_spectacular.generators import SchemaGenerator

    return SchemaGenerator().get_schema(request=None, public=True)


def test_every_operation_documents_its_errors_in_the_one_error_format(document):
    from apps.core.api import error_body

    error = document["components"]["schemas"]["Error"]
    detail = document["components"]["schemas"]["ErrorDetail"]
    assert set(error["properties"]) == set(error_body("c", "m"))
    assert (
        set(detail["properties"]) == set(error_body("c", "m")["error"]) == set(detail["required"])
    )
    assert detail["properties"]["details"] == {"nullable": True}
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            codes = operation["responses"]
            assert {"401", "403"} <= set(codes), (method, path)
            if "requestBody" in operation:
                assert {"400", "404", "409", "413", "415"} <= set(codes), (method, path)
            if "{" in path:
                assert "404" in codes, (method, path)
            for code, response in codes.items():
                if code.startswith("4") and code != "402":
                    schema = response["content"]["application/json"]["schema"]
                    assert schema == {"$ref": "#/components/schemas/Error"}, (method, path, code)


def test_paginated_lists_document_the_page_past_the_end_and_whole_page_numbers(document):
    listing = document["paths"]["/api/v1/notifications/"]["get"]
    assert "404" in listing["responses"]
    parameters = {p["name"]: p["schema"] for p in listing["parameters"]}
    assert parameters["page"] == {"type": "integer", "minimum": 1}
    assert parameters["page_size"] == {"type": "integer", "minimum": 1}
    assert "404" not in document["paths"]["/api/v1/auth/me/"]["get"]["responses"]


@pytest.mark.parametrize(
    ("component", "field"),
    [
        ("Material", "supplier_name"),
        ("PurchaseOrder", "supplier_name"),
        ("PurchaseOrder", "created_by"),
        ("Twin", "node_name"),
        ("Cap", "max_kw"),
        ("StatusChange", "by_email"),
    ],
)
def test_fields_that_can_be_null_say_so(document, component, field):
    assert document["components"]["schemas"][component]["properties"][field]["nullable"]


def test_the_status_log_enum_holds_the_registration_entry_s_blank_status(document):
    from_status = document["components"]["schemas"]["StatusChange"]["properties"]["from_status"]
    assert {"$ref": "#/components/schemas/BlankEnum"} in from_status["oneOf"]


def test_the_audit_log_action_enum_holds_every_action_written(document):
    actions = document["components"]["schemas"]["ActionEnum"]["enum"]
    assert {"marketplace.purchase", "marketplace.refund", "marketplace.payout"} <= set(actions)
