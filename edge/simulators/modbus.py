"""Modbus TCP simulator: `python -m edge.simulators.modbus --port 5020 --kind fdm_printer`.

A device (unit id 1) whose holding registers (also readable as input registers) hold the
machine model's signals, refreshed on every read, in the layout of REGISTER_MAP: scaled
16-bit integers as PLCs usually expose them, plus a 32-bit float. Holding registers
CONTROL_REGISTERS are writable: the node's work agent starts and stops parts through them (the
part's mean power and duration first, then running = 1), and the fault register injects a fault
at run time (its value indexes FAULT_CODES; edge/simulators/control.py writes them).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import time
from typing import Any

from pymodbus.client import AsyncModbusTcpClient
from pymodbus.constants import ExcCodes
from pymodbus.server import ModbusTcpServer
from pymodbus.simulator import DataType, SimData, SimDevice

from edge.simulators.machines import Fault, MachineModel, apply_control

logger = logging.getLogger(__name__)

UNIT = 1
# signal -> register spec, in the gateway's register-map format (edge/sources/modbus.py)
REGISTER_MAP: dict[str, dict[str, Any]] = {
    "spindle_rpm": {"address": 0, "type": "uint16"},
    "torque_nm": {"address": 1, "type": "int16", "scale": 0.01},
    "power_kw": {"address": 2, "type": "uint16", "scale": 0.001},
    "temperature_c": {"address": 3, "type": "int16", "scale": 0.1},
    "vibration_mm_s": {"address": 4, "type": "uint16", "scale": 0.001},
    "progress_pct": {"address": 5, "type": "uint16", "scale": 0.01},
    "material_remaining": {"address": 6, "type": "float32"},
}
# control -> holding register (uint16): running 0/1, the part's mean power in W, its duration in
# s, the fault as an index into FAULT_CODES
CONTROL_REGISTERS = {"running": 10, "load_w": 11, "seconds": 12, "fault": 13}
FAULT_CODES = list(Fault)
REGISTER_COUNT = 16
_CONVERT = AsyncModbusTcpClient


def encode(values: dict[str, float]) -> list[int]:
    """The register image of one sample (signals the machine does not have read as 0)."""
    registers = [0] * REGISTER_COUNT
    for signal, spec in REGISTER_MAP.items():
        raw = values.get(signal, 0.0) / spec.get("scale", 1.0)
        kind = spec["type"]
        if kind == "float32":
            words = _CONVERT.convert_to_registers(float(raw), _CONVERT.DATATYPE.FLOAT32)
        else:
            low, high = (-32768, 32767) if kind == "int16" else (0, 65535)
            number = min(max(round(raw), low), high)  # saturate like a PLC would
            datatype = _CONVERT.DATATYPE.INT16 if kind == "int16" else _CONVERT.DATATYPE.UINT16
            words = _CONVERT.convert_to_registers(number, datatype)
        address = spec["address"]
        registers[address : address + len(words)] = words
    return registers


def control_image(model: MachineModel) -> dict[int, int]:
    """The control registers as the machine's state shows them."""
    return {
        CONTROL_REGISTERS["running"]: int(model.running),
        CONTROL_REGISTERS["load_w"]: min(round(model.load_kw * 1000), 65535),
        CONTROL_REGISTERS["seconds"]: min(round(model.part_seconds), 65535),
        CONTROL_REGISTERS["fault"]: FAULT_CODES.index(model.fault),
    }


def apply_write(model: MachineModel, t: float, address: int, values: list[int]) -> bool:
    """A write of `values` from `address`: False (and nothing done) when it touches a register
    that is not a control or holds a value out of range."""
    registers = control_image(model)
    for offset, value in enumerate(values):
        if address + offset not in registers:
            return False
        registers[address + offset] = int(value)
    running = registers[CONTROL_REGISTERS["running"]]
    fault = registers[CONTROL_REGISTERS["fault"]]
    if running not in (0, 1) or not 0 <= fault < len(FAULT_CODES):
        return False
    apply_control(
        model,
        t,
        running=bool(running),
        load_kw=registers[CONTROL_REGISTERS["load_w"]] / 1000,
        seconds=float(registers[CONTROL_REGISTERS["seconds"]]),
        fault=FAULT_CODES[fault].value,
    )
    return True


def build_device(model: MachineModel) -> SimDevice:
    started = time.monotonic()

    async def refresh(
        function_code: int,
        start_address: int,
        address: int,
        count: int,
        registers: list[int],
        set_values: list[int] | list[bool] | None,
    ) -> ExcCodes | None:
        t = time.monotonic() - started
        if set_values is None:  # a read: show the machine as it is now
            image = encode(model.sample(t))
            for register, value in control_image(model).items():
                image[register] = value
            registers[: len(image)] = image
            return None
        if not apply_write(model, t, address, [int(v) for v in set_values]):
            logger.warning("refused a write of %s at register %s", set_values, address)
            return ExcCodes.ILLEGAL_VALUE
        return None

    return SimDevice(
        id=UNIT,
        simdata=SimData(0, count=REGISTER_COUNT, values=0, datatype=DataType.REGISTERS),
        action=refresh,
    )


async def serve(*, port: int, model: MachineModel, ready: asyncio.Event | None = None) -> None:
    server = ModbusTcpServer(build_device(model), address=("127.0.0.1", port))
    await server.serve_forever(background=True)
    try:
        if ready is not None:
            ready.set()
        await asyncio.Event().wait()
    finally:
        await server.shutdown()  # type: ignore[no-untyped-call]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, default=5020)
    parser.add_argument("--kind", choices=["cnc_mill", "fdm_printer"], default="fdm_printer")
    parser.add_argument("--rated-power-kw", type=float, default=0.35)
    parser.add_argument("--fault", choices=[f.value for f in Fault], default="none")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    model = MachineModel(
        kind=args.kind, rated_power_kw=args.rated_power_kw, fault=Fault(args.fault)
    )
    asyncio.run(serve(port=args.port, model=model))


if __name__ == "__main__":
    main()
