from __future__ import annotations

import pytest

from apps.core.models import AuditLog, Notification
from apps.vendors.models import FabricationNode, NodeStatusChange
from tests.conftest import jwt_client
from tests.fixtures.fleet import NODE_FIELDS, Fleet, approved_node, make_node

pytestmark = pytest.mark.django_db


def test_vendor_registers_a_pending_node_and_admins_are_told(fleet: Fleet):
    response = jwt_client(fleet.vendor).post("/api/v1/nodes/", NODE_FIELDS, format="json")
    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["status"] == "registered" and body["approval"] == "pending"
    assert body["vendor"] == fleet.forge.pk and body["materials"] == ["aluminium_6061", "steel"]
    assert Notification.objects.filter(user=fleet.admin, title__contains="Mill-01").exists()
    assert NodeStatusChange.objects.get(node_id=body["id"]).by == fleet.vendor
    assert AuditLog.objects.filter(
        action="object.create", object_type="vendors.fabricationnode"
    ).exists()


@pytest.mark.parametrize("who", ["designer", "engineer", "viewer", "operator"])
def test_roles_without_node_rights_cannot_register(fleet: Fleet, who):
    response = jwt_client(fleet.user(who)).post(
        "/api/v1/nodes/", {**NODE_FIELDS, "vendor": fleet.forge.pk}, format="json"
    )
    assert response.status_code in (400, 403)
    assert not FabricationNode.objects.exists()


def test_vendor_cannot_register_for_another_vendor(fleet: Fleet):
    response = jwt_client(fleet.rival).post(
        "/api/v1/nodes/", {**NODE_FIELDS, "vendor": fleet.forge.pk}, format="json"
    )
    assert response.status_code == 403


def test_bad_node_input_is_reported_per_field(fleet: Fleet):
    bad = {
        **NODE_FIELDS,
        "kind": "teleporter",
        "build_x_mm": -5,
        "latitude": 123,
        "processes": "milling",
    }
    response = jwt_client(fleet.vendor).post("/api/v1/nodes/", bad, format="json")
    assert response.status_code == 400
    assert set(response.json()["error"]["details"]) >= {"kind", "processes"}
    bad = {**NODE_FIELDS, "build_x_mm": -5, "latitude": 123}
    response = jwt_client(fleet.vendor).post("/api/v1/nodes/", bad, format="json")
    assert response.status_code == 400
    assert set(response.json()["error"]["details"]) == {"build_x_mm", "latitude"}


def test_duplicate_name_is_409(fleet: Fleet):
    make_node(fleet)
    response = jwt_client(fleet.vendor).post("/api/v1/nodes/", NODE_FIELDS, format="json")
    assert response.status_code == 409


def test_visibility_by_role(fleet: Fleet):
    pending = make_node(fleet, name="Pending-1")
    live = approved_node(fleet, name="Live-1")
    approved_node(fleet, name="Shared-1")

    def seen(who: str) -> set[str]:
        body = jwt_client(fleet.user(who)).get("/api/v1/nodes/").json()
        return {n["name"] for n in body["results"]}

    assert seen("admin") == {"Pending-1", "Live-1", "Shared-1"}
    assert seen("vendor") == {"Pending-1", "Live-1", "Shared-1"}
    assert seen("operator") == {"Pending-1", "Live-1", "Shared-1"}  # all stand at their site
    assert seen("designer") == {"Live-1", "Shared-1"}  # the approved catalog only
    assert seen("rival") == {"Live-1", "Shared-1"}
    assert jwt_client(fleet.designer).get(f"/api/v1/nodes/{pending.pk}/").status_code == 404
    assert (
        jwt_client(fleet.rival)
        .patch(f"/api/v1/nodes/{live.pk}/", {"software_version": "x"}, format="json")
        .status_code
        == 403
    )


