"""The job page's live panels: the fragment the page re-fetches on each live event (the same
partials as the page, with the same access rule) and the `job.panel` event that materials and
energy send once they have recorded a finished part's figures."""

from __future__ import annotations

import re
from typing import Any

import pytest
from asgiref.sync import sync_to_async
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from apps.jobs.services import job_submit, parts_schedule, work_complete, work_start
from tests.conftest import portal_client
from tests.fixtures.shop import Shop
from tests.websockets import ws_open_as

PLA = {"material": "PLA", "process": "fdm", "size_x_mm": 60, "size_y_mm": 40, "size_z_mm": 30}
PANELS = (
    "job-status",
    "job-extra-panels",
    "parts-panel",
    "placement-panel",
    "job-actions",
    "history-panel",
)


def scheduled_job(shop: Shop):
    job = job_submit(by=shop.designer, title="Frame", parts=[{**PLA, "name": "arm"}])
    parts_schedule()
    return job, job.parts.select_related("assigned_node").get()


def panel(html: str, panel_id: str) -> str:
    """The markup of the element with id `panel_id`, nested elements of its tag included."""
    start = re.search(rf'<(\w+)[^>]*\bid="{panel_id}"', html)
    assert start, f"no #{panel_id} in the response"
    tag, depth = start.group(1), 0
    for match in re.finditer(rf"<(/?){tag}\b[^>]*>", html[start.start() :]):
        depth += -1 if match.group(1) else 1
        if depth == 0:
            return html[start.start() : start.start() + match.end()]
    raise AssertionError(f"#{panel_id} is not closed")


@pytest.mark.django_db
def test_the_page_and_its_live_panels_render_the_same_panels(shop: Shop):
    job, _ = scheduled_job(shop)
    client = portal_client(shop.designer)
    page = client.get(f"/jobs/{job.pk}/").content.decode()
    fragment = client.get(f"/jobs/{job.pk}/live-panels/")
    assert fragment.status_code == 200
    html = fragment.content.decode()
    assert "<html" not in html  # a fragment, not a page
    for panel_id in PANELS:
        assert f'id="{panel_id}" data-live-panel' in page
        assert f'id="{panel_id}" data-live-panel' in html
    assert f'data-panels-url="/jobs/{job.pk}/live-panels/"' in page


@pytest.mark.django_db
def test_live_panels_follow_the_part_from_schedule_to_completion(
    shop: Shop, django_capture_on_commit_callbacks
):
    # given: a scheduled part; the owner's panels offer cancelling and explain the placement
    job, part = scheduled_job(shop)
    client = portal_client(shop.designer)
    before = client.get(f"/jobs/{job.pk}/live-panels/").content.decode()
    node = part.assigned_node.name
    assert "Scheduled" in panel(before, "job-status")
    assert node in panel(before, "parts-panel")
    assert "not scheduled yet" not in panel(before, "placement-panel")
    assert f"<td>{node}</td>" in panel(before, "placement-panel")  # among the scored candidates
    assert "Cancel the job" in panel(before, "job-actions")
    assert 'data-live-key="change"' in before
    assert "No part of this job has finished yet" in panel(before, "job-extra-panels")

    # when: the node makes it (usage and energy are recorded once that commits)
    with django_capture_on_commit_callbacks(execute=True):
        work_start(node_id=part.assigned_node_id, part_id=part.pk)
        work_complete(
            node_id=part.assigned_node_id,
            part_id=part.pk,
            quality_score=0.93,
            report={"material_used_g": 41.5, "energy_kwh": 0.8},
        )

    # then: every panel shows the end state, and nothing can be cancelled any more
    after = client.get(f"/jobs/{job.pk}/live-panels/").content.decode()
    assert "Completed" in panel(after, "job-status")
    assert "Completed" in panel(after, "parts-panel") and "0.93" in panel(after, "parts-panel")
    assert "41.5" in panel(after, "job-extra-panels")  # material used
    assert "0.80 kWh" in panel(after, "job-extra-panels")  # energy measured
    assert "Cancel the job" not in after and 'data-live-key="view"' in after
    assert "Completed, quality 0.93" in panel(after, "history-panel")


@pytest.mark.django_db
def test_live_panels_are_refused_like_the_page(shop: Shop, make_user):
    job, part = scheduled_job(shop)
    url = f"/jobs/{job.pk}/live-panels/"
    # another designer, a vendor whose nodes run nothing of it: 404, ids don't leak
    assert portal_client(make_user("designer")).get(url).status_code == 404
    assert portal_client(shop.rival).get(url).status_code == 404
    assert portal_client(shop.designer).get("/jobs/999999/live-panels/").status_code == 404
    # anonymous: to the login page, no fragment
    anonymous = Client().get(url)
    assert anonymous.status_code == 302 and "/account/login/" in anonymous["Location"]
    # a viewer of the team sees the panels but is offered no action
    seen = portal_client(shop.viewer).get(url)
    assert seen.status_code == 200
    assert "Cancel the job" not in seen.content.decode()
    assert 'data-live-key="view"' in seen.content.decode()
    # the vendor whose node makes the part sees it, without the owner's actions
    vendor = portal_client(shop.vendor).get(url)
    assert vendor.status_code == 200 and "Cancel the job" not in vendor.content.decode()


@pytest.mark.asyncio
@pytest.mark.django_db(transaction=True)
async def test_materials_and_energy_announce_their_recorded_figures_to_the_job_page(shop: Shop):
    job, part = await sync_to_async(scheduled_job)(shop)
    ws, connected, _ = await ws_open_as(shop.designer, f"/ws/jobs/{job.pk}/")
    assert connected and (await ws.receive_json_from())["type"] == "snapshot"

    await sync_to_async(work_start)(node_id=part.assigned_node_id, part_id=part.pk)
    await sync_to_async(work_complete)(
        node_id=part.assigned_node_id, part_id=part.pk, quality_score=0.9
    )
    events: list[dict[str, Any]] = []
    while len([e for e in events if e["type"] == "job.panel"]) < 2:
        events.append(await ws.receive_json_from(timeout=5))
    kinds = [e["type"] for e in events]
    panels = {e["panel"] for e in events if e["type"] == "job.panel"}
    assert panels == {"materials", "energy"}
    # announced after the part's completion, so a page re-fetching then shows the figures
    assert kinds.index("job.panel") > kinds.index("job.status")
    assert all(e["job"] == job.pk for e in events if e["type"] == "job.panel")
    await ws.disconnect()


@pytest.mark.django_db
def test_live_panels_cost_the_same_queries_for_one_part_or_ten(shop: Shop):
    # every open page fetches them on each event: no query per part
    counts = []
    for size in (1, 10):
        job = job_submit(
            by=shop.designer,
            title="Frame",
            parts=[{**PLA, "name": f"arm {i}"} for i in range(size)],
        )
        parts_schedule()
        client = portal_client(shop.designer)
        client.get(f"/jobs/{job.pk}/live-panels/")  # the session's first request
        with CaptureQueriesContext(connection) as queries:
            assert client.get(f"/jobs/{job.pk}/live-panels/").status_code == 200
        counts.append(len(queries.captured_queries))
    assert counts[0] == counts[1] <= 18, counts
