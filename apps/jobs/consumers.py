from __future__ import annotations

from typing import Any

from channels.db import database_sync_to_async

from apps.core.sockets import CLOSE_FORBIDDEN, LiveConsumer
from apps.jobs.selectors import job_list
from apps.jobs.services import job_group


class JobConsumer(LiveConsumer):
    """/ws/jobs/<id>/ — live status and progress of one job's parts, for whoever may see the
    job (session or ?token=<JWT>). Events: job.status, part.status, part.progress,
    part.rescheduled. Unknown and forbidden jobs look the same (4403), so ids don't leak; the
    socket closes with 4403 when the caller may no longer see the job."""

    async def start(self, user: Any) -> None:
        self.job_id = int(self.scope["url_route"]["kwargs"]["pk"])
        snapshot = await database_sync_to_async(self._snapshot)(user)
        if snapshot is None:
            await self.refuse(CLOSE_FORBIDDEN, "No such job, or not yours to see.")
            return
        await self.join(job_group(self.job_id))
        await self.accept()
        await self.send_json({"type": "snapshot", **snapshot})

    def _snapshot(self, user: Any) -> dict[str, Any] | None:
        job = job_list(user=user).filter(pk=self.job_id).first()
        if job is None:
            return None
        parts = job.parts.values("id", "name", "status", "progress_pct", "assigned_node_id")
        return {"job": job.pk, "status": job.status, "parts": list(parts)}

    @classmethod
    def still_allowed_many(cls, user: Any, sockets: list[Any]) -> list[bool]:
        wanted = {socket.job_id for socket in sockets}
        allowed = set(job_list(user=user).filter(pk__in=wanted).values_list("pk", flat=True))
        return [socket.job_id in allowed for socket in sockets]
