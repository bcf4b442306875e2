"""Polls an OPC UA server (asyncua client) and maps node ids to telemetry signals."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from asyncua.client.client import Client
from asyncua.ua.attribute_ids import AttributeIds

from edge.sources.base import MappingError

logger = logging.getLogger(__name__)


class OpcUaReadError(MappingError):
    """A mapped OPC UA node id is unknown, not readable or not a number."""


class OpcUaSource:
    """`signals` maps a telemetry signal to an OPC UA node id, e.g.
    {"spindle_rpm": "ns=2;s=Machine1.Spindle.Speed"}."""

    def __init__(self, url: str, signals: Mapping[str, str], *, timeout: float = 4.0) -> None:
        self.url = url
        self.signals = dict(signals)
        self.client = Client(url=url, timeout=timeout)
        self._nodes: list[Any] = []

    async def connect(self) -> None:
        await self.client.connect()
        self._nodes = [self.client.get_node(node_id) for node_id in self.signals.values()]

    async def disconnect(self) -> None:
        await self.client.disconnect()

    async def read(self) -> dict[str, float]:
        """One read of every mapped variable (a single ReadRequest). A bad status (unknown node
        id, no access) raises OpcUaReadError naming the signals: a mapping mistake is loud."""
        results = await self.client.read_attributes(self._nodes, AttributeIds.Value)
        out: dict[str, float] = {}
        bad: dict[str, str] = {}
        for (signal, node_id), result in zip(self.signals.items(), results, strict=True):
            status = result.StatusCode
            if status is not None and not status.is_good():
                bad[signal] = f"{node_id}: {status.name}"
                continue
            value = result.Value.Value if result.Value is not None else None
            if isinstance(value, int | float) and not isinstance(value, bool):
                out[signal] = float(value)
            else:
                bad[signal] = f"{node_id}: not a number ({value!r})"
        if bad:
            raise OpcUaReadError(bad)
        return out
