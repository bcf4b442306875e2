from __future__ import annotations

import pytest
from django.test import Client, override_settings

from apps.core.models import AuditLog
from apps.users.roles import Role
from tests.conftest import jwt_client
from tests.factories import PASSWORD

TOKEN_URL = "/api/v1/auth/token/"


@pytest.mark.django_db
def test_authenticated_api_is_throttled_at_100_per_minute(make_user):
    client = jwt_client(make_user())
    statuses = [client.get("/api/v1/auth/me/").status_code for _ in range(100)]
    assert statuses == [200] * 100
    response = client.get("/api/v1/auth/me/")
    assert response.status_code == 429
    body = response.json()["error"]
    assert body["code"] == "throttled"
    assert 0 < body["details"]["retry_after_seconds"] <= 60
    assert "Retry-After" in response.headers


@pytest.mark.django_db
def test_throttle_counts_per_user(make_user):
    first, second = jwt_client(make_user()), jwt_client(make_user())
    for _ in range(100):
        first.get("/api/v1/auth/me/")
    assert first.get("/api/v1/auth/me/").status_code == 429
    assert second.get("/api/v1/auth/me/").status_code == 200


@pytest.mark.django_db
def test_account_locked_after_repeated_failures_even_with_right_password(api, make_user):
    user = make_user(Role.DESIGNER)
    for _ in range(5):
        response = api.post(
            TOKEN_URL, {"email": user.email, "password": "wrong-pass-1"}, format="json"
        )
        assert response.status_code in (401, 429)
    response = api.post(TOKEN_URL, {"email": user.email, "password": PASSWORD}, format="json")
    assert response.status_code == 429
    error = response.json()["error"]
    assert error["code"] == "login_locked"
    assert "15 minutes" in error["message"]
    # Five wrong passwords plus the refused sixth attempt.
    assert AuditLog.objects.filter(action=AuditLog.Action.LOGIN_FAILURE).count() == 6
    assert AuditLog.objects.filter(action=AuditLog.Action.LOGIN_LOCKED).exists()


@pytest.mark.django_db
def test_ip_locked_after_failures_across_accounts(api, make_user):
    victims = [make_user() for _ in range(5)]
    for victim in victims:
        api.post(TOKEN_URL, {"email": victim.email, "password": "guess-guess-1"}, format="json")
    fresh = make_user()
    response = api.post(TOKEN_URL, {"email": fresh.email, "password": PASSWORD}, format="json")
    assert response.status_code == 429
    # Another address is not affected.
    other_ip = api.post(
        TOKEN_URL,
        {"email": fresh.email, "password": PASSWORD},
        format="json",
        REMOTE_ADDR="10.9.8.7",
    )
    assert other_ip.status_code == 200


@pytest.mark.django_db
def test_portal_login_shows_lockout_message(make_user):
    user = make_user()
    client = Client()
    for _ in range(5):
        client.post("/account/login/", {"email": user.email, "password": "bad-password-0"})
    response = client.post("/account/login/", {"email": user.email, "password": PASSWORD})
    assert response.status_code == 429
    assert b"Too many failed logins" in response.content
    assert "_auth_user_id" not in client.session


@pytest.mark.django_db
@override_settings(AXES_COOLOFF_TIME=None)
def test_successful_login_resets_the_failure_count(api, make_user):
    user = make_user()
    for _ in range(4):
        api.post(TOKEN_URL, {"email": user.email, "password": "wrong-pass-1"}, format="json")
    assert (
        api.post(TOKEN_URL, {"email": user.email, "password": PASSWORD}, format="json").status_code
        == 200
    )
    for _ in range(4):
        api.post(TOKEN_URL, {"email": user.email, "password": "wrong-pass-1"}, format="json")
    assert (
        api.post(TOKEN_URL, {"email": user.email, "password": PASSWORD}, format="json").status_code
        == 200
    )
