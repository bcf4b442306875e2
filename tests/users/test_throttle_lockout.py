from __future__ import annotations

import pytest

from tests.conftest import jwt_client


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
