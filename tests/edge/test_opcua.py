"""The OPC UA source against the real asyncua simulator server, started in the test."""

from __future__ import annotations

import asyncio
import contextlib
import math

import pytest

from edge.simulators.control import ControlError, OpcUaControl
from edge.simulators.machines import Fault, MachineModel
from edge.simulators.opcua import NODE_IDS, serve
from edge.sources.opcua import OpcUaReadError, OpcUaSource
from tests.conftest import free_port

SIGNALS = {signal: f"ns=2;s={node_id}" for signal, node_id in NODE_IDS.items()}


@contextlib.asynccontextmanager
async def simulator(model: MachineModel):
    port = free_port()
    ready = asyncio.Event()
    task = asyncio.create_task(serve(port=port, model=model, period=0.05, ready=ready))
    await asyncio.wait_for(ready.wait(), 15)
    try:
        yield f"opc.tcp://127.0.0.1:{port}/imewe/"
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


@pytest.mark.asyncio
async def test_polls_a_cnc_mill_with_plausible_signals():
    model = MachineModel(kind="cnc_mill", rated_power_kw=7.5, seed=1)
    async with simulator(model) as url:
        source = OpcUaSource(url, SIGNALS)
        await source.connect()
        try:
            idle = await source.read()
            # the work agent starts a part through the control variables
            await OpcUaControl(url).part_start(load_kw=5.0, seconds=60)
            await asyncio.sleep(1.5)  # the spindle runs up
            readings = []
            for _ in range(5):
                readings.append(await source.read())
                await asyncio.sleep(0.1)
        finally:
            await source.disconnect()
    assert set(readings[-1]) == set(SIGNALS)
    assert idle["spindle_rpm"] == 0 and idle["power_kw"] < 1.5
    assert all(5000 <= r["spindle_rpm"] <= 12000 for r in readings)
    assert all(4.0 < r["power_kw"] <= 7.5 for r in readings)
    assert all(20 < r["temperature_c"] < 70 for r in readings)
    assert len({r["spindle_rpm"] for r in readings}) > 1  # the values move


@pytest.mark.asyncio
async def test_unknown_node_id_is_a_clear_error():
    async with simulator(MachineModel(kind="cnc_mill", rated_power_kw=7.5)) as url:
        source = OpcUaSource(url, {"power_kw": "ns=2;s=Machine1.Nope"})
        await source.connect()
        try:
            with pytest.raises(OpcUaReadError, match="BadNodeIdUnknown"):
                await source.read()
        finally:
            await source.disconnect()


@pytest.mark.asyncio
async def test_control_variables_start_and_stop_parts_and_inject_faults():
    model = MachineModel(kind="cnc_mill", rated_power_kw=7.5, seed=2)
    async with simulator(model) as url:
        control = OpcUaControl(url)
        await control.part_start(load_kw=4.0, seconds=30)
        await asyncio.sleep(0.3)
        assert model.running and model.load_kw == 4.0 and model.part_seconds == 30
        await control.inject(Fault.BEARING_WEAR)
        await asyncio.sleep(0.3)
        assert model.fault == Fault.BEARING_WEAR
        await control.part_stop()
        await asyncio.sleep(0.3)
        assert not model.running and model.fault == Fault.BEARING_WEAR


@pytest.mark.asyncio
async def test_a_bad_control_write_is_ignored_and_the_variable_shows_the_machine_again():
    model = MachineModel(kind="cnc_mill", rated_power_kw=7.5, seed=2)
    async with simulator(model) as url:
        await OpcUaControl(url)._write({"fault": "melted"})
        await asyncio.sleep(0.3)
        source = OpcUaSource(url, {"power_kw": f"ns=2;s={NODE_IDS['power_kw']}"})
        await source.connect()
        try:
            fault = await source.client.get_node("ns=2;s=Machine1.Sim.Fault").read_value()
        finally:
            await source.disconnect()
    assert model.fault == Fault.NONE and fault == "none"
    with pytest.raises(ValueError):
        await OpcUaControl(url).part_start(load_kw=math.nan, seconds=10)


@pytest.mark.asyncio
async def test_control_of_a_machine_that_is_not_there_is_a_control_error():
    with pytest.raises(ControlError):
        await OpcUaControl(f"opc.tcp://127.0.0.1:{free_port()}/imewe/", timeout=1).inject(
            Fault.OVERHEAT
        )
