"""The Modbus TCP source against the real pymodbus simulator server, started in the test."""

from __future__ import annotations

import asyncio
import contextlib

import pytest

from edge.simulators.control import ControlError, ModbusControl
from edge.simulators.machines import Fault, MachineModel
from edge.simulators.modbus import CONTROL_REGISTERS, FAULT_CODES, REGISTER_MAP, encode, serve
from edge.sources.base import MappingError
from edge.sources.modbus import ModbusSource, RegisterSpec, plan_reads
from tests.conftest import free_port


@contextlib.asynccontextmanager
async def simulator(model: MachineModel):
    port = free_port()
    ready = asyncio.Event()
    task = asyncio.create_task(serve(port=port, model=model, ready=ready))
    await asyncio.wait_for(ready.wait(), 15)
    try:
        yield port
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


@contextlib.asynccontextmanager
async def connected(source: ModbusSource):
    await source.connect()
    try:
        yield source
    finally:
        await source.disconnect()


@pytest.mark.asyncio
async def test_polls_a_printer_through_its_register_map():
    model = MachineModel(kind="fdm_printer", rated_power_kw=0.35, seed=2)
    async with simulator(model) as port:
        source = ModbusSource("127.0.0.1", port, REGISTER_MAP)
        assert len(source.spans) == 1  # the whole map in one request
        async with connected(source):
            readings = []
            for _ in range(4):
                readings.append(await source.read())
                await asyncio.sleep(0.1)
    assert set(readings[-1]) == set(REGISTER_MAP)
    for reading in readings:
        assert 20 < reading["temperature_c"] < 30  # idle: the heaters are off
        assert 0 < reading["power_kw"] < 0.35 * 0.1  # idle draw
        assert reading["material_remaining"] == pytest.approx(1000.0)  # float32, unscaled
        assert reading["spindle_rpm"] == 0  # a printer has no spindle
    # scaled int16 comes back with the register's resolution, not float noise
    assert readings[0]["temperature_c"] == round(readings[0]["temperature_c"], 1)


@pytest.mark.asyncio
async def test_scaling_signed_values_and_input_registers():
    values = {"torque_nm": -12.34, "temperature_c": -5.5, "material_remaining": 512.25}
    image = encode(values)
    assert image[1] == 65536 - 1234  # int16 two's complement of -1234 (scale 0.01)

    class Fixed(MachineModel):
        def sample(self, t: float) -> dict[str, float]:
            return values

    async with simulator(Fixed(kind="cnc_mill", rated_power_kw=1.0)) as port:
        registers = {
            "torque_nm": {"address": 1, "type": "int16", "scale": 0.01, "table": "input"},
            "temperature_c": {"address": 3, "type": "int16", "scale": 0.1},
            "material_remaining": {"address": 6, "type": "float32", "table": "input"},
        }
        async with connected(ModbusSource("127.0.0.1", port, registers)) as source:
            assert len(source.spans) == 2  # one request per table
            reading = await source.read()
    assert reading == {"torque_nm": -12.34, "temperature_c": -5.5, "material_remaining": 512.25}


@pytest.mark.asyncio
async def test_an_address_the_device_does_not_have_is_a_clear_error():
    async with simulator(MachineModel(kind="cnc_mill", rated_power_kw=7.5)) as port:
        registers = {"power_kw": {"address": 900, "type": "uint16"}}
        async with connected(ModbusSource("127.0.0.1", port, registers)) as source:
            with pytest.raises(MappingError, match="power_kw <- holding 900"):
                await source.read()


@pytest.mark.asyncio
async def test_an_unreachable_device_is_a_connection_error():
    source = ModbusSource("127.0.0.1", free_port(), {"power_kw": {"address": 0}}, timeout=0.5)
    with pytest.raises(ConnectionError, match="unreachable"):
        await source.connect()
    await source.disconnect()


def test_register_maps_are_validated():
    with pytest.raises(ValueError, match="type must be one of"):
        RegisterSpec.parse("x", {"address": 0, "type": "int12"})
    with pytest.raises(ValueError, match="address must be"):
        RegisterSpec.parse("x", {"address": -1})
    with pytest.raises(ValueError, match="table must be"):
        RegisterSpec.parse("x", {"address": 0, "table": "coils"})
    with pytest.raises(ValueError, match="unknown register keys"):
        RegisterSpec.parse("x", {"address": 0, "scael": 2})
    with pytest.raises(ValueError, match="scale"):
        RegisterSpec.parse("x", {"address": 0, "scale": 0})


def test_reads_are_grouped_within_the_protocol_limit():
    specs = [RegisterSpec.parse(f"s{a}", {"address": a}) for a in (0, 5, 40, 100, 110, 400)]
    spans = plan_reads(specs)
    assert [(s.start, s.count) for s in spans] == [(0, 6), (40, 1), (100, 11), (400, 1)]
    assert all(s.count <= 125 for s in spans)
    wide = [
        RegisterSpec.parse(f"w{a}", {"address": a, "type": "float64"}) for a in range(0, 200, 4)
    ]
    assert all(s.count <= 125 for s in plan_reads(wide))
    assert sum(len(s.specs) for s in plan_reads(wide)) == len(wide)


@pytest.mark.asyncio
async def test_control_registers_start_parts_and_inject_faults():
    model = MachineModel(kind="fdm_printer", rated_power_kw=0.35, seed=3)
    async with simulator(model) as port:
        control = ModbusControl(f"modbus://127.0.0.1:{port}")
        await control.part_start(load_kw=0.2, seconds=120)
        assert model.running and model.load_kw == pytest.approx(0.2) and model.part_seconds == 120
        await control.inject(Fault.OVERHEAT)
        assert model.fault == Fault.OVERHEAT
        async with connected(ModbusSource("127.0.0.1", port, REGISTER_MAP)) as source:
            await asyncio.sleep(0.5)
            reading = await source.read()
        assert reading["power_kw"] > 0.1  # heaters on
        await control.part_stop()
        assert not model.running and model.fault == Fault.OVERHEAT


@pytest.mark.asyncio
@pytest.mark.parametrize(
    ("address", "values"),
    [
        (CONTROL_REGISTERS["running"], [2]),  # running is 0 or 1
        (CONTROL_REGISTERS["fault"], [len(FAULT_CODES)]),  # no such fault
        (0, [1000]),  # a signal, not a control
        (CONTROL_REGISTERS["fault"], [0, 0, 0]),  # runs past the control block
    ],
)
async def test_a_bad_control_write_is_refused_and_changes_nothing(address, values):
    model = MachineModel(kind="fdm_printer", rated_power_kw=0.35, seed=3)
    async with simulator(model) as port:
        with pytest.raises(ControlError, match="refused"):
            await ModbusControl(f"modbus://127.0.0.1:{port}")._write(address, values)
    assert not model.running and model.fault == Fault.NONE
