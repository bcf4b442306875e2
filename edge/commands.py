"""Remote commands applied to a machine: pause, resume, stop (a fixed value written where the
device map's `commands` says) and setpoints (a value written where `setpoints` says, within its
`low`-`high`). Only what the running configuration declares is written; anything else fails with
the reason, which goes back to the platform as the command's outcome.

    commands:  {stop: {node_id: "ns=2;s=Machine1.Job.Running", type: boolean, value: false}}
    setpoints: {load_kw: {node_id: "ns=2;s=Machine1.Job.LoadKw", type: double, low: 0, high: 50}}
    (Modbus: {address: 40, type: uint16, scale: 0.1, offset: 0} instead of node_id/type: double)

OPC UA writes are read back, so the outcome says what the device holds afterwards.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlparse

COMMAND_TIMEOUT_S = 15.0
INTEGER_RANGES = {
    "int16": (-(2**15), 2**15 - 1),
    "uint16": (0, 2**16 - 1),
    "int32": (-(2**31), 2**31 - 1),
    "uint32": (0, 2**32 - 1),
    "int64": (-(2**63), 2**63 - 1),
}
OPCUA_TYPES = ("double", "float", "boolean", *INTEGER_RANGES)


class CommandFailed(Exception):
    pass


def _target(device: Mapping[str, Any], command: Mapping[str, Any]) -> tuple[Mapping[str, Any], Any]:
    """The write spec and the value to write, or CommandFailed saying why not."""
    kind = command.get("kind")
    if kind == "setpoint":
        name = command.get("setpoint")
        spec = (device.get("setpoints") or {}).get(name)
        if not isinstance(spec, Mapping):
            raise CommandFailed(f"setpoint {name!r} is not writable in the running configuration")
        value = command.get("value")
        if not isinstance(value, int | float) or not math.isfinite(value):
            raise CommandFailed(f"setpoint {name}: {value!r} is not a number")
        low, high = spec.get("low", -math.inf), spec.get("high", math.inf)
        if not low <= value <= high:
            raise CommandFailed(f"setpoint {name}: {value:g} is outside {low:g}-{high:g}")
        return spec, value
    spec = (device.get("commands") or {}).get(kind)
    if not isinstance(spec, Mapping) or "value" not in spec:
        raise CommandFailed(f"the running configuration has no {kind!r} command for this machine")
    return spec, spec["value"]


def _typed(kind: str, value: Any) -> Any:
    if kind == "boolean":
        return bool(value)
    if kind in INTEGER_RANGES:
        number = round(float(value))
        low, high = INTEGER_RANGES[kind]
        if not low <= number <= high:
            raise CommandFailed(f"{value!r} does not fit {kind}")
        return number
    return float(value)


async def _opcua_write(url: str, node_id: str, kind: str, value: Any) -> str:
    from asyncua import ua
    from asyncua.client.client import Client
    from asyncua.ua.uaerrors import UaStatusCodeError

    if kind not in OPCUA_TYPES:
        raise CommandFailed(f"type {kind!r} is not one of {', '.join(OPCUA_TYPES)}")
    variant = {
        "double": ua.VariantType.Double,
        "float": ua.VariantType.Float,
        "boolean": ua.VariantType.Boolean,
        "int16": ua.VariantType.Int16,
        "uint16": ua.VariantType.UInt16,
        "int32": ua.VariantType.Int32,
        "uint32": ua.VariantType.UInt32,
        "int64": ua.VariantType.Int64,
    }[kind]
    typed = _typed(kind, value)
    async with Client(url=url, timeout=COMMAND_TIMEOUT_S / 3) as client:
        node = client.get_node(node_id)
        try:
            await node.write_value(ua.DataValue(ua.Variant(typed, variant)))
        except UaStatusCodeError as exc:
            raise CommandFailed(f"{node_id} refused the write: {exc}") from None
        now = await node.read_value()
    return f"wrote {typed!r} to {node_id}; it reads {now!r}"


async def _modbus_write(device: Mapping[str, Any], spec: Mapping[str, Any], value: Any) -> str:
    from pymodbus.client import AsyncModbusTcpClient

    from edge.sources.modbus import DATATYPES

    address = spec.get("address")
    if not isinstance(address, int) or not 0 <= address <= 65535:
        raise CommandFailed(f"address {address!r} is not 0-65535")
    kind = str(spec.get("type", "uint16"))
    if kind not in DATATYPES:
        raise CommandFailed(f"type {kind!r} is not one of {', '.join(DATATYPES)}")
    scale, offset = float(spec.get("scale", 1.0)), float(spec.get("offset", 0.0))
    if scale == 0 or not math.isfinite(scale):
        raise CommandFailed("scale must be a non-zero number")
    raw = (float(value) - offset) / scale
    typed = float(raw) if kind.startswith("float") else _typed(kind, raw)
    registers = AsyncModbusTcpClient.convert_to_registers(
        typed, DATATYPES[kind], word_order="little" if spec.get("word_order") == "little" else "big"
    )
    url = urlparse(
        str(device["url"]) if "://" in str(device["url"]) else f"modbus://{device['url']}"
    )
    client = AsyncModbusTcpClient(
        url.hostname or "127.0.0.1", port=url.port or 502, timeout=COMMAND_TIMEOUT_S / 3
    )
    try:
        if not await client.connect():
            raise CommandFailed(f"Modbus {url.hostname}:{url.port}: not reachable")
        result = await client.write_registers(
            address, registers, device_id=int(device.get("unit", 1))
        )
        if result.isError():
            raise CommandFailed(f"the device refused the write to {address}: {result}")
    finally:
        client.close()
    return f"wrote {typed!r} to register {address}"


async def execute(device: Mapping[str, Any], command: Mapping[str, Any]) -> str:
    """Apply `command` to the machine of `device` (its entry in the running configuration);
    the outcome as words, or CommandFailed (or the protocol's error) saying why not."""
    spec, value = _target(device, command)
    protocol = device.get("protocol")
    if protocol == "opcua":
        node_id = spec.get("node_id")
        if not isinstance(node_id, str) or not node_id:
            raise CommandFailed("the write spec has no node_id")
        return await _opcua_write(
            str(device["url"]), node_id, str(spec.get("type", "double")), value
        )
    if protocol == "modbus":
        return await _modbus_write(device, spec, value)
    raise CommandFailed(f"{protocol} machines are read-only through this gateway")
