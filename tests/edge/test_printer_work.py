"""Parts made on printers through the gateway's printer work agent, end to end: the platform
(live server) assigns a job's parts to a printer node, the gateway fetches each part's G-code,
uploads it to the printer, starts it and reports progress and the outcome from the printer's
own state. A real OctoPrint with its virtual printer; Moonraker and PrusaLink simulators for
what is hard to make a real printer do on cue (an error, a cancel at the printer)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from typing import Any

import pytest
from channels.db import database_sync_to_async
from django.utils import timezone

from apps.jobs.models import Part, Status
from apps.jobs.services import cad_file_upload, job_cancel, job_submit, parts_schedule
from apps.telemetry.models import TelemetryPoint
from apps.vendors.services import device_credential_issue, node_update
from edge.gateway import Gateway, from_config
from edge.simulators.moonraker import MoonrakerSimulator
from edge.simulators.printers import SimulatedPrinter
from edge.simulators.prusalink import PrusaLinkSimulator
from edge.sources.printer_work import PrinterWorkAgent, file_name
from tests.conftest import jwt_client
from tests.edge.octoprint import octoprint_server
from tests.fixtures.fleet import Fleet
from tests.fixtures.shop import PRINTER, ready_node
from tests.jobs.test_gcode_parts import sliced
from tests.materials.factories import SpoolFactory


def printer_node(fleet: Fleet, name: str):
    node = ready_node(fleet, **{**PRINTER, "name": name})
    _, token = device_credential_issue(node=node, by=fleet.vendor)
    return node, token


def submit(fleet: Fleet, *files: tuple[str, bytes]):
    parts = []
    for name, data in files:
        cad = cad_file_upload(by=fleet.designer, name=name, data=data)
        parts.append({"material": "PLA", "process": "fdm", "cad_file": cad.pk})
    job = job_submit(by=fleet.designer, title="Printed", parts=parts)
    parts_schedule()
    return job


def gateway_config(live_server, tmp_path, node, token, device: dict[str, Any]) -> dict:
    return {
        "upstream": {"url": live_server.url},
        "buffer": {"path": str(tmp_path / "edge.sqlite3")},
        "forward_every_s": 0.5,
        "devices": [
            {"node": node.pk, "token": token, "interval_ms": 500, "work": {}, **device},
        ],
    }


def run_until(config: dict, done: Callable[[], bool], within_s: float) -> Gateway:
    """Runs the gateway until `done()` (checked against the database in a thread that gives its
    connection back) is true."""

    logging.getLogger("edge").setLevel(logging.INFO)  # what the agent did, if a test fails

    async def main() -> Gateway:
        gateway = from_config(config)
        for agent in gateway.agents:
            assert isinstance(agent, PrinterWorkAgent)
            agent.poll_every_s = agent.report_every_s = 0.3
        task = asyncio.create_task(gateway.run())
        deadline = time.monotonic() + within_s
        try:
            while not await database_sync_to_async(done, thread_sensitive=False)():
                assert not task.done(), task.exception()
                assert time.monotonic() < deadline, "the gateway did not get there in time"
                await asyncio.sleep(0.3)
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        return gateway

    return asyncio.run(main())


def statuses(job) -> list[str]:
    return list(Part.objects.filter(job=job).order_by("pk").values_list("status", flat=True))


def test_a_job_printed_on_the_real_octoprint_with_a_bed_clear_between_parts(
    live_server, fleet: Fleet, tmp_path
):
    # given a printer node with a bed-clear step whose gateway speaks to a real OctoPrint, and
    # a two-part job
    node, token = printer_node(fleet, "OctoPrint-1")
    node_update(node=node, by=fleet.vendor, bed_clear_required=True)
    job = submit(fleet, ("left.gcode", sliced(30, 20, 2)), ("right.gcode", sliced(20, 30, 2)))
    assert {p.assigned_node_id for p in job.parts.all()} == {node.pk}
    held: dict[str, Any] = {}

    def clear_the_bed_once_then_wait_for_both() -> bool:
        parts = list(job.parts.order_by("pk"))
        done = [p for p in parts if p.status == Status.COMPLETED]
        node.refresh_from_db()
        if len(done) == 1 and "cleared_at" not in held and node.bed_clear_pending_since:
            waiting = next(p for p in parts if p.status != Status.COMPLETED)
            assert waiting.status != Status.IN_PROGRESS, "started before the bed was cleared"
            held.setdefault("since", time.monotonic())
            if time.monotonic() - held["since"] > 3:  # ~10 polls of the agent meanwhile
                response = jwt_client(fleet.vendor).post(f"/api/v1/nodes/{node.pk}/bed-clear/")
                assert response.status_code == 200, response.content
                held["cleared_at"] = timezone.now()
        return len(done) == 2 or any(p.status == Status.FAILED for p in parts)

    with octoprint_server(tmp_path / "octoprint") as octoprint:
        config = gateway_config(
            live_server,
            tmp_path,
            node,
            token,
            {"protocol": "octoprint", "url": octoprint.url, "api_key": octoprint.api_key},
        )
        # when the gateway runs, and the vendor confirms the bed clear after the first part
        gateway = run_until(config, clear_the_bed_once_then_wait_for_both, 240)
        files = octoprint.call("GET", "/api/files/local")
    # then both were printed, the second only after the bed was cleared, and the job is done
    job.refresh_from_db()
    assert statuses(job) == [Status.COMPLETED, Status.COMPLETED], [
        p.failure_reason for p in job.parts.all()
    ]
    assert job.status == Status.COMPLETED
    agent = gateway.agents[0]
    assert isinstance(agent, PrinterWorkAgent)
    assert not agent.failed
    first, second = job.parts.order_by("started_at")
    assert first.finished_at < held["cleared_at"] <= second.started_at
    assert all(p.quality_score == 1.0 and p.progress_pct == 100.0 for p in (first, second))
    node.refresh_from_db()
    assert node.bed_clear_pending_since is not None  # the second part is on the bed now
    # OctoPrint holds the files the gateway uploaded, byte for byte what the designer gave
    assert isinstance(files, dict)
    uploaded = {f["name"]: f["size"] for f in files["files"]}
    for part in (first, second):
        assert uploaded[file_name(part.pk)] == part.cad_file.size_bytes
    # and the printer's telemetry reached the platform, printing while the parts ran
    points = TelemetryPoint.objects.filter(node=node)
    assert points.exists()
    assert points.filter(extra__printing=1.0).exists()


@pytest.fixture
def moonraker():
    sim = MoonrakerSimulator(SimulatedPrinter(seconds_per_line=0.1)).start()
    yield sim
    sim.stop()


def moonraker_device(sim: MoonrakerSimulator) -> dict[str, Any]:
    return {"protocol": "moonraker", "url": sim.url}


def test_a_cancel_at_the_printer_fails_the_part_with_that_reason(
    live_server, fleet: Fleet, tmp_path, moonraker
):
    node, token = printer_node(fleet, "Voron-1")
    job = submit(fleet, ("a.gcode", sliced(30, 20, 2)))
    part = job.parts.get()

    def cancel_when_printing() -> bool:
        with moonraker.printer.lock:
            moonraker.printer.advance()
            if (
                moonraker.printer.state == "printing"
                and (moonraker.printer.progress_pct() or 0) > 30
            ):
                moonraker.printer.cancel()
        part.refresh_from_db()
        return part.status == Status.FAILED

    config = gateway_config(live_server, tmp_path, node, token, moonraker_device(moonraker))
    run_until(config, cancel_when_printing, 120)
    assert part.failure_reason == "The print was cancelled at the printer."
    assert 0 < part.progress_pct < 100  # progress was reported while it ran


def test_a_printer_error_is_a_machine_fault_and_the_part_moves(
    live_server, fleet: Fleet, tmp_path, moonraker
):
    node, token = printer_node(fleet, "Voron-1")
    spare, _ = printer_node(fleet, "Voron-2")
    job = submit(fleet, ("a.gcode", sliced(30, 20, 2)))
    part = job.parts.get()
    if part.assigned_node_id != node.pk:  # the scheduler's choice; make the gateway's node hold it
        node, spare = spare, node
        _, token = device_credential_issue(node=node, by=fleet.vendor)

    def fault_when_printing() -> bool:
        if moonraker.printer.state == "printing":
            moonraker.printer.fault("MCU 'mcu' shutdown: Timer too close")
        part.refresh_from_db()
        return part.assigned_node_id != node.pk

    config = gateway_config(live_server, tmp_path, node, token, moonraker_device(moonraker))
    run_until(config, fault_when_printing, 120)
    part.refresh_from_db()
    assert part.assigned_node_id == spare.pk
    assert part.declined_nodes.filter(pk=node.pk).exists()  # never offered to it again
    assert part.status != Status.FAILED


def test_a_job_cancelled_on_the_platform_cancels_the_print(
    live_server, fleet: Fleet, tmp_path, moonraker
):
    node, token = printer_node(fleet, "Voron-1")
    job = submit(fleet, ("a.gcode", sliced(30, 20, 2)))
    cancelled: list[bool] = []

    def cancel_job_when_printing() -> bool:
        if moonraker.printer.state == "printing" and not cancelled:
            job_cancel(job=job, by=fleet.designer, reason="changed my mind")
            cancelled.append(True)
        return moonraker.printer.state == "cancelled"

    config = gateway_config(live_server, tmp_path, node, token, moonraker_device(moonraker))
    run_until(config, cancel_job_when_printing, 120)
    assert cancelled and moonraker.printer.job is not None
    assert moonraker.printer.progress_pct() < 100


def test_a_part_without_gcode_fails_with_the_reason_and_nothing_is_printed(
    live_server, fleet: Fleet, tmp_path
):
    from tests.jobs.conftest import STL_CUBE_ASCII

    node, token = printer_node(fleet, "MK4-1")
    job = submit(fleet, ("cube.stl", STL_CUBE_ASCII.encode()))
    part = job.parts.get()
    sim = PrusaLinkSimulator(SimulatedPrinter(), password="pw").start()
    try:
        device = {"protocol": "prusalink", "url": sim.url, "username": "maker", "password": "pw"}
        config = gateway_config(live_server, tmp_path, node, token, device)

        def failed() -> bool:
            part.refresh_from_db()
            return part.status == Status.FAILED

        run_until(config, failed, 60)
    finally:
        sim.stop()
    assert part.failure_reason == (
        "The part has a STL model, no G-code: a printer needs the part sliced."
    )
    assert sim.printer.files == {} and sim.printer.jobs_started == 0


def test_a_printer_that_clears_its_own_bed_confirms_it_and_goes_on(
    live_server, fleet: Fleet, tmp_path, moonraker
):
    # given a bed-clear step and a printer that ejects its parts (the gateway's automation flag)
    node, token = printer_node(fleet, "Belt-1")
    node_update(node=node, by=fleet.vendor, bed_clear_required=True)
    job = submit(fleet, ("a.gcode", sliced(10, 10, 1)), ("b.gcode", sliced(10, 10, 1)))
    config = gateway_config(live_server, tmp_path, node, token, moonraker_device(moonraker))
    config["devices"][0]["work"] = {"auto_bed_clear": True}
    # when the gateway runs
    run_until(config, lambda: statuses(job) == [Status.COMPLETED] * 2, 120)
    # then both parts were made without anyone confirming: the second could start only
    # because the agent confirmed the bed clear after the first
    assert moonraker.printer.jobs_started == 2


def test_a_printed_part_takes_its_filament_off_the_loaded_spool(
    live_server, fleet: Fleet, tmp_path, moonraker
):
    from apps.materials.models import MaterialUsage
    from apps.materials.selectors import material_for_name
    from apps.materials.services import catalog_install_standard

    # given a printer with a red PLA spool loaded and a part in PLA that must be red
    catalog_install_standard()  # a transactional test before may have emptied the catalog
    node, token = printer_node(fleet, "Voron-1")
    pla = material_for_name("PLA")
    assert pla is not None
    spool = SpoolFactory.create(node=node, material=pla, colour_hex="#e11d48", remaining_g=1000)
    cad = cad_file_upload(by=fleet.designer, name="a.gcode", data=sliced(30, 20, 2))
    job = job_submit(
        by=fleet.designer,
        title="Red",
        parts=[{"material": "PLA", "process": "fdm", "cad_file": cad.pk, "colour_hex": "#e11d48"}],
    )
    parts_schedule()
    part = job.parts.get()
    assert part.assigned_node_id == node.pk
    # when the gateway prints it
    config = gateway_config(live_server, tmp_path, node, token, moonraker_device(moonraker))
    run_until(config, lambda: MaterialUsage.objects.filter(part=part).exists(), 120)
    # then the part's filament came off the spool, as its usage records
    part.refresh_from_db()
    usage = MaterialUsage.objects.get(part=part)
    assert part.status == Status.COMPLETED
    grams = part.estimates["material_g"]
    assert grams > 0 and usage.used_g == pytest.approx(grams)
    spool.refresh_from_db()
    assert spool.remaining_g == pytest.approx(1000 - grams)
    assert usage.spool == spool and usage.spool_taken_g == pytest.approx(grams)