def test_only_admin_approves_and_rejection_needs_a_comment(fleet: Fleet):
    node = make_node(fleet)
    url = f"/api/v1/nodes/{node.pk}/approval/"
    for who in ("vendor", "operator", "designer"):
        assert (
            jwt_client(fleet.user(who)).post(url, {"approve": True}, format="json").status_code
            == 403
        )
    admin = jwt_client(fleet.admin)
    assert admin.get("/api/v1/nodes/pending/").json()["count"] == 1
    missing = admin.post(url, {"approve": False}, format="json")
    assert missing.status_code == 400 and "comment" in missing.json()["error"]["details"]
    done = admin.post(url, {"approve": False, "comment": "No safety certificate"}, format="json")
    assert done.json()["approval"] == "rejected"
    assert Notification.objects.filter(user=fleet.vendor, title__contains="rejected").exists()
    again = admin.post(url, {"approve": True}, format="json")
    assert again.status_code == 409
    assert admin.get("/api/v1/nodes/pending/").json()["count"] == 0


def test_lifecycle_only_allowed_transitions_recorded(fleet: Fleet):
    node = make_node(fleet)
    vendor = jwt_client(fleet.vendor)
    url = f"/api/v1/nodes/{node.pk}/transition/"
    # Not configured yet, so not idle; and CONFIGURED needs a saved config.
    skip = vendor.post(url, {"to": "idle", "reason": "try"}, format="json")
    assert skip.status_code == 409 and skip.json()["error"]["details"] == {
        "from": "registered",
        "to": "idle",
    }
    assert vendor.post(url, {"to": "configured", "reason": "r"}, format="json").status_code == 409
    vendor.post(
        f"/api/v1/nodes/{node.pk}/configs/",
        {"config": {"spindle": {"max_rpm": 12000}}},
        format="json",
    )
    node.refresh_from_db()
    assert node.status == "configured"  # saving the first config configures it
    unapproved = vendor.post(url, {"to": "idle", "reason": "ready"}, format="json")
    assert unapproved.status_code == 409 and "approved" in unapproved.json()["error"]["message"]
    jwt_client(fleet.admin).post(
        f"/api/v1/nodes/{node.pk}/approval/", {"approve": True}, format="json"
    )
    assert (
        vendor.post(url, {"to": "idle", "reason": "ready"}, format="json").json()["status"]
        == "idle"
    )
    no_reason = vendor.post(url, {"to": "maintenance", "reason": ""}, format="json")
    assert no_reason.status_code == 400
    log = vendor.get(f"/api/v1/nodes/{node.pk}/status-log/").json()["results"]
    assert [(e["from_status"], e["to_status"]) for e in log] == [
        ("configured", "idle"),
        ("registered", "configured"),
        ("", "registered"),
    ]
    assert log[0]["by_email"] == "vendor@f.test" and log[0]["reason"] == "ready"


def test_operator_moves_operated_nodes_between_idle_and_maintenance_only(fleet: Fleet):
    node = approved_node(fleet)
    vendor, operator = jwt_client(fleet.vendor), jwt_client(fleet.operator)
    vendor.post(f"/api/v1/nodes/{node.pk}/configs/", {"config": {"a": 1}}, format="json")
    vendor.post(
        f"/api/v1/nodes/{node.pk}/transition/", {"to": "idle", "reason": "up"}, format="json"
    )
    url = f"/api/v1/nodes/{node.pk}/transition/"
    assert (
        operator.post(url, {"to": "maintenance", "reason": "belt"}, format="json").status_code
        == 200
    )
    assert (
        operator.post(url, {"to": "decommissioned", "reason": "x"}, format="json").status_code
        == 403
    )
    assert operator.post(url, {"to": "idle", "reason": "fixed"}, format="json").status_code == 200
    assert (
        jwt_client(fleet.rival)
        .post(url, {"to": "maintenance", "reason": "x"}, format="json")
        .status_code
        == 403
    )


