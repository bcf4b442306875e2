"""Printers through the gateway to the platform: a Moonraker and a PrusaLink printer
(simulators) stream their state, temperatures and progress as telemetry."""

from __future__ import annotations

import asyncio
import contextlib

import pytest

from apps.telemetry.models import TelemetryPoint
from apps.vendors.models import FabricationNode
from apps.vendors.services import device_credential_issue, node_config_save, node_transition
from edge.gateway import from_config
from edge.simulators.moonraker import MoonrakerSimulator
from edge.simulators.printers import SimulatedPrinter
from edge.simulators.prusalink import PrusaLinkSimulator
from tests.edge.test_printer_sources import GCODE
from tests.fixtures.fleet import Fleet, approved_node

PRINTER = {
    "kind": "fdm_printer",
    "processes": ["fdm"],
    "materials": ["PLA", "PETG"],
    "build_x_mm": 250,
    "build_y_mm": 210,
    "build_z_mm": 220,
    "precision_mm": 0.1,
    "rated_power_kw": 0.35,
}


def printer_node(fleet: Fleet, name: str):
    node = approved_node(fleet, name=name, **PRINTER)
    node_config_save(node=node, by=fleet.vendor, config={"ok": True})
    node_transition(node=node, to=FabricationNode.Status.IDLE, by=fleet.vendor, reason="up")
    _, token = device_credential_issue(node=node, by=fleet.vendor)
    return node, token


async def run_gateway(config: dict, seconds: float) -> None:
    gateway = from_config(config)
    task = asyncio.create_task(gateway.run())
    await asyncio.sleep(seconds)
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


def test_printers_stream_state_temperatures_and_progress(live_server, fleet: Fleet, tmp_path):
    # given a Moonraker printer mid-print and an idle PrusaLink printer
    klipper, klipper_token = printer_node(fleet, "Voron-1")
    prusa, prusa_token = printer_node(fleet, "MK4-1")
    moonraker = MoonrakerSimulator(SimulatedPrinter(seconds_per_line=0.5), api_key="k").start()
    prusalink = PrusaLinkSimulator(SimulatedPrinter(), password="pw").start()
    moonraker.printer.upload("part.gcode", GCODE)
    moonraker.printer.start("part.gcode")
    config = {
        "upstream": {"url": live_server.url},
        "buffer": {"path": str(tmp_path / "edge.sqlite3")},
        "forward_every_s": 0.3,
        "devices": [
            {
                "node": klipper.pk,
                "token": klipper_token,
                "protocol": "moonraker",
                "url": moonraker.url,
                "api_key": "k",
                "interval_ms": 200,
            },
            {
                "node": prusa.pk,
                "token": prusa_token,
                "protocol": "prusalink",
                "url": prusalink.url,
                "username": "maker",
                "password": "pw",
                "interval_ms": 200,
            },
        ],
    }
    try:
        # when the gateway polls them for a while
        asyncio.run(run_gateway(config, 2.5))
    finally:
        moonraker.stop()
        prusalink.stop()
    # then the platform holds their telemetry: hotend in temperature_c, the rest in extra
    printing = list(TelemetryPoint.objects.filter(node=klipper).order_by("time"))
    assert len(printing) >= 5
    last = printing[-1]
    assert last.temperature_c is not None and last.temperature_c > 30  # heating to 215
    assert last.progress_pct is not None and 0 < last.progress_pct < 100
    assert last.extra["printing"] == 1.0 and last.extra["hotend_target_c"] == 215.0
    assert last.extra["bed_target_c"] == 60.0 and "bed_temperature_c" in last.extra
    idle = list(TelemetryPoint.objects.filter(node=prusa))
    assert idle and all(p.progress_pct is None for p in idle)
    assert all(
        p.extra["printing"] == 0.0 and p.temperature_c is not None and p.temperature_c < 30
        for p in idle
    )


@pytest.mark.parametrize(
    ("device", "message"),
    [
        ({"protocol": "octoprint"}, "OctoPrint needs api_key"),
        ({"protocol": "prusalink", "username": "maker"}, "PrusaLink needs username and password"),
        ({"protocol": "bambu"}, "not supported"),
    ],
)
def test_printer_devices_are_validated(device, message):
    config = {
        "upstream": {"url": "http://127.0.0.1:1"},
        "buffer": {"path": ":memory:"},
        "devices": [{"node": 1, "token": "t", "url": "http://127.0.0.1:2", **device}],
    }
    with pytest.raises(ValueError, match=message):
        from_config(config)
