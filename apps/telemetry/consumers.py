from __future__ import annotations

import asyncio
import time
from typing import Any
from urllib.parse import parse_qs

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer

from apps.telemetry.selectors import telemetry_nodes
from apps.telemetry.services import telemetry_group

CLOSE_UNAUTHENTICATED = 4401
CLOSE_FORBIDDEN = 4403
CLOSE_BAD_REQUEST = 4400
MIN_INTERVAL_S = 0.25  # at most one message per node per 250 ms, with the newest values
MAX_NODES = 200


class TelemetryConsumer(AsyncJsonWebsocketConsumer):
    """/ws/telemetry/?nodes=1,2,3 — live points of nodes the caller may watch. Points arriving
    faster than every 250 ms per node are coalesced: the browser gets the newest values."""

    async def connect(self) -> None:
        user = self.scope.get("user")
        if user is None or not user.is_authenticated:
            await self.close(code=CLOSE_UNAUTHENTICATED)
            return
        raw = parse_qs(self.scope.get("query_string", b"").decode()).get("nodes", [""])[0]
        try:
            wanted = sorted({int(v) for v in raw.split(",") if v.strip()})
        except ValueError:
            wanted = []
        if not wanted or len(wanted) > MAX_NODES:
            await self.close(code=CLOSE_BAD_REQUEST)
            return
        allowed = await database_sync_to_async(
            lambda: set(
                telemetry_nodes(user=user).filter(pk__in=wanted).values_list("pk", flat=True)
            )
        )()
        if allowed != set(wanted):  # every requested node must be watchable: ids don't leak
            await self.close(code=CLOSE_FORBIDDEN)
            return
        self.node_ids = wanted
        self.pending: dict[int, dict[str, Any]] = {}
        self.last_sent: dict[int, float] = {}
        self.flusher: asyncio.Task[None] | None = None
        for node_id in wanted:
            await self.channel_layer.group_add(telemetry_group(node_id), self.channel_name)
        await self.accept()
        await self.send_json({"type": "subscribed", "nodes": wanted})

    async def disconnect(self, code: int) -> None:
        for node_id in getattr(self, "node_ids", []):
            await self.channel_layer.group_discard(telemetry_group(node_id), self.channel_name)
        flusher = getattr(self, "flusher", None)
        if flusher is not None:
            flusher.cancel()

    async def receive_json(self, content: Any, **kwargs: Any) -> None:
        if isinstance(content, dict) and content.get("type") == "ping":
            await self.send_json({"type": "pong"})
        else:
            await self.send_json(
                {"type": "error", "code": "read_only", "message": "Send only pings."}
            )

    async def dispatch(self, message: dict[str, Any]) -> None:
        # Channels closes stale DB connections in a worker thread before every message; a
        # broadcast touches no database, and that thread hop per message cost ~25% of a core
        # at fan-out rates (bench/ws_fanout).
        if message["type"] == "broadcast":
            await self.broadcast(message)
        else:
            await super().dispatch(message)

    async def broadcast(self, message: dict[str, Any]) -> None:
        payload = message["payload"]
        node_id = payload["node"]
        current = self.pending.get(node_id)
        if current is None or payload["time"] >= current["time"]:
            self.pending[node_id] = payload
        if self.flusher is None or self.flusher.done():
            self.flusher = asyncio.create_task(self._flush())

    async def _flush(self) -> None:
        while self.pending:
            now = time.monotonic()
            due = [n for n in self.pending if now - self.last_sent.get(n, 0.0) >= MIN_INTERVAL_S]
            for node_id in due:
                await self.send_json(self.pending.pop(node_id))
                self.last_sent[node_id] = now
            if self.pending:
                wait = min(
                    MIN_INTERVAL_S - (now - self.last_sent.get(n, 0.0)) for n in self.pending
                )
                await asyncio.sleep(max(wait, 0.005))
