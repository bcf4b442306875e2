"""A printer with a bed-clear step: after each part it waits, holding its next part and taking
no new ones, until someone confirms the bed is clear (node page, API, or the printer itself
through the work API)."""

from __future__ import annotations

import pytest

from apps.jobs.models import Status
from apps.jobs.services import job_submit, parts_schedule
from apps.vendors.models import FabricationNode
from apps.vendors.services import device_credential_issue, node_update
from tests.conftest import jwt_client, portal_client
from tests.fixtures.shop import Shop

PLA = {"material": "PLA", "process": "fdm", "size_x_mm": 60, "size_y_mm": 40, "size_z_mm": 30}


def device(api, node, shop: Shop):
    _, token = device_credential_issue(node=node, by=shop.vendor)
    api.credentials(HTTP_AUTHORIZATION=f"Device {token}")
    return api


@pytest.fixture
def one_printer(shop: Shop):
    """Only printer A makes fdm parts here, and it has a bed-clear step."""
    node_update(node=shop.printer_b, by=shop.vendor, processes=["cnc_milling"])
    node_update(node=shop.printer_a, by=shop.vendor, bed_clear_required=True)
    return shop.printer_a


def print_one(agent, part_id):
    assert agent.post(f"/api/v1/work/parts/{part_id}/start/").status_code == 200
    done = agent.post(f"/api/v1/work/parts/{part_id}/complete/", {"quality_score": 1})
    assert done.status_code == 200


@pytest.mark.django_db
def test_after_a_part_the_printer_waits_for_its_bed_to_be_cleared(shop: Shop, api, one_printer):
    job = job_submit(by=shop.designer, title="Two", parts=[{**PLA, "name": "a"}] * 2)
    parts_schedule()
    first, second = job.parts.order_by("pk")
    assert first.assigned_node == second.assigned_node == one_printer
    agent = device(api, one_printer, shop)
    # given the first part printed
    print_one(agent, first.pk)
    one_printer.refresh_from_db()
    assert one_printer.bed_clear_pending_since is not None
    # then the second waits, says why, and cannot be started
    queue = agent.get("/api/v1/work/parts/").json()["results"]
    assert [p["id"] for p in queue] == [second.pk]
    assert queue[0]["ready"] is False and "the bed to be cleared" in queue[0]["waits_for"]
    refused = agent.post(f"/api/v1/work/parts/{second.pk}/start/")
    assert refused.status_code == 409 and "bed to be cleared" in refused.json()["error"]["message"]
    # and the scheduler gives the printer no new part meanwhile: it waits with the reason
    other = job_submit(by=shop.designer, title="Later", parts=[{**PLA, "name": "c"}])
    parts_schedule()
    waiting = other.parts.get()
    assert waiting.assigned_node is None and waiting.status == Status.VALIDATED
    skipped = waiting.placement["skipped"]
    assert "its bed waits to be cleared" in str(skipped), skipped
    # when the vendor confirms the bed is clear (API)
    cleared = jwt_client(shop.vendor).post(f"/api/v1/nodes/{one_printer.pk}/bed-clear/")
    assert cleared.status_code == 200 and cleared.json()["bed_clear_pending_since"] is None
    # then the second part may start, and new work comes to the printer again
    assert agent.get("/api/v1/work/parts/").json()["results"][0]["ready"] is True
    parts_schedule()
    waiting.refresh_from_db()
    assert waiting.assigned_node == one_printer
    # a second confirmation has nothing to confirm
    again = jwt_client(shop.vendor).post(f"/api/v1/nodes/{one_printer.pk}/bed-clear/")
    assert again.status_code == 409
    assert again.json()["error"]["message"] == "The bed is not waiting to be cleared."


@pytest.mark.django_db
def test_only_the_vendor_site_operators_or_the_printer_may_confirm(shop: Shop, api, one_printer):
    job = job_submit(by=shop.designer, title="One", parts=[{**PLA, "name": "a"}])
    parts_schedule()
    agent = device(api, one_printer, shop)
    print_one(agent, job.parts.get().pk)
    url = f"/api/v1/nodes/{one_printer.pk}/bed-clear/"
    for who in ("designer", "rival", "viewer"):
        response = jwt_client(shop.user(who)).post(url)
        assert response.status_code in (403, 404), who
    one_printer.refresh_from_db()
    assert one_printer.bed_clear_pending_since is not None
    # the printer itself (a part ejector) may, with its device token
    response = agent.post("/api/v1/work/bed-clear/")
    assert response.status_code == 200
    one_printer.refresh_from_db()
    assert one_printer.bed_clear_pending_since is None
    assert agent.post("/api/v1/work/bed-clear/").status_code == 409
    # people cannot use the device endpoint
    assert jwt_client(shop.vendor).post("/api/v1/work/bed-clear/").status_code == 403


@pytest.mark.django_db
def test_a_printer_without_the_step_goes_straight_on(shop: Shop, api):
    node_update(node=shop.printer_b, by=shop.vendor, processes=["cnc_milling"])
    job = job_submit(by=shop.designer, title="Two", parts=[{**PLA, "name": "a"}] * 2)
    parts_schedule()
    first, second = job.parts.order_by("pk")
    agent = device(api, first.assigned_node, shop)
    print_one(agent, first.pk)
    assert first.assigned_node_id is not None
    node = FabricationNode.objects.get(pk=first.assigned_node_id)
    assert node.bed_clear_pending_since is None
    assert agent.get("/api/v1/work/parts/").json()["results"][0]["ready"] is True


@pytest.mark.django_db
def test_the_node_page_shows_the_wait_and_confirms(shop: Shop, api, one_printer):
    job = job_submit(by=shop.designer, title="One", parts=[{**PLA, "name": "a"}])
    parts_schedule()
    print_one(device(api, one_printer, shop), job.parts.get().pk)
    browser = portal_client(shop.vendor)
    page = browser.get(f"/vendor/nodes/{one_printer.pk}/").content.decode()
    assert "The bed waits to be cleared" in page and "The bed is clear" in page
    response = browser.post(f"/vendor/nodes/{one_printer.pk}/bed-clear/")
    assert response.status_code == 302
    one_printer.refresh_from_db()
    assert one_printer.bed_clear_pending_since is None
    page = browser.get(f"/vendor/nodes/{one_printer.pk}/").content.decode()
    assert "The bed waits to be cleared" not in page
    assert "Bed confirmed clear" in page
