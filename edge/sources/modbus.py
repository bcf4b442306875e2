"""Polls a Modbus TCP device (pymodbus client) through a register map with scaling.

A register map names, per telemetry signal, where the value lives and how to decode it:

    registers:
      spindle_rpm:   {address: 0, type: uint16}
      temperature_c: {address: 3, type: int16, scale: 0.1}
      material_remaining: {address: 6, type: float32, table: input, word_order: big}

`table` is `holding` (function 3, the default) or `input` (function 4). Registers of a table
that lie close together are read in one request (at most 125 registers, the protocol's limit),
so a typical map costs one round trip per poll.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from pymodbus.client import AsyncModbusTcpClient
from pymodbus.exceptions import ModbusException

from edge.sources.base import MappingError

MAX_REGISTERS_PER_READ = 125  # Modbus application protocol limit for functions 3 and 4
MERGE_GAP = 16  # read across gaps up to this many registers rather than send another request
DATATYPES = {
    "int16": AsyncModbusTcpClient.DATATYPE.INT16,
    "uint16": AsyncModbusTcpClient.DATATYPE.UINT16,
    "int32": AsyncModbusTcpClient.DATATYPE.INT32,
    "uint32": AsyncModbusTcpClient.DATATYPE.UINT32,
    "float32": AsyncModbusTcpClient.DATATYPE.FLOAT32,
    "float64": AsyncModbusTcpClient.DATATYPE.FLOAT64,
}
TABLES = ("holding", "input")


@dataclass(frozen=True)
class RegisterSpec:
    signal: str
    address: int
    type: str = "uint16"
    scale: float = 1.0
    offset: float = 0.0
    table: Literal["holding", "input"] = "holding"
    word_order: Literal["big", "little"] = "big"

    @property
    def width(self) -> int:
        return int(DATATYPES[self.type].value[1])

    @classmethod
    def parse(cls, signal: str, raw: Mapping[str, Any]) -> RegisterSpec:
        unknown = set(raw) - {"address", "type", "scale", "offset", "table", "word_order"}
        if unknown:
            raise ValueError(f"{signal}: unknown register keys {sorted(unknown)}")
        address = raw.get("address")
        if not isinstance(address, int) or not 0 <= address <= 65535:
            raise ValueError(f"{signal}: address must be an integer 0-65535")
        kind = str(raw.get("type", "uint16"))
        if kind not in DATATYPES:
            raise ValueError(f"{signal}: type must be one of {', '.join(DATATYPES)}")
        table = str(raw.get("table", "holding"))
        if table not in TABLES:
            raise ValueError(f"{signal}: table must be holding or input")
        word_order = str(raw.get("word_order", "big"))
        if word_order not in ("big", "little"):
            raise ValueError(f"{signal}: word_order must be big or little")
        scale = float(raw.get("scale", 1.0))
        if scale == 0 or not math.isfinite(scale):
            raise ValueError(f"{signal}: scale must be a non-zero number")
        return cls(
            signal,
            address,
            kind,
            scale,
            float(raw.get("offset", 0.0)),
            "input" if table == "input" else "holding",
            "little" if word_order == "little" else "big",
        )


@dataclass(frozen=True)
class ReadSpan:
    table: str
    start: int
    count: int
    specs: tuple[RegisterSpec, ...]


def plan_reads(specs: list[RegisterSpec]) -> list[ReadSpan]:
    """Group the map into as few requests as the protocol allows."""
    spans: list[ReadSpan] = []
    for table in TABLES:
        group = sorted((s for s in specs if s.table == table), key=lambda s: s.address)
        current: list[RegisterSpec] = []
        start = end = 0
        for spec in group:
            spec_end = spec.address + spec.width
            if (
                current
                and spec.address - end <= MERGE_GAP
                and spec_end - start <= MAX_REGISTERS_PER_READ
            ):
                current.append(spec)
                end = max(end, spec_end)
                continue
            if current:
                spans.append(ReadSpan(table, start, end - start, tuple(current)))
            current, start, end = [spec], spec.address, spec_end
        if current:
            spans.append(ReadSpan(table, start, end - start, tuple(current)))
    return spans


class ModbusSource:
    """`registers` maps a telemetry signal to its register spec (see the module docstring)."""

    def __init__(
        self,
        host: str,
        port: int,
        registers: Mapping[str, Mapping[str, Any]],
        *,
        unit: int = 1,
        timeout: float = 3.0,
    ) -> None:
        if not 0 <= unit <= 247:
            raise ValueError("unit must be 0-247")
        self.unit = unit
        self.specs = [RegisterSpec.parse(signal, raw) for signal, raw in registers.items()]
        if not self.specs:
            raise ValueError("the register map is empty")
        self.spans = plan_reads(self.specs)
        self.host, self.port, self.timeout = host, port, timeout
        self._client: AsyncModbusTcpClient | None = None

    @property
    def client(self) -> AsyncModbusTcpClient:
        if self._client is None:
            raise ConnectionError("not connected")
        return self._client

    async def connect(self) -> None:
        # Made here: pymodbus binds its client to the running event loop.
        # retries=0: the gateway's poll loop owns retrying and backoff.
        self._client = AsyncModbusTcpClient(
            self.host, port=self.port, timeout=self.timeout, retries=0
        )
        if not await self._client.connect():
            raise ConnectionError(f"Modbus device {self.host}:{self.port} unreachable")

    async def disconnect(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None

    async def read(self) -> dict[str, float]:
        out: dict[str, float] = {}
        bad: dict[str, str] = {}
        for span in self.spans:
            reader = (
                self.client.read_input_registers
                if span.table == "input"
                else self.client.read_holding_registers
            )
            try:
                response = await reader(span.start, count=span.count, device_id=self.unit)
            except ModbusException as exc:  # no answer: the link, not the map
                raise ConnectionError(str(exc)) from exc
            if response.isError():
                # an exception response (illegal address, ...) means the map is wrong
                for spec in span.specs:
                    bad[spec.signal] = f"{span.table} {spec.address}: device answered {response!s}"
                continue
            for spec in span.specs:
                offset = spec.address - span.start
                words = response.registers[offset : offset + spec.width]
                raw = AsyncModbusTcpClient.convert_from_registers(
                    words, DATATYPES[spec.type], word_order=spec.word_order
                )
                assert isinstance(raw, int | float)
                # rounded so 0.1-scaled registers read 25.4, not 25.400000000000002
                value = round(float(raw) * spec.scale + spec.offset, 9)
                if math.isfinite(value):
                    out[spec.signal] = value
                else:
                    bad[spec.signal] = f"{span.table} {spec.address}: not a finite number"
        if bad:
            raise MappingError(bad)
        return out
