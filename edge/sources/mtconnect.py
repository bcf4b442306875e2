"""Follows an MTConnect agent's sample stream (HTTP `current` then `sample?from=`), as CNC
controllers expose it. Every observation keeps the agent's own timestamp; observations that
share a timestamp become one telemetry point.

    signals: {spindle_rpm: S1speed, power_kw: {id: S1power, scale: 0.001}}

maps a telemetry signal to a dataItemId (with an optional scale, e.g. W -> kW). If the gateway
falls so far behind that the agent's ring buffer has moved past it (OUT_OF_RANGE), it resumes
from `current`, and the gap is logged and counted in `missed`: an agent cannot replay what it
no longer holds.
"""

from __future__ import annotations

import asyncio
import logging
import math
import urllib.error
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from xml.etree import ElementTree as ET

from edge.sources.base import MappingError

logger = logging.getLogger(__name__)
MAX_COUNT = 10_000
UNAVAILABLE = "UNAVAILABLE"


class MtConnectError(Exception):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


@dataclass
class Streams:
    next_sequence: int
    first_sequence: int
    points: list[tuple[datetime, dict[str, float]]]  # oldest first
    bad: dict[str, str]  # signal -> why its value could not be used
    present: set[str]  # mapped dataItemIds the document mentions (with a value or not)


def parse_streams(body: bytes, items: Mapping[str, tuple[str, float]]) -> Streams:
    """Reads an MTConnectStreams document (or raises the MTConnectError it is). `items` maps
    dataItemId -> (signal, scale)."""
    root = ET.fromstring(body)
    if _local(root.tag) == "MTConnectError":
        error = next((e for e in root.iter() if _local(e.tag) == "Error"), None)
        code = error.get("errorCode", "UNKNOWN") if error is not None else "UNKNOWN"
        text = (error.text or "").strip() if error is not None else ""
        raise MtConnectError(code, text)
    if _local(root.tag) != "MTConnectStreams":
        raise MtConnectError("INVALID_RESPONSE", f"unexpected document {_local(root.tag)}")
    header = next(e for e in root.iter() if _local(e.tag) == "Header")
    next_sequence = int(header.get("nextSequence", "0"))
    first_sequence = int(header.get("firstSequence", "0"))
    observed: list[tuple[int, datetime, str, float]] = []
    bad: dict[str, str] = {}
    present: set[str] = set()
    for element in root.iter():
        item = element.get("dataItemId")
        if item is None or item not in items:
            continue
        present.add(item)
        signal, scale = items[item]
        text = (element.text or "").strip()
        if text == UNAVAILABLE:  # the controller has no value right now (e.g. powered off)
            continue
        try:
            value = float(text) * scale
        except ValueError:
            bad[signal] = f"{item}: not a number ({text[:40]!r})"
            continue
        if not math.isfinite(value):
            bad[signal] = f"{item}: not a finite number"
            continue
        stamp = datetime.fromisoformat(element.get("timestamp", ""))
        observed.append((int(element.get("sequence", "0")), stamp, signal, value))
    observed.sort()
    points: dict[datetime, dict[str, float]] = {}
    for _, stamp, signal, value in observed:
        points.setdefault(stamp, {})[signal] = value
    return Streams(next_sequence, first_sequence, list(points.items()), bad, present)


class MtConnectSource:
    def __init__(
        self,
        url: str,
        signals: Mapping[str, str | Mapping[str, Any]],
        *,
        device: str = "",
        timeout: float = 4.0,
    ) -> None:
        self.base = url.rstrip("/") + (f"/{device}" if device else "")
        self.items: dict[str, tuple[str, float]] = {}
        for signal, spec in signals.items():
            if isinstance(spec, str):
                self.items[spec] = (signal, 1.0)
            else:
                self.items[str(spec["id"])] = (signal, float(spec.get("scale", 1.0)))
        self.timeout = timeout
        self.next_sequence: int | None = None
        self.missed = 0

    async def _get(self, path: str) -> bytes:
        def fetch() -> bytes:
            try:
                with urllib.request.urlopen(self.base + path, timeout=self.timeout) as response:
                    return bytes(response.read())
            except urllib.error.HTTPError as exc:  # agents answer errors with an XML body
                return bytes(exc.read())

        return await asyncio.to_thread(fetch)

    async def connect(self) -> None:
        # HTTP needs no session. After a dropped link the stream resumes where it stopped; an
        # agent that restarted meanwhile answers OUT_OF_RANGE and we resume from `current`.
        return None

    async def disconnect(self) -> None:
        return None

    async def read_timed(self) -> list[tuple[datetime, dict[str, float]]]:
        if self.next_sequence is None:
            streams = parse_streams(await self._get("/current"), self.items)
            # `current` lists every data item the agent has: a mapped id absent there is a typo
            missing = {
                signal: f"{item}: no such dataItemId at the agent"
                for item, (signal, _) in self.items.items()
                if item not in streams.present
            }
            if missing or streams.bad:
                raise MappingError({**missing, **streams.bad})
            self.next_sequence = streams.next_sequence
            return streams.points
        try:
            path = f"/sample?from={self.next_sequence}&count={MAX_COUNT}"
            streams = parse_streams(await self._get(path), self.items)
        except MtConnectError as exc:
            if exc.code != "OUT_OF_RANGE":
                raise
            streams = parse_streams(await self._get("/current"), self.items)
            lost = max(streams.first_sequence - self.next_sequence, 0)
            self.missed += lost
            logger.warning(
                "MTConnect %s: the agent's buffer moved past sequence %s; %d observations "
                "could not be fetched, resuming from current",
                self.base,
                self.next_sequence,
                lost,
            )
        if streams.bad:
            raise MappingError(streams.bad)
        self.next_sequence = streams.next_sequence
        return streams.points
