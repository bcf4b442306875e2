"""API throttles: per signed-in user a budget for reads and a stricter one for writes, counted
apart; signing in and token refresh per address; 429 in the one error format."""

from __future__ import annotations

import pytest
from rest_framework.test import APIClient
from rest_framework.throttling import SimpleRateThrottle

from tests.conftest import jwt_client

pytestmark = pytest.mark.django_db


def test_a_client_polling_every_second_for_a_minute_is_never_refused(make_user):
    # a phone app: its job list, the nodes and its profile, once a second each, for a minute
    client = jwt_client(make_user())
    paths = ["/api/v1/jobs/", "/api/v1/nodes/", "/api/v1/auth/me/"]
    statuses = [client.get(path).status_code for _ in range(60) for path in paths]
    assert statuses == [200] * 180


def test_reads_and_writes_have_budgets_of_their_own(make_user, monkeypatch):
    monkeypatch.setitem(SimpleRateThrottle.THROTTLE_RATES, "user_read", "5/minute")
    monkeypatch.setitem(SimpleRateThrottle.THROTTLE_RATES, "user_write", "3/minute")
    client = jwt_client(make_user())
    writes = [
        client.post("/api/v1/jobs/estimate/", {}, format="json").status_code for _ in range(3)
    ]
    assert writes == [400] * 3  # refused for its body, counted all the same
    refused = client.post("/api/v1/jobs/estimate/", {}, format="json")
    assert refused.status_code == 429
    body = refused.json()["error"]
    assert body["code"] == "throttled"
    assert 0 < body["details"]["retry_after_seconds"] <= 60
    assert "Retry-After" in refused.headers
    # the writes used up their budget, not the reads'
    assert [client.get("/api/v1/auth/me/").status_code for _ in range(5)] == [200] * 5
    assert client.get("/api/v1/auth/me/").status_code == 429


def test_throttle_counts_per_user(make_user, monkeypatch):
    monkeypatch.setitem(SimpleRateThrottle.THROTTLE_RATES, "user_read", "5/minute")
    first, second = jwt_client(make_user()), jwt_client(make_user())
    for _ in range(5):
        first.get("/api/v1/auth/me/")
    assert first.get("/api/v1/auth/me/").status_code == 429
    assert second.get("/api/v1/auth/me/").status_code == 200


def test_token_refresh_is_throttled_per_address(monkeypatch):
    monkeypatch.setitem(SimpleRateThrottle.THROTTLE_RATES, "auth", "3/minute")
    client = APIClient()
    statuses = [
        client.post("/api/v1/auth/token/refresh/", {"refresh": "x"}, format="json").status_code
        for _ in range(4)
    ]
    assert statuses == [401, 401, 401, 429]
    # the same address is refused whatever it asks for next: signing in counts in that budget
    login = client.post(
        "/api/v1/auth/token/", {"email": "a@b.test", "password": "x"}, format="json"
    )
    assert login.status_code == 429
