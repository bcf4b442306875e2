"""The designer keeps one job page open while the part is scheduled, started, moved off a broken
machine and made on another, and every panel follows without a reload: the status, the node
column, why the part went where it did, material and energy, and the actions on offer.

The scheduling run happens in the test process (the daphne shares this run's channel groups);
the nodes drive the part through the work API on the real daphne with their device tokens."""

from __future__ import annotations

import json
import threading
import urllib.request
from typing import Any

import pytest
from django.db import connection
from playwright.sync_api import expect

from apps.jobs.models import Part
from apps.jobs.services import job_submit, parts_schedule
from apps.vendors.models import FabricationNode
from apps.vendors.services import device_credential_issue, node_transition
from tests.e2e.conftest import SHOTS, sign_in
from tests.fixtures.shop import Shop

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]
PRINTERS = ("printer_a", "printer_b")


@pytest.fixture
def tokens(shop: Shop):
    return {
        shop.node(k).pk: device_credential_issue(node=shop.node(k), by=shop.vendor)[1]
        for k in PRINTERS
    }


@pytest.fixture
def waiting_job(shop: Shop):
    """A one-part PLA job submitted while both printers are in maintenance: validated, not
    placed yet."""
    for key in PRINTERS:
        node_transition(
            node=shop.node(key), to=FabricationNode.Status.MAINTENANCE, by=shop.vendor, reason="oil"
        )
    job = job_submit(
        by=shop.designer,
        title="Drone arm",
        parts=[
            {
                "name": "arm",
                "material": "PLA",
                "process": "fdm",
                "size_x_mm": 60,
                "size_y_mm": 40,
                "size_z_mm": 30,
            }
        ],
    )
    assert job.parts.get().status == "validated"
    return job


def in_thread(fn: Any) -> None:
    """Runs a service outside the browser's thread (Playwright's event loop lives there, and a
    service's broadcast must not run inside it), on a connection of its own."""

    def run() -> None:
        try:
            fn()
        finally:
            connection.close()

    thread = threading.Thread(target=run)
    thread.start()
    thread.join(timeout=60)


def work(server: str, token: str, part_id: int, action: str, **body: Any) -> dict[str, Any]:
    """One call of the node work API, as the node's agent makes it."""
    request = urllib.request.Request(
        f"{server}/api/v1/work/parts/{part_id}/{action}/",
        data=json.dumps(body).encode(),
        headers={"Authorization": f"Device {token}", "Content-Type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.loads(response.read())


def test_every_panel_of_the_job_page_follows_the_part_live(
    shop: Shop,
    tokens,
    waiting_job,
    asgi_server,
    browser,
):
    job = waiting_job
    part = job.parts.get()
    page = sign_in(browser, asgi_server, shop.designer.email)
    page.goto(f"{asgi_server}/jobs/{job.pk}/")
    expect(page.locator("#live-state")).to_have_text("live")
    page.evaluate("window.notReloaded = true")  # gone if anything reloads the page
    row = page.locator(f'#parts tr[data-part="{part.pk}"]')
    node_cell = row.locator('[data-field="node"]')
    placement = page.locator(f'#placement-panel details[data-part="{part.pk}"] summary')
    energy = page.locator(".energy-panel")
    materials = page.locator(".materials-panel")
    cancel = page.get_by_role("button", name="Cancel the job")
    expect(page.locator("#job-status")).to_have_text("Validated")
    expect(node_cell).to_have_text("—")
    expect(cancel).to_be_visible()

    # the printers come back and a scheduling run places the part
    def schedule() -> None:
        for key in PRINTERS:
            node_transition(
                node=shop.node(key), to=FabricationNode.Status.IDLE, by=shop.vendor, reason="ok"
            )
        parts_schedule()

    in_thread(schedule)
    first = Part.objects.select_related("assigned_node").get(pk=part.pk).assigned_node
    assert first is not None
    reason = Part.objects.get(pk=part.pk).placement["reason"]
    expect(page.locator("#job-status")).to_have_text("Scheduled")
    expect(node_cell).to_have_text(first.name)
    expect(placement).to_contain_text(reason)
    expect(page.locator("#placement-panel table")).to_contain_text(first.name)  # the candidates

    # its node starts it and reports progress
    work(asgi_server, tokens[first.pk], part.pk, "start")
    expect(page.locator("#job-status")).to_have_text("In progress")
    expect(row.locator('[data-field="status"]')).to_have_text("In progress")
    work(asgi_server, tokens[first.pk], part.pk, "progress", progress_pct=40)
    expect(row.locator('[data-field="progress-text"]')).to_have_text("40%")

    # the machine breaks: the part moves to the other printer, which the page shows
    work(
        asgi_server, tokens[first.pk], part.pk, "fail", reason="nozzle clogged", machine_fault=True
    )
    second = Part.objects.select_related("assigned_node").get(pk=part.pk).assigned_node
    assert second is not None and second != first
    expect(node_cell).to_have_text(second.name)
    expect(row.locator('[data-field="progress-text"]')).to_have_text("0%")
    expect(placement).to_contain_text(Part.objects.get(pk=part.pk).placement["reason"])
    expect(page.locator("#history-panel")).to_contain_text("machine fault: nozzle clogged")
    expect(page.locator("#job-status")).to_have_text("Scheduled")
    expect(cancel).to_be_visible()

    # the other printer makes it
    work(asgi_server, tokens[second.pk], part.pk, "start")
    work(asgi_server, tokens[second.pk], part.pk, "progress", progress_pct=70)
    expect(row.locator('[data-field="progress-text"]')).to_have_text("70%")
    work(
        asgi_server,
        tokens[second.pk],
        part.pk,
        "complete",
        quality_score=0.93,
        report={"material_used_g": 41.5, "energy_kwh": 0.8},
    )

    # every panel shows the end state, without a reload
    expect(page.locator("#job-status")).to_have_text("Completed")
    expect(page.locator("#live-state")).to_have_text("finished")
    expect(row.locator('[data-field="status"]')).to_have_text("Completed")
    expect(row).to_contain_text("0.93")
    expect(node_cell).to_have_text(second.name)
    expect(materials).to_contain_text("41.5")
    expect(materials.locator(f'tr[data-part="{part.pk}"]')).to_contain_text(second.name)
    expect(energy).to_contain_text("This job: 0.80 kWh")
    expect(energy).to_contain_text("measured for 1 of 1 part")
    expect(cancel).to_have_count(0)
    expect(page.get_by_role("button", name="Change priority")).to_have_count(0)
    expect(page.locator("#history-panel")).to_contain_text("Completed, quality 0.93")
    assert page.evaluate("window.notReloaded") is True
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / "job_live_completed.png"), full_page=True)
