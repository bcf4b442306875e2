"""`manage.py demo_fault` (`make fault`): a fault injected into a running demo machine."""

from __future__ import annotations

import asyncio

import pytest
from channels.db import database_sync_to_async
from django.core.management import CommandError, call_command

from apps.portal.management.commands import demo_fault
from edge.simulators.machines import Fault, MachineModel
from edge.simulators.opcua import serve
from tests.conftest import free_port


def test_an_unknown_machine_is_refused():
    with pytest.raises(CommandError, match="No simulated machine 'Mill-99'"):
        call_command("demo_fault", "Mill-99", "overheat")


def test_an_unknown_fault_is_refused():
    with pytest.raises(CommandError, match="invalid choice"):
        call_command("demo_fault", "Mill-01", "melted")


def test_a_machine_that_is_not_running_is_a_clear_error(monkeypatch):
    port = free_port()  # nothing listens there
    devices = {"Mill-01": {"protocol": "opcua", "url": f"opc.tcp://127.0.0.1:{port}/imewe/"}}
    monkeypatch.setattr(demo_fault, "demo_devices", lambda: devices)
    with pytest.raises(CommandError, match="is `make run` running"):
        call_command("demo_fault", "Mill-01", "overheat")


def test_injects_the_fault_into_the_running_simulator(monkeypatch):
    port = free_port()
    model = MachineModel(kind="cnc_mill", rated_power_kw=7.5)
    devices = {"Mill-01": {"protocol": "opcua", "url": f"opc.tcp://127.0.0.1:{port}/imewe/"}}
    monkeypatch.setattr(demo_fault, "demo_devices", lambda: devices)

    async def scenario() -> None:
        ready = asyncio.Event()
        server = asyncio.create_task(serve(port=port, model=model, period=0.05, ready=ready))
        await asyncio.wait_for(ready.wait(), 15)
        try:
            await database_sync_to_async(call_command, thread_sensitive=False)(
                "demo_fault", "Mill-01", "bearing_wear"
            )
            await asyncio.sleep(0.3)  # the simulator reads its control variables each period
        finally:
            server.cancel()

    asyncio.run(scenario())
    assert model.fault == Fault.BEARING_WEAR


def test_the_octoprint_printer_has_no_fault_to_inject():
    # the demo's OctoPrint-style printer is a device of the gateway but no simulated machine
    from apps.portal.management.commands.demo_edge_config import demo_devices as every

    assert every()["Printer-03"]["protocol"] == "octoprint"
    with pytest.raises(CommandError, match="No simulated machine 'Printer-03'"):
        call_command("demo_fault", "Printer-03", "overheat")
