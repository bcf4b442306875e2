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

from apps.jobs.models import Part, Status
from apps.jobs.services import cad_file_upload, job_cancel, job_submit, parts_schedule
from apps.telemetry.models import TelemetryPoint
from apps.vendors.services import device_credential_issue
from edge.gateway import Gateway, from_config
from edge.simulators.moonraker import MoonrakerSimulator
from edge.simulators.printers import SimulatedPrinter
from edge.simulators.prusalink import PrusaLinkSimulator
from edge.sources.printer_work import PrinterWorkAgent, file_name
from tests.edge.octoprint import octoprint_server
from tests.jobs.conftest import PRINTER, ready_node
from tests.jobs.test_gcode_parts import sliced


def printer_node(fleet: dict[str, Any], name: str):
    node = ready_node(fleet, **{**PRINTER, "name": name})
    _, token = device_credential_issue(node=node, by=fleet["vendor"])
    return node, token


def submit(fleet: dict[str, Any], *files: tuple[str, bytes]):
    parts = []
    for name, data in files:
        cad = cad_file_upload(by=fleet["designer"], name=name, data=data)
        parts.append({"material": "PLA", "process": "fdm", "cad_file": cad.pk})
    job = job_submit(by=fleet["designer"], title="Printed", parts=parts)
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
    """Runs the gateway until `done()` (checked against the database in a thread) is true."""

    logging.getLogger("edge").setLevel(logging.INFO)  # what the agent did, if a test fails

    async def main() -> Gateway:
        gateway = from_config(config)
        for agent in gateway.agents:
            assert isinstance(agent, PrinterWorkAgent)
            agent.poll_every_s = agent.report_every_s = 0.3
        task = asyncio.create_task(gateway.run())
        deadline = time.monotonic() + within_s
        try:
            while not await asyncio.to_thread(done):
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


def test_a_job_printed_on_the_real_octoprint_from_upload_to_completion(
    live_server, fleet, tmp_path
):
    # given a printer node whose gateway speaks to a real OctoPrint, and a two-part job
    node, token = printer_node(fleet, "OctoPrint-1")
    job = submit(fleet, ("left.gcode", sliced(30, 20, 2)), ("right.gcode", sliced(20, 30, 2)))
    assert {p.assigned_node_id for p in job.parts.all()} == {node.pk}
    with octoprint_server(tmp_path / "octoprint") as octoprint:
        config = gateway_config(
            live_server,
            tmp_path,
            node,
            token,
            {"protocol": "octoprint", "url": octoprint.url, "api_key": octoprint.api_key},
        )
        # when the gateway runs until both parts are done
        gateway = run_until(
            config, lambda: set(statuses(job)) <= {Status.COMPLETED, Status.FAILED}, 240
        )
        files = octoprint.call("GET", "/api/files/local")
    # then both were printed, one after the other, and the job is complete
    job.refresh_from_db()
    assert statuses(job) == [Status.COMPLETED, Status.COMPLETED], [
        p.failure_reason for p in job.parts.all()
    ]
    assert job.status == Status.COMPLETED
    assert not gateway.agents[0].failed
    first, second = job.parts.order_by("started_at")
    assert first.finished_at <= second.started_at  # one printer, one part at a time
    assert all(p.quality_score == 1.0 and p.progress_pct == 100.0 for p in (first, second))
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
    live_server, fleet, tmp_path, moonraker
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
    live_server, fleet, tmp_path, moonraker
):
    node, token = printer_node(fleet, "Voron-1")
    spare, _ = printer_node(fleet, "Voron-2")
    job = submit(fleet, ("a.gcode", sliced(30, 20, 2)))
    part = job.parts.get()
    if part.assigned_node_id != node.pk:  # the scheduler's choice; make the gateway's node hold it
        node, spare = spare, node
        _, token = device_credential_issue(node=node, by=fleet["vendor"])

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


def test_a_job_cancelled_on_the_platform_cancels_the_print(live_server, fleet, tmp_path, moonraker):
    node, token = printer_node(fleet, "Voron-1")
    job = submit(fleet, ("a.gcode", sliced(30, 20, 2)))
    cancelled = []

    def cancel_job_when_printing() -> bool:
        if moonraker.printer.state == "printing" and not cancelled:
            job_cancel(job=job, by=fleet["designer"], reason="changed my mind")
            cancelled.append(True)
        return moonraker.printer.state == "cancelled"

    config = gateway_config(live_server, tmp_path, node, token, moonraker_device(moonraker))
    run_until(config, cancel_job_when_printing, 120)
    assert cancelled and moonraker.printer.job is not None
    assert moonraker.printer.progress_pct() < 100


def test_a_part_without_gcode_fails_with_the_reason_and_nothing_is_printed(
    live_server, fleet, tmp_path
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
