"""Node agents execute parts with their device token: queue, start, progress, complete, fail;
the designer watches it live on /ws/jobs/<id>/ and hears when the job is done."""

from __future__ import annotations

import pytest
from asgiref.sync import sync_to_async
from django.core import mail

from apps.core.models import Notification
from apps.jobs.models import Status
from apps.jobs.services import job_submit, parts_schedule
from apps.vendors.models import FabricationNode
from apps.vendors.services import device_credential_issue
from tests.fixtures.fleet import Fleet
from tests.fixtures.shop import Shop
from tests.websockets import ws_open, ws_open_as

PLA = {"material": "PLA", "process": "fdm", "size_x_mm": 60, "size_y_mm": 40, "size_z_mm": 30}


def device(api, node, fleet: Fleet):
    _, token = device_credential_issue(node=node, by=fleet.vendor)
    api.credentials(HTTP_AUTHORIZATION=f"Device {token}")
    return api


def scheduled_job(shop: Shop, parts):
    job = job_submit(by=shop.designer, title="Frame", parts=parts)
    parts_schedule()
    return job


@pytest.mark.django_db
def test_a_node_runs_its_part_to_completion(shop: Shop, api, django_capture_on_commit_callbacks):
    job = scheduled_job(shop, [{**PLA, "name": "arm"}])
    part = job.parts.get()
    node = part.assigned_node
    agent = device(api, node, shop)

    queue = agent.get("/api/v1/work/parts/").json()["results"]
    assert [p["id"] for p in queue] == [part.pk] and queue[0]["job_title"] == "Frame"
    assert (
        agent.post(f"/api/v1/work/parts/{part.pk}/progress/", {"progress_pct": 5}).status_code
        == 409
    )
    response = agent.post(f"/api/v1/work/parts/{part.pk}/start/")
    assert response.status_code == 200 and response.json()["status"] == "in_progress"
    node.refresh_from_db()
    assert node.status == FabricationNode.Status.EXECUTING
    for pct in (40, 80, 60):  # a late report does not rewind
        agent.post(f"/api/v1/work/parts/{part.pk}/progress/", {"progress_pct": pct})
    part.refresh_from_db()
    assert part.progress_pct == 80
    bad = agent.post(f"/api/v1/work/parts/{part.pk}/complete/", {"quality_score": 1.5})
    assert bad.status_code == 400 and "quality_score" in bad.json()["error"]["details"]
    with django_capture_on_commit_callbacks(execute=True):
        done = agent.post(f"/api/v1/work/parts/{part.pk}/complete/", {"quality_score": 0.97})
    assert done.status_code == 200
    job.refresh_from_db()
    node.refresh_from_db()
    assert job.status == Status.COMPLETED and job.completed_at
    assert node.status == FabricationNode.Status.IDLE
    assert Notification.objects.filter(user=shop.designer, title__contains="completed").exists()
    assert mail.outbox and mail.outbox[-1].to == [shop.designer.email]
    statuses = [h.to_status for h in job.history.filter(part__isnull=True)]
    assert statuses == [
        "submitted",
        "validated",
        "scheduled",
        "assigned",
        "in_progress",
        "completed",
    ]


@pytest.mark.django_db
def test_a_machine_fault_moves_the_part_and_a_part_fault_fails_the_job(shop: Shop, api):
    job = scheduled_job(shop, [{**PLA, "name": "arm"}, {**PLA, "name": "leg"}])
    arm, leg = job.parts.order_by("name")
    agent = device(api, arm.assigned_node, shop)
    agent.post(f"/api/v1/work/parts/{arm.pk}/start/")
    assert agent.post(f"/api/v1/work/parts/{arm.pk}/fail/", {}).status_code == 400
    moved = agent.post(
        f"/api/v1/work/parts/{arm.pk}/fail/", {"reason": "nozzle clogged", "machine_fault": True}
    )
    assert moved.status_code == 200 and moved.json()["status"] == "validated"
    other = device(type(api)(), leg.assigned_node, shop)
    other.post(f"/api/v1/work/parts/{leg.pk}/start/")
    failed = other.post(f"/api/v1/work/parts/{leg.pk}/fail/", {"reason": "warped, 3 mm off"})
    assert failed.json()["status"] == "failed"
    job.refresh_from_db()
    assert job.status == Status.FAILED
    leg.refresh_from_db()
    assert leg.failure_reason == "warped, 3 mm off"


