"""Query parameters of the wrong type or out of range get a 400 naming them, in the one error
format; never a silent default, never a 500."""

from __future__ import annotations

import pytest

from apps.users.roles import Role
from tests.conftest import jwt_client
from tests.core.test_error_format import assert_error


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("query", "name"),
    [
        ("page=abc", "page"),
        ("page=0", "page"),
        ("page=1.5", "page"),
        ("page=last", "page"),
        ("page_size=abc", "page_size"),
        ("page_size=0", "page_size"),
        ("page_size=-3", "page_size"),
    ],
)
def test_pagination_rejects_what_is_not_a_whole_number_from_1(make_user, query, name):
    client = jwt_client(make_user(Role.DESIGNER))
    error = assert_error(client.get(f"/api/v1/notifications/?{query}"), 400, "invalid")
    assert list(error["details"]) == [name]
    assert "whole number" in error["details"][name][0]


@pytest.mark.django_db
def test_pagination_accepts_whole_numbers_and_caps_the_page_size(make_user):
    client = jwt_client(make_user(Role.DESIGNER))
    assert client.get("/api/v1/notifications/?page=1&page_size=2").status_code == 200
    assert client.get("/api/v1/notifications/?page_size=100000").status_code == 200
    assert_error(client.get("/api/v1/notifications/?page=7"), 404, "not_found")  # past the end


@pytest.mark.django_db
@pytest.mark.parametrize("path", ["/api/v1/maintenance/alerts/", "/api/v1/maintenance/tickets/"])
def test_severity_must_be_one_of_the_severities(make_user, path):
    client = jwt_client(make_user(Role.ADMIN))
    error = assert_error(client.get(f"{path}?severity=loud"), 400, "invalid")
    assert list(error["details"]) == ["severity"]
    assert client.get(f"{path}?severity=warning,critical").status_code == 200


@pytest.mark.django_db
def test_status_filters_must_name_known_statuses(make_user):
    client = jwt_client(make_user(Role.ADMIN))
    error = assert_error(client.get("/api/v1/materials/purchase-orders/?status=9"), 400, "invalid")
    assert list(error["details"]) == ["status"]
    assert client.get("/api/v1/materials/purchase-orders/?status=draft,sent").status_code == 200


@pytest.mark.django_db
@pytest.mark.parametrize(
    "path",
    [
        "/api/v1/energy/consumption/?before={}",
        "/api/v1/energy/consumption/summary/?after={}",
        "/api/v1/jobs/?created_after={}",
        "/api/v1/materials/usage/?since={}",
        "/api/v1/audit-log/?until={}",
    ],
)
def test_date_time_filters_take_any_iso_offset(make_user, path):
    # PostgreSQL compares offsets up to 15:59 only; ISO 8601 allows 23:59 (this was a 500).
    client = jwt_client(make_user(Role.ADMIN))
    assert client.get(path.format("2026-01-01T00:00:00%2B18:46")).status_code == 200
    error = assert_error(client.get(path.format("0001-01-01T00:00:00%2B05:00")), 400, "invalid")
    assert "out of range" in str(error["details"])
