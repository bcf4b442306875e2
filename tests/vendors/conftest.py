"""The vendors' gateway helpers and a hall of three gateways (gateway and rollout tests)."""

from __future__ import annotations

from typing import Any

import pytest
from rest_framework.test import APIClient

from tests.conftest import jwt_client
from tests.fixtures.fleet import Fleet


def gateway_client(token: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Gateway {token}")
    return client


def issue_token(fleet: Fleet, gateway_id: int) -> str:
    response = jwt_client(fleet.vendor).post(f"/api/v1/gateways/{gateway_id}/credentials/")
    assert response.status_code == 201, response.json()
    return response.json()["token"]


@pytest.fixture
def hall(fleet: Fleet) -> dict[str, str]:
    """Three gateways of the vendor at the site, tagged "hall", each with its token."""
    vendor = jwt_client(fleet.vendor)
    tokens: dict[str, str] = {}
    for name in ("gw-a", "gw-b", "gw-c"):
        body = {"name": name, "site": fleet.site.pk, "tags": ["hall"]}
        gateway = vendor.post("/api/v1/gateways/", body).json()
        tokens[name] = issue_token(fleet, gateway["id"])
        pull(tokens[name])  # each runs version 1
        report(tokens[name], 1)
    vendor.post("/api/v1/gateways/", {"name": "elsewhere", "tags": ["yard"]})
    return tokens


def pull(token: str) -> dict[str, Any]:
    response = gateway_client(token).get("/api/v1/gateway/config/")
    assert response.status_code == 200
    return response.json()


def report(token: str, applied: int | None, error: str = "") -> None:
    body: dict[str, Any] = {"applied_version": applied, "error": error, "nodes": {}}
    response = gateway_client(token).post("/api/v1/gateway/status/", body)
    assert response.status_code == 200, response.json()
