from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qs

from channels.db import database_sync_to_async

from apps.core.metrics import LIVE_POINT_AGE
from apps.core.sockets import CLOSE_BAD_REQUEST, CLOSE_FORBIDDEN, LiveConsumer
from apps.telemetry.live import telemetry_group
from apps.telemetry.selectors import telemetry_nodes


def _observe_age(payload: dict[str, Any]) -> None:
    try:
        sent_at = datetime.fromisoformat(payload["time"])
    except (KeyError, TypeError, ValueError):  # not a point (never expected): not measured
        return
    LIVE_POINT_AGE.observe(max((datetime.now(UTC) - sent_at).total_seconds(), 0.0))


MIN_INTERVAL_S = 0.25  # at most one message per node per 250 ms, with the newest values
MAX_NODES = 200


class TelemetryConsumer(LiveConsumer):
    """/ws/telemetry/?nodes=1,2,3 — live points of nodes the caller may watch. Points arriving
    faster than every 250 ms per node are coalesced: the browser gets the newest values. Closes
    with 4403 when the caller may no longer watch one of the nodes."""

    flusher: asyncio.Task[None] | None = None

    async def start(self, user: Any) -> None:
        raw = parse_qs(self.scope.get("query_string", b"").decode()).get("nodes", [""])[0]
        try:
            wanted = sorted({int(v) for v in raw.split(",") if v.strip()})
        except ValueError:
            wanted = []
        if not wanted or len(wanted) > MAX_NODES:
            await self.refuse(
                CLOSE_BAD_REQUEST, f"nodes=<id,id,...> names 1 to {MAX_NODES} node ids."
            )
            return
        self.node_ids = wanted
        if not (await database_sync_to_async(self.still_allowed_many)(user, [self]))[0]:
            # every requested node must be watchable: ids don't leak
            await self.refuse(CLOSE_FORBIDDEN, "No such node, or not yours to watch.")
            return
        self.pending: dict[int, dict[str, Any]] = {}
        self.last_sent: dict[int, float] = {}
        await self.join(*(telemetry_group(node_id) for node_id in wanted))
        await self.accept()
        await self.send_json({"type": "subscribed", "nodes": wanted})

    @classmethod
    def still_allowed_many(cls, user: Any, sockets: list[Any]) -> list[bool]:
        wanted = {node_id for socket in sockets for node_id in socket.node_ids}
        allowed = set(telemetry_nodes(user=user).filter(pk__in=wanted).values_list("pk", flat=True))
        return [allowed.issuperset(socket.node_ids) for socket in sockets]

    async def stop(self) -> None:
        if self.flusher is not None:
            self.flusher.cancel()

    async def receive_message(self, kind: Any, content: Any) -> None:
        await self.error("read_only", "Send only pings.")

    async def broadcast(self, message: dict[str, Any]) -> None:
        payload = message["payload"]
        node_id = payload["node"]
        current = self.pending.get(node_id)
        if current is None or payload["time"] >= current["time"]:
            self.pending[node_id] = payload
        if self.flusher is None or self.flusher.done():
            self.flusher = asyncio.create_task(self._flush())

    async def _flush(self) -> None:
        while self.pending and self.accepted:
            now = time.monotonic()
            due = [n for n in self.pending if now - self.last_sent.get(n, 0.0) >= MIN_INTERVAL_S]
            for node_id in due:
                payload = self.pending.pop(node_id)
                await self.send_json(payload)
                self.last_sent[node_id] = now
                _observe_age(payload)
            if self.pending:
                wait = min(
                    MIN_INTERVAL_S - (now - self.last_sent.get(n, 0.0)) for n in self.pending
                )
                await asyncio.sleep(max(wait, 0.005))
