"""A node's private details (approval comment, coordinates, software version, who changed its
status and why) are for its vendor company, its site's operators and admins only."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest

from apps.users.models import Organization, User
from apps.users.roles import Role
from apps.vendors.models import FabricationNode
from apps.vendors.services import node_decide, node_register
from tests.conftest import jwt_client, portal_client
from tests.fixtures.fleet import NODE_FIELDS, Fleet, extended, make_node
from tests.users.factories import OrganizationFactory, UserFactory

COMMENT = "Safety certificate checked on site"
REASON = "Bolted down in hall 3"
PRIVATE = ("latitude", "longitude", "software_version", "approval_comment")
SEES_PRIVATE = ["admin", "vendor", "operator"]
SEES_PUBLIC = ["designer", "viewer", "rival", "other_site_operator"]


@dataclass(frozen=True)
class People(Fleet):
    other_site_operator: User


@pytest.fixture
def people(fleet: Fleet) -> People:
    """The fleet and an operator of another site."""
    other_site = OrganizationFactory.create(kind=Organization.Kind.OPERATOR_SITE)
    operator = UserFactory.create(role=Role.OPERATOR, email="op2@f.test", organization=other_site)
    return extended(People, fleet, other_site_operator=operator)


@pytest.fixture
def node(people: People) -> FabricationNode:
    # A viewer who belongs to the node's site organization is still no operator.
    people.viewer.memberships.create(organization=people.site)
    node = make_node(people)
    node.status_log.update(reason=REASON)
    return node_decide(node=node, by=people.admin, approve=True, comment=COMMENT)


def assert_private(body: dict[str, Any]) -> None:
    assert body["private_details"] is True
    assert body["approval_comment"] == COMMENT
    assert (body["latitude"], body["longitude"]) == (6.45, 3.39)
    assert body["software_version"] == "fanuc-31i/4.2"


def assert_public(body: dict[str, Any]) -> None:
    assert body["private_details"] is False
    assert all(body[field] is None for field in PRIVATE), body
    # The public fields are all there.
    assert body["name"] == "Mill-01" and body["vendor_name"] == "Forge"
    assert set(body["processes"]) == {"milling", "drilling"} and body["status"]


@pytest.mark.parametrize("who", SEES_PRIVATE)
def test_api_detail_and_list_show_private_details_to_the_node_s_people(people: People, node, who):
    client = jwt_client(people.user(who))
    assert_private(client.get(f"/api/v1/nodes/{node.pk}/").json())
    listed = client.get("/api/v1/nodes/").json()["results"]
    assert_private(next(n for n in listed if n["id"] == node.pk))


@pytest.mark.parametrize("who", SEES_PUBLIC)
def test_api_detail_and_list_show_others_the_public_fields_only(people: People, node, who):
    client = jwt_client(people.user(who))
    detail = client.get(f"/api/v1/nodes/{node.pk}/")
    assert detail.status_code == 200
    assert_public(detail.json())
    listed = client.get("/api/v1/nodes/").json()["results"]
    assert_public(next(n for n in listed if n["id"] == node.pk))
    assert COMMENT not in detail.content.decode() + str(listed)


def test_one_list_mixes_both_shapes(people: People, node):
    fields = {**NODE_FIELDS, "name": "Rival-1"}
    rival_org = people.rival.memberships.get().organization
    rival_node = node_register(by=people.rival, vendor=rival_org, **fields)
    node_decide(node=rival_node, by=people.admin, approve=True)
    body = jwt_client(people.rival).get("/api/v1/nodes/").json()
    listed = {n["name"]: n for n in body["results"]}
    assert listed["Rival-1"]["private_details"] is True
    assert listed["Rival-1"]["software_version"] == "fanuc-31i/4.2"
    assert_public(listed["Mill-01"])


@pytest.mark.parametrize("who", SEES_PRIVATE)
def test_status_log_names_who_and_why_to_the_node_s_people(people: People, node, who):
    log = jwt_client(people.user(who)).get(f"/api/v1/nodes/{node.pk}/status-log/").json()["results"]
    assert {(e["by_email"], e["reason"]) for e in log} >= {("vendor@f.test", REASON)}


@pytest.mark.parametrize("who", SEES_PUBLIC)
def test_status_log_hides_who_and_why_from_others(people: People, node, who):
    response = jwt_client(people.user(who)).get(f"/api/v1/nodes/{node.pk}/status-log/")
    assert response.status_code == 200
    log = response.json()["results"]
    assert log and all(e["by_email"] is None and e["reason"] is None for e in log)
    assert all(e["to_status"] for e in log)
    assert "vendor@f.test" not in response.content.decode()


PAGE_SECRETS = [COMMENT, "fanuc-31i/4.2", "6.45, 3.39", "vendor@f.test", REASON]


@pytest.mark.parametrize("who", ["admin", "vendor"])
def test_vendor_node_page_shows_private_details_to_the_node_s_people(people: People, node, who):
    response = portal_client(people.user(who)).get(f"/vendor/nodes/{node.pk}/")
    assert response.status_code == 200
    page = response.content.decode()
    assert all(secret in page for secret in PAGE_SECRETS)


@pytest.mark.parametrize("who", SEES_PUBLIC)
def test_vendor_node_page_hides_private_details_from_others(people: People, node, who):
    response = portal_client(people.user(who)).get(f"/vendor/nodes/{node.pk}/")
    page = response.content.decode()
    assert [secret for secret in PAGE_SECRETS if secret in page] == []
    if who == "rival":  # the only one of them the vendor portal lets in
        assert response.status_code == 200 and "Mill-01" in page


def test_operator_of_the_site_keeps_out_of_the_vendor_portal(people: People, node):
    # Operators see the private details through the API and the ops portal, not this page.
    response = portal_client(people.operator).get(f"/vendor/nodes/{node.pk}/")
    assert response.status_code in (302, 403)


@pytest.mark.parametrize("who", ["vendor", "operator", "viewer"])
def test_live_telemetry_page_shows_why_the_status_changed_only_to_the_node_s_people(
    people: People, node, who
):
    # the viewer belongs to the node's site, so may watch its telemetry, but is no operator
    response = portal_client(people.user(who)).get(f"/nodes/{node.pk}/live/")
    assert response.status_code == 200
    assert (REASON in response.content.decode()) is (who in SEES_PRIVATE)
