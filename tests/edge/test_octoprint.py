"""The OctoPrint source against a real OctoPrint server and its virtual printer (tests/edge/
octoprint.py starts one for this module): state, temperatures and progress as telemetry, and
upload, start, pause, resume, cancel as the printer work agent uses them."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from edge.sources.octoprint import OctoPrintPrinter
from edge.sources.printer import PrinterApiError, PrinterSource, PrinterState, PrinterStatus
from tests.edge.octoprint import OctoPrintServer, octoprint_server


def gcode(moves: int) -> bytes:
    lines = ["; imewe test part", "M140 S55", "M104 S205", "G28", "G90"]
    lines += [f"G1 X{10 + i % 80} Y{10 + (i * 7) % 80} Z0.3 F6000" for i in range(moves)]
    lines += ["M104 S0", "M140 S0"]
    return ("\n".join(lines) + "\n").encode()


@pytest.fixture(scope="module")
def octoprint(tmp_path_factory: pytest.TempPathFactory) -> Iterator[OctoPrintServer]:
    with octoprint_server(tmp_path_factory.mktemp("octoprint")) as server:
        yield server


async def wait_state(
    printer: OctoPrintPrinter, *states: PrinterState, within_s: float = 60.0
) -> PrinterStatus:
    deadline = time.monotonic() + within_s
    while True:
        status = await printer.status()
        if status.state in states:
            return status
        assert time.monotonic() < deadline, f"still {status}, waited for {states}"
        await asyncio.sleep(0.1)


@pytest.mark.asyncio
async def test_telemetry_and_a_print_from_upload_to_finish(octoprint: OctoPrintServer):
    printer = OctoPrintPrinter(octoprint.url, api_key=octoprint.api_key, timeout=10)
    source = PrinterSource(printer)
    # given the connected virtual printer, idle
    before = await printer.status()
    assert before.state in (PrinterState.IDLE, PrinterState.FINISHED, PrinterState.CANCELLED)
    # OctoPrint learns the temperatures from its own M105 polls, a few seconds after connecting
    deadline = time.monotonic() + 30
    while "temperature_c" not in (values := await source.read()):
        assert time.monotonic() < deadline, "no hotend temperature from OctoPrint"
        await asyncio.sleep(0.2)
    assert values["extra.printing"] == 0.0 and 15 < values["temperature_c"] < 40
    # when a part's file is uploaded and started
    await printer.upload("imewe-part-1.gcode", gcode(150))
    await printer.start("imewe-part-1.gcode")
    printing = await wait_state(printer, PrinterState.PRINTING)
    assert printing.file == "imewe-part-1.gcode"
    # then telemetry shows it printing, with the targets the file set
    deadline = time.monotonic() + 30
    while (await source.read()).get("extra.hotend_target_c") != 205.0:
        assert time.monotonic() < deadline, "the hotend target never showed"
        await asyncio.sleep(0.2)
    values = await source.read()
    assert values["extra.printing"] == 1.0 and values["extra.bed_target_c"] == 55.0
    # and it runs to its end: OctoPrint says Operational with completion 100
    done = await wait_state(printer, PrinterState.FINISHED)
    assert done.progress_pct == 100.0 and done.file == "imewe-part-1.gcode"
    assert (await source.read())["progress_pct"] == 100.0


@pytest.mark.asyncio
async def test_pause_resume_and_cancel(octoprint: OctoPrintServer):
    printer = OctoPrintPrinter(octoprint.url, api_key=octoprint.api_key, timeout=10)
    await printer.upload("imewe-long.gcode", gcode(3000))
    await printer.start("imewe-long.gcode")
    # OctoPrint answers a pause during "Starting" with 204 and ignores it: wait for progress
    deadline = time.monotonic() + 30
    while not ((status := await printer.status()).progress_pct or 0) > 1:
        assert status.state == PrinterState.PRINTING or time.monotonic() < deadline, status
        await asyncio.sleep(0.1)
    await printer.pause()
    paused = await wait_state(printer, PrinterState.PAUSED)
    assert paused.progress_pct is not None and paused.progress_pct < 100
    assert (await PrinterSource(printer).read())["extra.paused"] == 1.0
    await printer.resume()
    await wait_state(printer, PrinterState.PRINTING)
    await printer.cancel()
    cancelled = await wait_state(printer, PrinterState.CANCELLED)
    assert cancelled.file == "imewe-long.gcode"
    # nothing is printing now: OctoPrint refuses a pause with 409
    with pytest.raises(PrinterApiError) as refused:
        await printer.pause()
    assert refused.value.status == 409


@pytest.mark.asyncio
async def test_a_wrong_api_key_is_refused(octoprint: OctoPrintServer):
    printer = OctoPrintPrinter(octoprint.url, api_key="not-the-key", timeout=10)
    with pytest.raises(PrinterApiError) as refused:
        await printer.status()
    assert refused.value.status == 403
    # a write with an unknown key is taken for a browser without its CSRF token
    with pytest.raises(PrinterApiError) as refused:
        await printer.upload("x.gcode", b"G28\n")
    assert refused.value.status == 400 and "CSRF" in refused.value.message
    files = octoprint.call("GET", "/api/files/local")
    assert isinstance(files, dict)
    assert "x.gcode" not in {f["name"] for f in files["files"]}


@pytest.mark.asyncio
async def test_no_printer_connected_is_offline_not_unreachable(tmp_path: Path):
    with octoprint_server(tmp_path / "offline", connect=False) as server:
        printer = OctoPrintPrinter(server.url, api_key=server.api_key, timeout=10)
        status = await printer.status()
        assert status.state == PrinterState.OFFLINE
        assert status.message == "no printer connected to OctoPrint"
        values = await PrinterSource(printer).read()
        assert "temperature_c" not in values and "progress_pct" not in values
        # the gateway can connect it with OctoPrint's saved port settings
        await printer.connect_printer()
        await wait_state(printer, PrinterState.IDLE)
