"""A designer submits a two-part job from an STL file in a real browser, and sees it reach
COMPLETED while the simulated nodes' work agents make the parts."""

from __future__ import annotations

import asyncio
import threading

import pytest
import trimesh
from playwright.sync_api import expect

from apps.jobs.models import Job
from apps.vendors.services import device_credential_issue
from edge.work_agent import WorkAgent
from tests.e2e.conftest import SHOTS, sign_in
from tests.fixtures.shop import Shop

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def agents(shop: Shop):
    """One work agent per machine, with the machine's device token."""
    tokens = {}
    for key in ("printer_a", "printer_b", "mill"):
        _, tokens[key] = device_credential_issue(node=shop.node(key), by=shop.vendor)
    return tokens


def run_agents(base_url: str, tokens: dict[str, str]) -> None:
    """Each node takes its queued parts and makes them (an hour in a blink)."""

    async def work() -> None:
        for token in tokens.values():
            agent = WorkAgent(base_url, token, speedup=1e6, report_every_s=0.2)
            for part in (await agent.call("GET", ""))["results"]:
                await agent.run_one(part)

    thread = threading.Thread(target=lambda: asyncio.run(work()))
    thread.start()
    thread.join(timeout=120)


def test_designer_submits_a_two_part_job_and_sees_it_completed(
    live_server,
    shop: Shop,
    agents,
    tmp_path,
    browser,
):
    model = tmp_path / "bracket.stl"
    model.write_bytes(trimesh.creation.box(extents=(40, 30, 12)).export(file_type="stl"))
    page = sign_in(browser, live_server.url, shop.designer.email)
    page.get_by_role("navigation", name="Main").get_by_role("link", name="All jobs").click()
    page.get_by_role("button", name="Submit a job").click()  # a link styled as a button
    page.get_by_label("Title").fill("Drone frame")
    page.locator("#id_parts-0-cad_upload").set_input_files(str(model))
    page.locator("#id_parts-0-material").select_option("pla")
    page.locator("#id_parts-0-process").select_option("fdm")
    page.locator("#id_parts-0-quantity").fill("2")
    page.get_by_role("button", name="Add a part").click()
    page.locator("#id_parts-1-name").fill("base plate")
    page.locator("#id_parts-1-material").select_option("steel")
    page.locator("#id_parts-1-process").select_option("milling")
    for axis, value in zip("xyz", ("120", "80", "10"), strict=True):
        page.locator(f"#id_parts-1-size_{axis}_mm").fill(value)
    page.get_by_role("button", name="Check feasibility and estimate").click()
    expect(page.get_by_role("heading", name="Feasibility and estimate")).to_be_visible()
    expect(page.locator("#estimate")).to_contain_text("USD")
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / "job_estimate.png"), full_page=True)
    page.get_by_role("button", name="Confirm and submit").click()
    expect(page.get_by_text("submitted; the scheduler is placing it")).to_be_visible()

    job = Job.objects.get(title="Drone frame")
    assert job.parts.count() == 2 and job.parts.get(name="bracket").size_x_mm == 40
    run_agents(live_server.url, agents)

    page.reload()
    expect(page.locator("#job-status")).to_have_text("Completed")
    expect(page.locator("#parts")).to_contain_text("Printer-")
    expect(page.locator("#parts")).to_contain_text("Mill-A")
    expect(page.get_by_text("Why each part went where it did")).to_be_visible()
    page.screenshot(path=str(SHOTS / "job_completed.png"), full_page=True)