def test_config_versions_diff_and_rollback(fleet: Fleet):
    node = make_node(fleet)
    vendor = jwt_client(fleet.vendor)
    url = f"/api/v1/nodes/{node.pk}/configs/"
    vendor.post(
        url,
        {"config": {"spindle": {"max_rpm": 12000, "coolant": True}}, "message": "initial"},
        format="json",
    )
    vendor.post(
        url, {"config": {"spindle": {"max_rpm": 15000}, "probe": "renishaw"}}, format="json"
    )
    same = vendor.post(
        url, {"config": {"spindle": {"max_rpm": 15000}, "probe": "renishaw"}}, format="json"
    )
    assert same.status_code == 409
    diff = vendor.get(f"{url}diff/?from=1&to=2").json()["changes"]
    assert diff == [
        {"path": "probe", "op": "added", "old": None, "new": "renishaw"},
        {"path": "spindle/coolant", "op": "removed", "old": True, "new": None},
        {"path": "spindle/max_rpm", "op": "changed", "old": 12000, "new": 15000},
    ]
    rolled = vendor.post(f"{url}1/rollback/")
    assert rolled.status_code == 201
    assert rolled.json()["version"] == 3 and rolled.json()["rolled_back_from"] == 1
    versions = vendor.get(url).json()
    assert [v["version"] for v in versions] == [3, 2, 1]
    assert versions[0]["config"] == versions[2]["config"]
    assert vendor.get(f"{url}diff/?from=1&to=9").status_code == 404
    assert jwt_client(fleet.operator).get(url).status_code == 403
    assert jwt_client(fleet.designer).get(url).status_code == 404  # pending: not even visible


def test_device_credentials_issue_rotate_revoke(fleet: Fleet):
    node = make_node(fleet)
    vendor = jwt_client(fleet.vendor)
    url = f"/api/v1/nodes/{node.pk}/credentials/"
    assert vendor.post(url, {}, format="json").status_code == 409  # not approved yet
    jwt_client(fleet.admin).post(
        f"/api/v1/nodes/{node.pk}/approval/", {"approve": True}, format="json"
    )
    first = vendor.post(url, {"label": "gateway-1"}, format="json").json()
    assert first["token"].startswith("imw_") and len(first["token"]) > 40
    listed = vendor.get(url).json()
    assert "token" not in listed[0] and first["token"] not in str(listed)
    second = vendor.post(url, {"label": "gateway-1b"}, format="json").json()
    states = {c["id"]: c["active"] for c in vendor.get(url).json()}
    assert states == {first["credential"]["id"]: False, second["credential"]["id"]: True}
    revoked = vendor.post(f"{url}{second['credential']['id']}/revoke/")
    assert revoked.json()["active"] is False
    assert jwt_client(fleet.rival).get(url).status_code == 403
    assert jwt_client(fleet.operator).post(url, {}, format="json").status_code == 403


def test_vendor_profile_edit_and_verification(fleet: Fleet):
    url = f"/api/v1/vendors/{fleet.forge.pk}/profile/"
    vendor = jwt_client(fleet.vendor)
    body = vendor.patch(
        url, {"certifications": ["ISO 9001"], "contact_email": "ops@forge.test"}, format="json"
    ).json()
    assert body["verification_status"] == "pending" and body["certifications"] == ["ISO 9001"]
    assert (
        jwt_client(fleet.rival).patch(url, {"description": "hacked"}, format="json").status_code
        == 403
    )
    assert (
        vendor.post(
            f"/api/v1/vendors/{fleet.forge.pk}/verify/", {"verified": True}, format="json"
        ).status_code
        == 403
    )
    ok = jwt_client(fleet.admin).post(
        f"/api/v1/vendors/{fleet.forge.pk}/verify/", {"verified": True}, format="json"
    )
    assert ok.json()["verification_status"] == "verified"
    bad = vendor.patch(url, {"contact_email": "not-mail"}, format="json")
    assert bad.status_code == 400 and "contact_email" in bad.json()["error"]["details"]
