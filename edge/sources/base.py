"""What the gateway expects of a device source (OPC UA, Modbus TCP, MTConnect)."""

from __future__ import annotations

from datetime import datetime
from typing import Protocol


class MappingError(Exception):
    """The device answered, but a mapped signal is wrong (unknown node id, illegal register
    address, not a number). Retrying cannot help: the configuration must be fixed."""

    def __init__(self, bad: dict[str, str]) -> None:
        super().__init__("; ".join(f"{k} <- {v}" for k, v in bad.items()))
        self.bad = bad


class Source(Protocol):
    async def connect(self) -> None: ...

    async def disconnect(self) -> None: ...

    async def read(self) -> dict[str, float]:
        """The current value of every mapped signal. Raises MappingError for a wrong map and
        any other exception when the device cannot be reached."""
        ...


class TimedSource(Protocol):
    """A source whose device stamps its own observations (MTConnect): each read returns the
    observations since the previous read, oldest first, with the device's timestamps."""

    async def connect(self) -> None: ...

    async def disconnect(self) -> None: ...

    async def read_timed(self) -> list[tuple[datetime, dict[str, float]]]: ...
