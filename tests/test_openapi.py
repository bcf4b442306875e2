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
    client.force_login(make_user(), backend="django.contrib.auth.backends.ModelBackend")
    schema = client.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json")
    assert schema.status_code == 200
    assert schema.json()["info"]["title"] == "Imewe API"
    docs = client.get("/api/docs/")
    assert docs.status_code == 200
    assert b"swagger-ui" in docs.content
    assert b"cdn.jsdelivr" not in docs.content  # assets come from the sidecar package
