"""The OPC UA source against the real asyncua simulator server, started in the test."""

from __future__ import annotations

import asyncio
import contextlib

import pytest

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
    async with simulator(MachineModel(kind="cnc_mill", rated_power_kw=7.5, seed=1)) as url:
        source = OpcUaSource(url, SIGNALS)
        await source.connect()
        try:
            readings = []
            for _ in range(5):
                readings.append(await source.read())
                await asyncio.sleep(0.1)
        finally:
            await source.disconnect()
    assert set(readings[-1]) == set(SIGNALS)
    assert all(0 <= r["spindle_rpm"] <= 13000 for r in readings)
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


def test_injected_faults_show_in_the_signals():
    healthy = MachineModel(kind="cnc_mill", rated_power_kw=7.5, seed=3)
    worn = MachineModel(kind="cnc_mill", rated_power_kw=7.5, fault=Fault.BEARING_WEAR, seed=3)
    hot = MachineModel(kind="fdm_printer", rated_power_kw=0.35, fault=Fault.OVERHEAT, seed=3)
    spiky = MachineModel(kind="cnc_mill", rated_power_kw=7.5, fault=Fault.POWER_SPIKE, seed=3)
    t = 600.0
    assert worn.sample(t)["vibration_mm_s"] - healthy.sample(t)["vibration_mm_s"] > 5
    assert hot.sample(t)["temperature_c"] > 230  # a printer plateaus near 210 C
    assert spiky.sample(601.0)["power_kw"] > 7.5 * 1.5
