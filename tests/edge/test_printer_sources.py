"""The Moonraker and PrusaLink sources against their simulators' real HTTP servers, started in
each test: telemetry, the work side (upload, start, pause, resume, cancel) and what goes wrong."""

from __future__ import annotations

import asyncio
import contextlib
import time
import urllib.error
import urllib.request
from collections.abc import Iterator

import pytest

from edge.simulators.http_util import parse_multipart
from edge.simulators.moonraker import MoonrakerSimulator
from edge.simulators.octoprint import OctoPrintSimulator
from edge.simulators.printers import SimulatedPrinter
from edge.simulators.prusalink import PrusaLinkSimulator
from edge.sources.moonraker import MoonrakerPrinter
from edge.sources.octoprint import OctoPrintPrinter
from edge.sources.printer import (
    Printer,
    PrinterApiError,
    PrinterSource,
    PrinterState,
    multipart,
)
from edge.sources.prusalink import PrusaLinkPrinter

# as a slicer writes it: heat, print, and the cool-down at the end (the targets while printing
# are the heating ones)
GCODE = (
    b"; a test part\nM140 S60\nM104 S215\nG28\n"
    + b"".join(f"G1 X{i % 50} Y{i % 30} E0.1 F3000\n".encode() for i in range(60))
    + b"M104 S0\nM140 S0\n"
)


@contextlib.contextmanager
def moonraker(api_key: str = "") -> Iterator[tuple[MoonrakerSimulator, MoonrakerPrinter]]:
    sim = MoonrakerSimulator(SimulatedPrinter(seconds_per_line=0.02), api_key=api_key).start()
    try:
        yield sim, MoonrakerPrinter(sim.url, api_key=api_key, timeout=5)
    finally:
        sim.stop()


@contextlib.contextmanager
def prusalink(**auth: str) -> Iterator[tuple[PrusaLinkSimulator, PrusaLinkPrinter]]:
    sim = PrusaLinkSimulator(
        SimulatedPrinter(seconds_per_line=0.02), password="s3cret", api_key="pl-key"
    ).start()
    try:
        yield sim, PrusaLinkPrinter(sim.url, timeout=5, **auth)
    finally:
        sim.stop()


async def wait_state(printer: Printer, *states: PrinterState, within_s: float = 10.0):
    deadline = time.monotonic() + within_s
    while True:
        status = await printer.status()
        if status.state in states:
            return status
        assert time.monotonic() < deadline, f"still {status.state}, waited for {states}"
        await asyncio.sleep(0.05)


async def _print_pause_resume_finish(printer: Printer) -> None:
    # given an idle printer at room temperature
    idle = await printer.status()
    assert idle.state == PrinterState.IDLE and idle.progress_pct in (None, 0.0)
    source = PrinterSource(printer)
    values = await source.read()
    assert "progress_pct" not in values and values["extra.printing"] == 0.0
    assert 15 < values["temperature_c"] < 30
    # when a file is uploaded and started
    await printer.upload("bracket.gcode", GCODE)
    await printer.start("bracket.gcode")
    printing = await wait_state(printer, PrinterState.PRINTING)
    assert printing.file == "bracket.gcode"
    assert printing.hotend_target_c == 215.0 and printing.bed_target_c == 60.0
    await asyncio.sleep(0.3)
    values = await source.read()
    assert values["extra.printing"] == 1.0 and values["extra.hotend_target_c"] == 215.0
    assert values["temperature_c"] > 30  # the hotend heats towards its target
    assert 0 < values["progress_pct"] < 100
    # a second start while printing is refused by the printer, with its reason
    with pytest.raises(PrinterApiError) as refused:
        await printer.start("bracket.gcode")
    assert refused.value.status in (400, 409) and "busy" in refused.value.message
    # pause holds the progress, resume goes on
    await printer.pause()
    paused = await wait_state(printer, PrinterState.PAUSED)
    await asyncio.sleep(0.3)
    assert (await printer.status()).progress_pct == paused.progress_pct
    assert (await source.read())["extra.paused"] == 1.0
    await printer.resume()
    # then it runs to its end: finished, 100 %, heaters off
    done = await wait_state(printer, PrinterState.FINISHED)
    assert done.progress_pct == 100.0 and done.file == "bracket.gcode"
    assert done.hotend_target_c == 0.0


async def _cancel_and_fault(sim_printer: SimulatedPrinter, printer: Printer) -> None:
    await printer.upload("a.gcode", GCODE)
    await printer.start("a.gcode")
    await wait_state(printer, PrinterState.PRINTING)
    await printer.cancel()
    cancelled = await wait_state(printer, PrinterState.CANCELLED)
    assert cancelled.progress_pct is not None and cancelled.progress_pct < 100
    with pytest.raises(PrinterApiError):
        await printer.cancel()  # nothing left to cancel
    with pytest.raises(PrinterApiError) as missing:
        await printer.start("never-uploaded.gcode")
    assert missing.value.status in (400, 404)
    await printer.start("a.gcode")
    await wait_state(printer, PrinterState.PRINTING)
    sim_printer.fault("Heater extruder not heating at expected rate")
    failed = await wait_state(printer, PrinterState.ERROR)
    assert "not heating" in failed.message
    assert (await PrinterSource(printer).read())["extra.printer_error"] == 1.0


@pytest.mark.asyncio
async def test_moonraker_prints_pauses_resumes_and_finishes():
    with moonraker(api_key="mr-key") as (_, printer):
        await _print_pause_resume_finish(printer)


