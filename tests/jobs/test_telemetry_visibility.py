"""Designers and engineers watch the telemetry of the nodes running their jobs (the role matrix's
"nodes running their jobs"): a node while it makes, IN PROGRESS, a part of a job of their team;
not before the part starts, not after it is finished or moved, never other nodes, and never the
node's private details. Jobs registers this into telemetry's visibility hook."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from asgiref.sync import sync_to_async
from django.utils import timezone

from apps.jobs.services import job_submit, parts_schedule, work_complete, work_fail, work_start
from apps.telemetry.services import telemetry_ingest
from apps.vendors.models import FabricationNode
from apps.vendors.services import node_transition
from tests.conftest import jwt_client, portal_client
from tests.fixtures.shop import Shop
from tests.websockets import ws_open_as

PLA = {"material": "PLA", "process": "fdm", "size_x_mm": 60, "size_y_mm": 40, "size_z_mm": 30}
PRIVATE_REASON = "recalibrated by Jo after the Z-axis crash"


def running_setup(shop: Shop):
    """A scheduled one-part job and a point from every printer and the mill."""
    job = job_submit(by=shop.designer, title="Frame", parts=[{**PLA, "name": "arm"}])
    parts_schedule()
    part = job.parts.select_related("assigned_node").get()
    at = timezone.now() - timedelta(minutes=1)
    for key in ("printer_a", "printer_b", "mill"):
        telemetry_ingest(
            points=[{"node": shop.node(key).pk, "time": at.isoformat(), "temperature_c": 41.0}],
            node_id=shop.node(key).pk,
        )
    return job, part


def watched(user) -> dict[str, Any]:
    """What `user` may watch, through each way in: latest values (JWT), raw points per node
    (JWT) and the live machines page."""
    api = jwt_client(user)
    latest = api.get("/api/v1/telemetry/latest/")
    assert latest.status_code == 200
    page = portal_client(user).get("/nodes/")
    assert page.status_code == 200
    return {
        "latest": sorted(r["node"] for r in latest.json()["results"]),
        "page": page.content.decode(),
        "api": api,
    }


def points_status(api, node) -> int:
    return api.get(f"/api/v1/telemetry/nodes/{node.pk}/points/").status_code


@pytest.mark.django_db
def test_the_designer_watches_the_node_only_while_it_makes_their_part(shop: Shop, make_user):
    # given: the part is scheduled on a printer, not started
    job, part = running_setup(shop)
    node = part.assigned_node
    others = [shop.node(k) for k in ("printer_a", "printer_b", "mill") if shop.node(k) != node]
    before = watched(shop.designer)
    assert before["latest"] == [] and node.name not in before["page"]
    assert points_status(before["api"], node) == 404

    # when: the node starts it
    work_start(node_id=node.pk, part_id=part.pk)

    # then: that node and no other
    during = watched(shop.designer)
    assert during["latest"] == [node.pk]
    assert node.name in during["page"]
    assert all(other.name not in during["page"] for other in others)
    assert points_status(during["api"], node) == 200
    for other in others:
        assert points_status(during["api"], other) == 404
        asked = during["api"].get(f"/api/v1/telemetry/latest/?nodes={other.pk}").json()
        assert asked["results"] == []
    # an engineer of the same team too; a designer of another team, a viewer and a rival don't
    assert watched(shop.engineer)["latest"] == [node.pk]
    stranger = watched(make_user("designer"))  # another team
    assert stranger["latest"] == [] and node.name not in stranger["page"]
    assert watched(shop.viewer)["latest"] == []
    assert watched(shop.rival)["latest"] == []

    # when: it is done, gone again
    work_complete(node_id=node.pk, part_id=part.pk, quality_score=0.9)
    after = watched(shop.designer)
    assert after["latest"] == [] and node.name not in after["page"]
    assert points_status(after["api"], node) == 404


@pytest.mark.django_db
def test_a_part_moved_off_a_broken_node_takes_the_designers_view_with_it(shop: Shop):
    job, part = running_setup(shop)
    node = part.assigned_node
    work_start(node_id=node.pk, part_id=part.pk)
    assert watched(shop.designer)["latest"] == [node.pk]
    work_fail(node_id=node.pk, part_id=part.pk, reason="nozzle clogged", machine_fault=True)
    # rescheduled (not running anywhere yet): nothing to watch, the broken node included
    assert watched(shop.designer)["latest"] == []
    assert points_status(jwt_client(shop.designer), node) == 404


@pytest.mark.django_db
def test_the_designer_sees_no_private_details_of_the_node(shop: Shop):
    job, part = running_setup(shop)
    node = part.assigned_node
    node_transition(node=node, to=FabricationNode.Status.MAINTENANCE, by=shop.vendor, reason="x")
    node_transition(
        node=node, to=FabricationNode.Status.IDLE, by=shop.vendor, reason=PRIVATE_REASON
    )
    work_start(node_id=node.pk, part_id=part.pk)
    designer_page = portal_client(shop.designer).get(f"/nodes/{node.pk}/live/")
    assert designer_page.status_code == 200
    html = designer_page.content.decode()
    assert node.name in html and "41.00" in html  # the live values, yes
    assert PRIVATE_REASON not in html  # why its status changed: the vendor's business
    vendor_page = portal_client(shop.vendor).get(f"/nodes/{node.pk}/live/").content.decode()
    assert PRIVATE_REASON in vendor_page
    other = shop.mill
    assert portal_client(shop.designer).get(f"/nodes/{other.pk}/live/").status_code == 404


@pytest.mark.asyncio
@pytest.mark.django_db(transaction=True)
async def test_the_designers_live_telemetry_socket_opens_while_running_and_closes_after(
    shop: Shop, settings
):
    settings.WS_RECHECK_SECONDS = 0.05
    job, part = await sync_to_async(running_setup)(shop)
    node_id = part.assigned_node_id
    path = f"/ws/telemetry/?nodes={node_id}"
    _, connected, code = await ws_open_as(shop.designer, path)
    assert not connected and code == 4403  # not started yet

    await sync_to_async(work_start)(node_id=node_id, part_id=part.pk)
    ws, connected, _ = await ws_open_as(shop.designer, path)
    assert connected
    assert await ws.receive_json_from() == {"type": "subscribed", "nodes": [node_id]}
    point = {"node": node_id, "time": timezone.now().isoformat(), "temperature_c": 55.5}
    await sync_to_async(telemetry_ingest)(points=[point], node_id=node_id)
    received = await ws.receive_json_from(timeout=5)
    assert received["node"] == node_id and received["temperature_c"] == 55.5

    await sync_to_async(work_complete)(node_id=node_id, part_id=part.pk, quality_score=0.9)
    close = await ws.receive_close()
    assert close["code"] == 4403
    await ws.disconnect()
