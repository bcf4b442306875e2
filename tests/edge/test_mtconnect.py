"""The MTConnect source against the simulator's real HTTP agent, started in the test."""

from __future__ import annotations

import asyncio
import contextlib
import urllib.error
import urllib.request

import pytest

from edge.simulators.control import MtConnectControl
from edge.simulators.machines import Fault, MachineModel
from edge.simulators.mtconnect import SIGNAL_MAP, MtConnectSimulator
from edge.sources.base import MappingError
from edge.sources.mtconnect import MtConnectError, MtConnectSource, parse_streams
from tests.conftest import free_port


@contextlib.contextmanager
def agent(period: float = 0.05, buffer_size: int = 4096):
    model = MachineModel(kind="cnc_mill", rated_power_kw=7.5, seed=4)
    simulator = MtConnectSimulator(
        model, port=free_port(), period=period, buffer_size=buffer_size
    ).start()
    try:
        yield simulator
    finally:
        simulator.stop()


@pytest.mark.asyncio
async def test_follows_the_sample_stream_without_gaps():
    with agent() as simulator:
        source = MtConnectSource(simulator.url, SIGNAL_MAP)
        await source.connect()
        batches = [await source.read_timed()]
        for _ in range(5):
            await asyncio.sleep(0.2)
            batches.append(await source.read_timed())
        await source.disconnect()
        produced = simulator.agent.next_sequence - 1
    points = [p for batch in batches for p in batch]
    times = [t for t, _ in points]
    assert times == sorted(times) and len(set(times)) == len(times)
    # every sample the agent took after `current` arrived, with all five signals in one point
    assert len(points) >= 15
    assert all(set(values) == set(SIGNAL_MAP) for _, values in points)
    assert source.next_sequence is not None and source.next_sequence <= produced + 1
    assert source.missed == 0
    gaps = [(b - a).total_seconds() for a, b in zip(times, times[1:], strict=False)]
    assert max(gaps) < 0.2  # the agent samples every 50 ms: no observation was skipped
    # W from the agent, kW for the platform
    assert all(0.5 < values["power_kw"] < 15 for _, values in points)
    assert all(t.tzinfo is not None for t in times)


@pytest.mark.asyncio
async def test_falling_behind_the_agent_buffer_resumes_and_counts_the_gap():
    with agent(period=0.02, buffer_size=50) as simulator:
        source = MtConnectSource(simulator.url, SIGNAL_MAP)
        await source.read_timed()
        await asyncio.sleep(0.6)  # ~30 samples x 5 items: far past a 50-observation buffer
        points = await source.read_timed()
    assert source.missed > 0
    assert len(points) == 1  # resumed from `current`: the newest values
    assert source.next_sequence is not None


@pytest.mark.asyncio
async def test_a_misspelt_data_item_is_a_clear_error():
    with agent() as simulator:
        source = MtConnectSource(simulator.url, {"spindle_rpm": "S1sped"})
        with pytest.raises(MappingError, match="S1sped: no such dataItemId"):
            await source.read_timed()


def test_agent_errors_and_unavailable_values():
    with agent() as simulator:
        with pytest.raises(urllib.error.HTTPError) as caught:
            urllib.request.urlopen(f"{simulator.url}/sample?from=999999", timeout=5)
        body = caught.value.read()
        probe = urllib.request.urlopen(f"{simulator.url}/probe", timeout=5).read()
    with pytest.raises(MtConnectError, match="OUT_OF_RANGE"):
        parse_streams(body, {})
    assert b"S1speed" in probe and b"REVOLUTION/MINUTE" in probe
    document = b"""<?xml version="1.0"?>
    <MTConnectStreams xmlns="urn:mtconnect.org:MTConnectStreams:2.0">
      <Header nextSequence="12" firstSequence="1"/>
      <Streams><DeviceStream name="M"><ComponentStream component="Rotary"><Samples>
        <RotaryVelocity dataItemId="S1speed" timestamp="2026-11-23T10:00:00.5Z"
            sequence="10">UNAVAILABLE</RotaryVelocity>
        <Temperature dataItemId="S1temp" timestamp="2026-11-23T10:00:00.5Z"
            sequence="11">hot</Temperature>
      </Samples></ComponentStream></DeviceStream></Streams>
    </MTConnectStreams>"""
    streams = parse_streams(document, {"S1speed": ("spindle_rpm", 1.0), "S1temp": ("t", 1.0)})
    assert streams.points == []  # UNAVAILABLE is no value, not a zero
    assert streams.present == {"S1speed", "S1temp"}
    assert streams.bad == {"t": "S1temp: not a number ('hot')"}
    assert streams.next_sequence == 12


@pytest.mark.asyncio
async def test_a_put_to_control_starts_parts_and_injects_faults():
    with agent() as simulator:
        model = simulator.agent.model
        control = MtConnectControl(simulator.url)
        await control.part_start(load_kw=5.0, seconds=40)
        assert model.running and model.load_kw == 5.0 and model.part_seconds == 40
        await control.inject(Fault.POWER_SPIKE)
        assert model.fault == Fault.POWER_SPIKE
        await control.part_stop()
        assert not model.running


@pytest.mark.asyncio
@pytest.mark.parametrize(
    "query",
    ["fault=melted", "running=yes", "load_kw=nan&running=1", "load_kw=-3&running=1", "x=1", ""],
)
async def test_a_bad_control_put_is_a_400_and_changes_nothing(query):
    with agent() as simulator:
        request = urllib.request.Request(f"{simulator.url}/control?{query}", data=b"", method="PUT")
        with pytest.raises(urllib.error.HTTPError) as error:
            urllib.request.urlopen(request, timeout=5)
        assert error.value.code == 400
        assert b"INVALID_REQUEST" in error.value.read()
        model = simulator.agent.model
        assert not model.running and model.fault == Fault.NONE


def test_a_put_elsewhere_is_a_404():
    with agent() as simulator:
        request = urllib.request.Request(f"{simulator.url}/current", data=b"", method="PUT")
        with pytest.raises(urllib.error.HTTPError) as error:
            urllib.request.urlopen(request, timeout=5)
        assert error.value.code == 404
