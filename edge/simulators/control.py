"""Driving a simulated machine: the node's work agent tells it when a part starts and stops, and
a person injects a fault, over the protocol the gateway reads it with (OPC UA variables, Modbus
holding registers, an MTConnect PUT; see each simulator's docstring).

    python -m edge.simulators.control --protocol opcua --url opc.tcp://127.0.0.1:4841/imewe/ \
        fault bearing_wear
    python -m edge.simulators.control --protocol modbus --url modbus://127.0.0.1:5021 fault none

(`manage.py demo_fault Mill-01 bearing_wear` does the same for the `make run` machines.)
"""

from __future__ import annotations

import argparse
import asyncio
import math
import urllib.error
import urllib.request
from typing import Protocol
from urllib.parse import urlencode, urlparse

from edge.simulators.machines import Fault


class ControlError(Exception):
    """The simulator refused or could not be reached."""


class MachineControl(Protocol):
    async def part_start(self, *, load_kw: float, seconds: float) -> None: ...

    async def part_stop(self) -> None: ...

    async def inject(self, fault: Fault) -> None: ...


def _check(load_kw: float, seconds: float) -> None:
    if not (math.isfinite(load_kw) and load_kw >= 0 and math.isfinite(seconds) and seconds >= 0):
        raise ValueError("load_kw and seconds must be finite numbers >= 0")


class OpcUaControl:
    def __init__(self, url: str, *, timeout: float = 4.0) -> None:
        self.url = url
        self.timeout = timeout

    async def _write(self, values: dict[str, object]) -> None:
        from asyncua import ua
        from asyncua.client.client import Client
        from asyncua.ua.uaerrors import UaError

        from edge.simulators.opcua import CONTROL_IDS

        try:
            async with Client(url=self.url, timeout=self.timeout) as client:
                nodes, variants = [], []
                for name, value in values.items():
                    node_id, varianttype, _ = CONTROL_IDS[name]
                    nodes.append(client.get_node(f"ns=2;s={node_id}"))
                    variants.append(ua.Variant(value, varianttype))
                await client.write_values(nodes, variants)
        except (OSError, TimeoutError, UaError) as exc:
            raise ControlError(f"OPC UA {self.url}: {exc}") from exc

    async def part_start(self, *, load_kw: float, seconds: float) -> None:
        _check(load_kw, seconds)
        # one write request, running last: the simulator reads the part's figures with it
        await self._write({"load_kw": load_kw, "seconds": seconds, "running": True})

    async def part_stop(self) -> None:
        await self._write({"running": False})

    async def inject(self, fault: Fault) -> None:
        await self._write({"fault": fault.value})


class ModbusControl:
    def __init__(self, url: str, *, unit: int = 1, timeout: float = 4.0) -> None:
        parsed = urlparse(url if "://" in url else f"modbus://{url}")
        self.host, self.port = parsed.hostname or "127.0.0.1", parsed.port or 502
        self.unit = unit
        self.timeout = timeout

    async def _write(self, address: int, values: list[int]) -> None:
        from pymodbus.client import AsyncModbusTcpClient
        from pymodbus.exceptions import ModbusException

        client = AsyncModbusTcpClient(self.host, port=self.port, timeout=self.timeout)
        try:
            if not await client.connect():
                raise ControlError(f"Modbus {self.host}:{self.port}: not reachable")
            result = await client.write_registers(address, values, device_id=self.unit)
            if result.isError():
                raise ControlError(f"Modbus {self.host}:{self.port}: refused ({result})")
        except ModbusException as exc:
            raise ControlError(f"Modbus {self.host}:{self.port}: {exc}") from exc
        finally:
            client.close()

    async def part_start(self, *, load_kw: float, seconds: float) -> None:
        from edge.simulators.modbus import CONTROL_REGISTERS

        _check(load_kw, seconds)
        first = CONTROL_REGISTERS["running"]
        assert [CONTROL_REGISTERS[k] for k in ("load_w", "seconds")] == [first + 1, first + 2]
        # one write of running, load and duration together
        load_w = min(round(load_kw * 1000), 65535)
        await self._write(first, [1, load_w, min(round(seconds), 65535)])

    async def part_stop(self) -> None:
        from edge.simulators.modbus import CONTROL_REGISTERS

        await self._write(CONTROL_REGISTERS["running"], [0])

    async def inject(self, fault: Fault) -> None:
        from edge.simulators.modbus import CONTROL_REGISTERS, FAULT_CODES

        await self._write(CONTROL_REGISTERS["fault"], [FAULT_CODES.index(fault)])


class MtConnectControl:
    def __init__(self, url: str, *, timeout: float = 4.0) -> None:
        self.url = url.rstrip("/")
        self.timeout = timeout

    def _put_sync(self, query: dict[str, str]) -> None:
        request = urllib.request.Request(
            f"{self.url}/control?{urlencode(query)}", data=b"", method="PUT"
        )
        try:
            with urllib.request.urlopen(request, timeout=self.timeout):
                pass
        except urllib.error.HTTPError as exc:
            raise ControlError(f"MTConnect {self.url}: HTTP {exc.code}") from None
        except OSError as exc:
            raise ControlError(f"MTConnect {self.url}: {exc}") from exc

    async def _put(self, query: dict[str, str]) -> None:
        await asyncio.to_thread(self._put_sync, query)

    async def part_start(self, *, load_kw: float, seconds: float) -> None:
        _check(load_kw, seconds)
        await self._put({"running": "1", "load_kw": f"{load_kw:.4f}", "seconds": f"{seconds:.1f}"})

    async def part_stop(self) -> None:
        await self._put({"running": "0"})

    async def inject(self, fault: Fault) -> None:
        await self._put({"fault": fault.value})


def control_for(protocol: str, url: str, *, unit: int = 1) -> MachineControl:
    if protocol == "opcua":
        return OpcUaControl(url)
    if protocol == "modbus":
        return ModbusControl(url, unit=unit)
    if protocol == "mtconnect":
        return MtConnectControl(url)
    raise ValueError(f"no simulator control over {protocol!r}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--protocol", choices=["opcua", "modbus", "mtconnect"], default="opcua")
    parser.add_argument("--url", required=True)
    parser.add_argument("--unit", type=int, default=1)
    parser.add_argument("command", choices=["fault"])
    parser.add_argument("fault", choices=[f.value for f in Fault])
    args = parser.parse_args()
    control = control_for(args.protocol, args.url, unit=args.unit)
    asyncio.run(control.inject(Fault(args.fault)))
    print(f"{args.url}: fault {args.fault}")


if __name__ == "__main__":
    main()
