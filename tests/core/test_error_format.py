"""Every API error, whatever its status, has the one JSON format."""

from __future__ import annotations

import pytest
from django.test import Client, override_settings

from apps.users.roles import Role
from tests.conftest import jwt_client


def assert_error(response, status: int, code: str) -> dict:
    assert response.status_code == status
    assert response["Content-Type"].startswith("application/json")
    body = response.json()
    assert set(body) == {"error"}
    assert set(body["error"]) == {"code", "message", "details"}
    assert body["error"]["code"] == code
    assert body["error"]["message"]
    return body["error"]


@pytest.mark.django_db
def test_400(make_user):
    admin = make_user(Role.ADMIN)
    error = assert_error(
        jwt_client(admin).post(f"/api/v1/users/{admin.pk}/role/", {}, format="json"),
        400,
        "invalid",
    )
    assert error["details"] == {"role": ["This field is required."]}


@pytest.mark.django_db
def test_400_unparseable_json(api):
    response = api.post("/api/v1/auth/token/", "{not json", content_type="application/json")
    assert_error(response, 400, "parse_error")


@pytest.mark.django_db
def test_401(api):
    assert_error(api.get("/api/v1/auth/me/"), 401, "not_authenticated")


@pytest.mark.django_db
def test_401_bad_token(api):
    api.credentials(HTTP_AUTHORIZATION="Bearer not.a.jwt")
    assert_error(api.get("/api/v1/auth/me/"), 401, "token_not_valid")


@pytest.mark.django_db
def test_403(make_user):
    assert_error(jwt_client(make_user(Role.VIEWER)).get("/api/v1/users/"), 403, "permission_denied")


@pytest.mark.django_db
def test_404_unknown_object_and_unknown_url(make_user):
    client = jwt_client(make_user())
    assert_error(client.get("/api/v1/organizations/999999/"), 404, "not_found")
    assert_error(client.get("/api/v1/no-such-thing/"), 404, "not_found")


@pytest.mark.django_db
@override_settings(DEBUG=True)
def test_404_unknown_url_even_in_debug(make_user):
    assert_error(jwt_client(make_user()).get("/api/v1/no-such-thing/"), 404, "not_found")


@pytest.mark.django_db
def test_405(make_user):
    error = assert_error(
        jwt_client(make_user()).delete("/api/v1/auth/me/"), 405, "method_not_allowed"
    )
    assert "GET" in error["details"]["allowed"]


@pytest.mark.django_db
def test_409(make_user):
    # A vendor's second node of the same name (sign-up never answers 409: it would tell which
    # organization names exist).
    from apps.users.models import Organization
    from tests.fixtures.fleet import NODE_FIELDS
    from tests.users.factories import OrganizationFactory

    vendor = make_user(
        Role.VENDOR, organization=OrganizationFactory.create(kind=Organization.Kind.VENDOR)
    )
    client = jwt_client(vendor)
    assert client.post("/api/v1/nodes/", NODE_FIELDS, format="json").status_code == 201
    assert_error(client.post("/api/v1/nodes/", NODE_FIELDS, format="json"), 409, "conflict")


@pytest.mark.django_db
def test_429(make_user, monkeypatch):
    from rest_framework.throttling import SimpleRateThrottle

    monkeypatch.setitem(SimpleRateThrottle.THROTTLE_RATES, "user_read", "100/minute")
    client = jwt_client(make_user())
    for _ in range(100):
        client.get("/api/v1/auth/me/")
    error = assert_error(client.get("/api/v1/auth/me/"), 429, "throttled")
    assert error["details"]["retry_after_seconds"] > 0


@pytest.mark.django_db
@override_settings(ROOT_URLCONF="tests.core.urls_errors")
@pytest.mark.parametrize("url", ["/api/v1/test/boom/", "/api/v1/test/plain-boom/"])
def test_500_hides_the_trace(make_user, url):
    client = Client(raise_request_exception=False)
    client.force_login(make_user(), backend="django.contrib.auth.backends.ModelBackend")
    response = client.get(url)
    assert_error(response, 500, "server_error")
    assert b"secret internal detail" not in response.content
    assert b"Traceback" not in response.content


@pytest.mark.django_db
@override_settings(ROOT_URLCONF="tests.core.urls_errors", DEBUG=True)
def test_500_is_json_even_in_debug(make_user):
    client = Client(raise_request_exception=False)
    client.force_login(make_user(), backend="django.contrib.auth.backends.ModelBackend")
    assert_error(client.get("/api/v1/test/plain-boom/"), 500, "server_error")


@pytest.mark.django_db
def test_portal_404_is_html(client):
    response = client.get("/no-such-page/")
    assert response.status_code == 404
    assert b"Page not found" in response.content


@pytest.mark.django_db(transaction=True)  # the fault must not poison a test's outer transaction
@override_settings(ROOT_URLCONF="tests.core.urls_errors")
def test_a_database_fault_is_a_503_to_retry_not_a_500(make_user):
    client = Client(raise_request_exception=False)
    client.force_login(make_user(), backend="django.contrib.auth.backends.ModelBackend")

    api = client.get("/api/v1/test/db-fault/")
    error = assert_error(api, 503, "database_unavailable")
    assert "retry" in error["message"]
    assert api["Retry-After"] == "5"

    page = client.get("/test/db-fault/")
    assert page.status_code == 503 and page["Retry-After"] == "5"
    assert b"back in a moment" in page.content
