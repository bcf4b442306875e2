from __future__ import annotations

import re

import pytest

from apps.core.models import Notification
from apps.vendors.models import DeviceCredential, FabricationNode
from apps.vendors.services import hash_token
from tests.conftest import portal_client
from tests.fixtures.fleet import Fleet, approved_node, make_node

pytestmark = pytest.mark.django_db

FORM = {
    "vendor": None,
    "name": "Printer-7",
    "kind": "fdm_printer",
    "processes": ["fdm"],
    "materials": ["pla", "petg"],
    "build_x_mm": "250",
    "build_y_mm": "210",
    "build_z_mm": "220",
    "precision_mm": "0.1",
    "rated_power_kw": "0.35",
    "software_version": "klipper 0.12",
    "site": "",
    "latitude": "",
    "longitude": "",
}


def test_vendor_registers_through_the_form(fleet: Fleet):
    client = portal_client(fleet.vendor)
    assert client.get("/vendor/nodes/").status_code == 200
    response = client.post("/vendor/nodes/new/", {**FORM, "vendor": fleet.forge.pk})
    node = FabricationNode.objects.get(name="Printer-7")
    assert response.status_code == 302 and response["Location"] == f"/vendor/nodes/{node.pk}/"
    assert node.materials == ["pla", "petg"] and node.processes == ["fdm"]
    page = client.get(response["Location"])
    assert b"waits for an admin" in page.content and b"Pending approval" in page.content


def test_form_reports_bad_values_and_duplicates(fleet: Fleet):
    client = portal_client(fleet.vendor)
    bad = client.post(
        "/vendor/nodes/new/", {**FORM, "vendor": fleet.forge.pk, "build_x_mm": "-1", "kind": "x"}
    )
    assert bad.status_code == 400
    assert set(bad.context["form"].errors) == {"build_x_mm", "kind"}
    make_node(fleet, name="Printer-7")
    dup = client.post("/vendor/nodes/new/", {**FORM, "vendor": fleet.forge.pk})
    assert dup.status_code == 400 and b"already has a node with this name" in dup.content


def test_rival_vendor_cannot_register_for_forge(fleet: Fleet):
    response = portal_client(fleet.rival).post(
        "/vendor/nodes/new/", {**FORM, "vendor": fleet.forge.pk}
    )
    assert response.status_code == 400  # forge is not among the rival's choices
    assert not FabricationNode.objects.exists()


def test_config_diff_rollback_and_token_shown_once(fleet: Fleet):
    node = approved_node(fleet)
    client = portal_client(fleet.vendor)
    url = f"/vendor/nodes/{node.pk}/"
    client.post(f"{url}config/", {"config": '{"spindle": {"max_rpm": 12000}}', "message": "first"})
    bad = client.post(f"{url}config/", {"config": "{not json"}, follow=True)
    assert b"Not valid JSON" in bad.content
    client.post(f"{url}config/", {"config": '{"spindle": {"max_rpm": 15000}}'})
    page = client.get(f"{url}?from=1&to=2")
    assert b"spindle/max_rpm" in page.content and b"15000" in page.content
    client.post(f"{url}config/1/rollback/")
    assert node.configs.latest("version").config == {"spindle": {"max_rpm": 12000}}

    client.post(f"{url}credentials/", {"label": "gw"})
    first = client.get(url).content.decode()
    found = re.search(r'id="new-token">(imw_[^<]+)<', first)
    assert found, first
    token = found.group(1)
    assert DeviceCredential.objects.get(token_hash=hash_token(token)).is_active
    assert token not in client.get(url).content.decode()  # shown once


def test_other_roles_cannot_use_the_vendor_pages(fleet: Fleet):
    node = approved_node(fleet)
    for who in ("designer", "operator", "viewer"):
        assert portal_client(fleet.user(who)).get(f"/vendor/nodes/{node.pk}/").status_code == 403
    rival = portal_client(fleet.rival)
    page = rival.get(f"/vendor/nodes/{node.pk}/")  # a catalog node: visible, not manageable
    assert page.status_code == 200 and b"Device credentials" not in page.content
    assert rival.post(f"/vendor/nodes/{node.pk}/credentials/").status_code == 403
    assert not DeviceCredential.objects.exists()


def test_admin_approval_queue(fleet: Fleet):
    node = make_node(fleet)
    admin = portal_client(fleet.admin)
    page = admin.get("/ops/approvals/")
    assert node.name.encode() in page.content
    reject = admin.post(
        f"/ops/approvals/{node.pk}/", {"decision": "reject", "comment": ""}, follow=True
    )
    assert b"Say why the node is rejected" in reject.content
    admin.post(f"/ops/approvals/{node.pk}/", {"decision": "approve", "comment": "Checked"})
    node.refresh_from_db()
    assert node.approval == "approved" and node.approved_by == fleet.admin
    assert b"No nodes are waiting" in admin.get("/ops/approvals/").content
    assert portal_client(fleet.operator).get("/ops/approvals/").status_code == 403


def test_vendor_profile_form(fleet: Fleet):
    client = portal_client(fleet.vendor)
    response = client.post(
        "/vendor/profile/",
        {"certifications": "ISO 9001, AS9100", "contact_email": "x@forge.test", "website": ""},
    )
    assert response.status_code == 302
    profile = fleet.forge.vendor_profile
    assert (
        profile.certifications == ["AS9100", "ISO 9001"]
        and profile.verification_status == "pending"
    )
    bad = client.post("/vendor/profile/", {"contact_email": "nope"})
    assert bad.status_code == 400


def test_a_decision_answers_the_admins_awaiting_approval_notices(fleet: Fleet):
    # given: a registration asks every admin to decide
    node = make_node(fleet)
    other = make_node(fleet, name="Mill-9")
    notice = Notification.objects.get(
        user=fleet.admin, title=f"Node awaiting approval: {node.name}"
    )
    assert notice.read_at is None and notice.link == f"/ops/approvals/#node-{node.pk}"
    # when: an admin approves it
    admin = portal_client(fleet.admin)
    admin.post(f"/ops/approvals/{node.pk}/", {"decision": "approve", "comment": ""})
    # then: the notice says what happened, and by whom, and asks nothing any more
    notice.refresh_from_db()
    assert notice.title == f"Node approved: {node.name}"
    decided_by = fleet.admin.full_name or fleet.admin.email
    assert notice.read_at is not None and f"{decided_by} approved it" in notice.body
    page = admin.get("/notifications/").content.decode()
    assert f"Node awaiting approval: {node.name}" not in page
    assert f"Node approved: {node.name}" in page
    # the other node still waits, and says so
    assert f"Node awaiting approval: {other.name}" in page
    rejected = portal_client(fleet.admin).post(
        f"/ops/approvals/{other.pk}/", {"decision": "reject", "comment": "No site survey"}
    )
    assert rejected.status_code == 302
    assert Notification.objects.get(user=fleet.admin, link__endswith=f"#node-{other.pk}").title == (
        f"Node rejected: {other.name}"
    )