@pytest.mark.django_db
def test_devices_touch_only_their_own_nodes_parts(shop: Shop, api, as_user):
    job = scheduled_job(
        shop,
        [
            {**PLA, "name": "arm"},
            {**PLA, "name": "base", "material": "steel", "process": "milling"},
        ],
    )
    arm = job.parts.get(name="arm")
    mill_agent = device(api, shop.mill, shop)
    assert [p["name"] for p in mill_agent.get("/api/v1/work/parts/").json()["results"]] == ["base"]
    assert mill_agent.post(f"/api/v1/work/parts/{arm.pk}/start/").status_code == 404
    assert mill_agent.post("/api/v1/work/parts/999999/start/").status_code == 404
    # a user token is not a node, whatever the role
    for role in ("admin", "vendor", "designer"):
        assert as_user(shop.user(role)).get("/api/v1/work/parts/").status_code == 403
    from rest_framework.test import APIClient

    assert APIClient().get("/api/v1/work/parts/").status_code == 401


@pytest.mark.django_db
def test_an_assembly_waits_for_the_other_parts(shop: Shop, api):
    from tests.fixtures.shop import ready_node

    station = ready_node(
        shop, name="Assembly-1", kind="robot_cell", processes=["assembly"], materials=["PLA"]
    )
    job = scheduled_job(
        shop, [{**PLA, "name": "arm"}, {**PLA, "name": "kit", "process": "assembly"}]
    )
    arm, kit = job.parts.get(name="arm"), job.parts.get(name="kit")
    assert kit.assigned_node_id == station.pk
    station_agent = device(api, station, shop)
    assert station_agent.get("/api/v1/work/parts/").json()["results"] == []
    assert station_agent.post(f"/api/v1/work/parts/{kit.pk}/start/").status_code == 409
    printer_agent = device(type(api)(), arm.assigned_node, shop)
    printer_agent.post(f"/api/v1/work/parts/{arm.pk}/start/")
    printer_agent.post(f"/api/v1/work/parts/{arm.pk}/complete/", {"quality_score": 0.9})
    queue = station_agent.get("/api/v1/work/parts/").json()["results"]
    assert [p["name"] for p in queue] == ["kit"]
    assert station_agent.post(f"/api/v1/work/parts/{kit.pk}/start/").status_code == 200


async def ws_connect(user, job_id):
    return await ws_open_as(user, f"/ws/jobs/{job_id}/")


@pytest.mark.asyncio
@pytest.mark.django_db(transaction=True)
async def test_the_designer_watches_progress_live_and_strangers_cannot(shop: Shop, make_user):
    job = await sync_to_async(scheduled_job)(shop, [{**PLA, "name": "arm"}])
    part = await sync_to_async(lambda: job.parts.select_related("assigned_node").get())()
    ws, connected, _ = await ws_connect(shop.designer, job.pk)
    assert connected
    snapshot = await ws.receive_json_from()
    assert snapshot["type"] == "snapshot" and snapshot["parts"][0]["status"] == "scheduled"

    from apps.jobs.services import work_progress, work_start

    await sync_to_async(work_start)(node_id=part.assigned_node_id, part_id=part.pk)
    await sync_to_async(work_progress)(
        node_id=part.assigned_node_id, part_id=part.pk, progress_pct=42
    )
    events = [await ws.receive_json_from(timeout=5) for _ in range(5)]
    kinds = [(e["type"], e.get("to") or e.get("progress")) for e in events]
    assert ("part.status", "in_progress") in kinds and ("part.progress", 42.0) in kinds
    assert ("job.status", "in_progress") in kinds
    await ws.disconnect()

    stranger = await sync_to_async(make_user)("designer")
    _, connected, code = await ws_connect(stranger, job.pk)
    assert not connected and code == 4403
    _, connected, code = await ws_connect(shop.designer, 999999)
    assert not connected and code == 4403
    _, connected, code = await ws_open(f"/ws/jobs/{job.pk}/")
    assert not connected and code == 4401


@pytest.mark.asyncio
@pytest.mark.django_db(transaction=True)
async def test_the_job_socket_closes_with_4403_when_the_designer_leaves_the_team(
    shop: Shop, settings
):
    from apps.users.models import Membership

    settings.WS_RECHECK_SECONDS = 0.05
    job = await sync_to_async(scheduled_job)(shop, [{**PLA, "name": "arm"}])
    ws, connected, _ = await ws_connect(shop.designer, job.pk)
    assert connected and (await ws.receive_json_from())["type"] == "snapshot"
    assert await ws.receive_nothing(timeout=0.3)  # re-checks pass while the right holds
    await sync_to_async(Membership.objects.filter(user=shop.designer).delete)()
    close = await ws.receive_close()
    assert close["code"] == 4403 and close["reason"]
    await ws.disconnect()