@pytest.mark.asyncio
async def test_moonraker_cancel_and_a_klipper_error():
    with moonraker() as (sim, printer):
        await _cancel_and_fault(sim.printer, printer)


@pytest.mark.asyncio
async def test_moonraker_without_klippy_is_offline_and_a_wrong_key_is_refused():
    with moonraker(api_key="mr-key") as (sim, printer):
        sim.klippy_ready = False
        status = await printer.status()
        assert status.state == PrinterState.OFFLINE
        assert "Klippy Host not connected" in status.message
        wrong = MoonrakerPrinter(sim.url, api_key="nope", timeout=5)
        with pytest.raises(PrinterApiError) as refused:
            await wrong.status()
        assert refused.value.status == 401


@pytest.mark.asyncio
async def test_prusalink_with_digest_prints_pauses_resumes_and_finishes():
    with prusalink(username="maker", password="s3cret") as (_, printer):
        await _print_pause_resume_finish(printer)


@pytest.mark.asyncio
async def test_prusalink_with_an_api_key_cancel_and_an_error():
    with prusalink(api_key="pl-key") as (sim, printer):
        await _cancel_and_fault(sim.printer, printer)


@pytest.mark.asyncio
async def test_prusalink_attention_is_a_held_job_not_an_error():
    with prusalink(api_key="pl-key") as (sim, printer):
        await printer.upload("a.gcode", GCODE)
        await printer.start("a.gcode")
        sim.printer.attention("Filament runout")
        status = await wait_state(printer, PrinterState.ATTENTION)
        assert status.message == "Filament runout" and status.busy_with_job
        values = await PrinterSource(printer).read()
        assert values["extra.paused"] == 1.0 and values["extra.printer_error"] == 0.0
        await printer.resume()
        await wait_state(printer, PrinterState.PRINTING)


@pytest.mark.asyncio
async def test_prusalink_wrong_password_is_refused_and_digest_is_checked():
    with prusalink(username="maker", password="wrong") as (sim, printer):
        with pytest.raises(PrinterApiError) as refused:
            await printer.status()
        assert refused.value.status == 401
        # no credential at all: the digest challenge
        with pytest.raises(urllib.error.HTTPError) as plain:
            urllib.request.urlopen(sim.url + "/api/v1/status", timeout=5)
        assert plain.value.code == 401
        assert 'realm="Printer API"' in plain.value.headers["WWW-Authenticate"]
        # an upload without Overwrite does not replace a file
        good = PrusaLinkPrinter(sim.url, api_key="pl-key", timeout=5)
        await good.upload("a.gcode", b"G28\n")
        with pytest.raises(PrinterApiError) as exists:
            await good.http.ajson("PUT", "/api/v1/files/usb/a.gcode", body=b"G1\n")
        assert exists.value.status == 409
        assert sim.printer.files["a.gcode"] == b"G28\n"


def test_prusalink_needs_a_credential():
    with pytest.raises(ValueError, match="username and password"):
        PrusaLinkPrinter("http://127.0.0.1:1")


@pytest.mark.asyncio
async def test_an_unreachable_printer_raises_oserror_for_the_gateway_backoff():
    printer = MoonrakerPrinter("http://127.0.0.1:9", timeout=2)
    with pytest.raises(OSError):
        await printer.status()


def test_multipart_round_trip_keeps_bytes_and_quotes_names():
    data = bytes(range(256)) * 4
    body, content_type = multipart({"root": "gcodes"}, "file", 'we"ird\r\n.gcode', data)
    fields, files = parse_multipart(content_type, body)
    assert fields == {"root": "gcodes"}
    assert files["file"] == ("we_ird__.gcode", data)


@contextlib.contextmanager
def octoprint_sim(**kwargs: bool) -> Iterator[tuple[OctoPrintSimulator, OctoPrintPrinter]]:
    sim = OctoPrintSimulator(
        SimulatedPrinter(seconds_per_line=0.02), api_key="op-key", **kwargs
    ).start()
    try:
        yield sim, OctoPrintPrinter(sim.url, api_key="op-key", timeout=5)
    finally:
        sim.stop()


@pytest.mark.asyncio
async def test_octoprint_simulator_prints_pauses_resumes_and_finishes():
    with octoprint_sim() as (_, printer):
        await _print_pause_resume_finish(printer)


@pytest.mark.asyncio
async def test_octoprint_simulator_answers_like_octoprint_on_cancel_errors_and_keys():
    with octoprint_sim(connected=False) as (sim, printer):
        offline = await printer.status()
        assert offline.state == PrinterState.OFFLINE and offline.hotend_c is None
        await printer.connect_printer()
        assert (await printer.status()).state == PrinterState.IDLE
        await printer.upload("a.gcode", GCODE)
        await printer.start("a.gcode")
        await printer.cancel()
        cancelled = await printer.status()  # completion reset, file still selected
        assert cancelled.state == PrinterState.CANCELLED and cancelled.progress_pct is None
        with pytest.raises(PrinterApiError) as nothing:
            await printer.pause()
        assert nothing.value.status == 409
        await printer.start("a.gcode")
        sim.printer.fault("Thermal Runaway")
        failed = await printer.status()
        assert failed.state == PrinterState.ERROR and "Thermal Runaway" in failed.message
        wrong = OctoPrintPrinter(sim.url, api_key="nope", timeout=5)
        with pytest.raises(PrinterApiError) as read:
            await wrong.status()
        with pytest.raises(PrinterApiError) as write:
            await wrong.cancel()
        assert (read.value.status, write.value.status) == (403, 400)
        assert write.value.message == "CSRF validation failed"
