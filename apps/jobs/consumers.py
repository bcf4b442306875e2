from __future__ import annotations

from typing import Any

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer

from apps.jobs.selectors import job_list
from apps.jobs.services import job_group

CLOSE_UNAUTHENTICATED = 4401
CLOSE_FORBIDDEN = 4403


class JobConsumer(AsyncJsonWebsocketConsumer):
    """/ws/jobs/<id>/ — live status and progress of one job's parts, for whoever may see the
    job (session or ?token=<JWT>). Events: job.status, part.status, part.progress,
    part.rescheduled. Unknown and forbidden jobs look the same (4403), so ids don't leak."""

    async def connect(self) -> None:
        user = self.scope.get("user")
        if user is None or not user.is_authenticated:
            await self.close(code=CLOSE_UNAUTHENTICATED)
            return
        self.job_id = int(self.scope["url_route"]["kwargs"]["pk"])
        snapshot = await database_sync_to_async(self._snapshot)(user)
        if snapshot is None:
            await self.close(code=CLOSE_FORBIDDEN)
            return
        await self.channel_layer.group_add(job_group(self.job_id), self.channel_name)
        await self.accept()
        await self.send_json({"type": "snapshot", **snapshot})

    def _snapshot(self, user: Any) -> dict[str, Any] | None:
        job = job_list(user=user).filter(pk=self.job_id).first()
        if job is None:
            return None
        parts = job.parts.values("id", "name", "status", "progress_pct", "assigned_node_id")
        return {"job": job.pk, "status": job.status, "parts": list(parts)}

    async def disconnect(self, code: int) -> None:
        if hasattr(self, "job_id"):
            await self.channel_layer.group_discard(job_group(self.job_id), self.channel_name)

    async def receive_json(self, content: Any, **kwargs: Any) -> None:
        if isinstance(content, dict) and content.get("type") == "ping":
            await self.send_json({"type": "pong"})

    async def dispatch(self, message: dict[str, Any]) -> None:
        # Channels closes stale DB connections in a worker thread before every message; a
        # broadcast touches no database, and that thread hop per message cost ~25% of a core
        # at fan-out rates (bench/ws_fanout).
        if message["type"] == "broadcast":
            await self.broadcast(message)
        else:
            await super().dispatch(message)

    async def broadcast(self, message: dict[str, Any]) -> None:
        await self.send_json(message["payload"])
