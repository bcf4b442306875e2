"""/ws/twins/<id>/: live collaboration on one twin.

On connect (session or ?token=<JWT>; only people who may see the twin, else 4403; the socket
closes with 4403 when the share is revoked and 4401 when the sign-in ends) the client
gets a snapshot (version, properties, live locks, whether it may edit, its own peer id) and, with
`?after=N`, the versions it missed. Then:

client -> server
  {"type": "heartbeat"}                                   every 15 s; silent for 45 s = dropped
  {"type": "cursor", "position": [x, y, z]} or {"type": "cursor", "path": "spindle/bearing"}
  {"type": "edit", "id": "c1", "base_version": 7, "ops": [...], "message": ""}
  {"type": "lock", "action": "acquire", "path": "spindle", "mode": "exclusive"}
  {"type": "lock", "action": "heartbeat" | "release", "lock": 12}
server -> client
  {"type": "presence", "event": "join" | "here" | "heartbeat" | "leave", "peer": {...}}
  {"type": "cursor", "peer": "...", "position": [...]} / {"path": "..."}
  {"type": "ack", "id": "c1", "version": 8, "ops": [...as applied]}
  {"type": "reject", "id": "c1", "reason": "conflict" | "locked" | "rebase" | "invalid" |
   "forbidden", "message": "...", "version": 8}
  {"type": "twin.edit", "version": 8, "ops": [...], "author": "..."}   (everyone, in order)
  {"type": "lock.acquired" | "lock.released" | "lock.expired", ...}
  {"type": "error", "code": "...", "message": "..."}
Presence needs no shared store: a newcomer announces itself to the room, the others answer it
directly, and each connection drops peers it has not heard from for 45 s.
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from typing import Any

from channels.db import database_sync_to_async
from django.core.exceptions import PermissionDenied, ValidationError
from django.utils import timezone

from apps.core.exceptions import Conflict, error_messages
from apps.core.sockets import CLOSE_FORBIDDEN, CLOSE_STALE, LiveConsumer
from apps.twins.models import DigitalTwin, TwinVersion
from apps.twins.ot import OpError, parse_path
from apps.twins.selectors import lock_list, twin_can_edit, twin_list
from apps.twins.services import (
    EditRejected,
    lock_acquire,
    lock_heartbeat,
    lock_release,
    twin_edit,
    twin_group,
)

HEARTBEAT_S = 15.0
STALE_AFTER_S = 45.0
MAX_CATCH_UP = 1000
COLOURS = ["#e6194b", "#3cb44b", "#4363d8", "#f58231", "#911eb4", "#42d4f4", "#f032e6", "#9a6324"]


class TwinConsumer(LiveConsumer):
    watchdog: asyncio.Task[None] | None = None

    async def start(self, user: Any) -> None:
        self.twin_id = int(self.scope["url_route"]["kwargs"]["pk"])
        after = self._after()
        snapshot = await database_sync_to_async(self._snapshot)(user, after)
        if snapshot is None:
            await self.refuse(CLOSE_FORBIDDEN, "No such twin, or not shared with you.")
            return
        self.group = twin_group(self.twin_id)
        self.peer = {
            "id": hashlib.sha1(self.channel_name.encode()).hexdigest()[:10],
            "user": user.email,
            "name": user.full_name or user.email,
            "colour": COLOURS[user.pk % len(COLOURS)],
        }
        self.peers: dict[str, dict[str, Any]] = {}  # peer id -> peer, with last_seen
        self.last_heard = time.monotonic()
        await self.join(self.group)
        await self.accept()
        missed = snapshot.pop("missed")
        await self.send_json({"type": "snapshot", "peer": self.peer, **snapshot})
        for version in missed:
            await self.send_json({"type": "twin.edit", **version})
        await self._to_room("join", reply_to=self.channel_name)
        self.watchdog = asyncio.create_task(self._watch())

    def _after(self) -> int | None:
        query = self.scope.get("query_string", b"").decode()
        for pair in query.split("&"):
            key, _, value = pair.partition("=")
            if key == "after" and value.isdigit():
                return int(value)
        return None

    def _snapshot(self, user: Any, after: int | None) -> dict[str, Any] | None:
        twin = twin_list(user=user).filter(pk=self.twin_id).first()
        if twin is None:
            return None
        locks = [
            {
                "lock": lock.pk,
                "path": lock.path,
                "mode": lock.mode,
                "holder": lock.holder.email,
                "expires_at": lock.expires_at.isoformat(),
            }
            for lock in lock_list(twin=twin, now=timezone.now())
        ]
        missed = []
        if after is not None:
            for version in (
                TwinVersion.objects.filter(twin=twin, number__gt=after)
                .select_related("author")
                .order_by("number")[:MAX_CATCH_UP]
            ):
                missed.append(
                    {
                        "version": version.number,
                        "ops": version.ops,
                        "author": version.author.email if version.author else None,
                        "message": version.message,
                    }
                )
        return {
            "twin": twin.pk,
            "version": twin.version,
            "properties": twin.properties,
            "locks": locks,
            "can_edit": twin_can_edit(user=user, twin=twin),
            "missed": missed,
        }

    @classmethod
    def still_allowed_many(cls, user: Any, sockets: list[Any]) -> list[bool]:
        wanted = {socket.twin_id for socket in sockets}
        allowed = set(twin_list(user=user).filter(pk__in=wanted).values_list("pk", flat=True))
        return [socket.twin_id in allowed for socket in sockets]

    async def stop(self) -> None:
        if self.watchdog is not None and self.watchdog is not asyncio.current_task():
            self.watchdog.cancel()
        if hasattr(self, "group"):
            await self._to_room("leave")

    async def _watch(self) -> None:
        """Drops this connection when its client stops beating, and peers gone silent."""
        while True:
            await asyncio.sleep(HEARTBEAT_S / 3)
            now = time.monotonic()
            if now - self.last_heard > STALE_AFTER_S:
                await self.close(code=CLOSE_STALE, reason="No heartbeat for too long.")
                await self.disconnect(CLOSE_STALE)
                return
            for peer_id, peer in list(self.peers.items()):
                if now - peer["last_seen"] > STALE_AFTER_S:
                    del self.peers[peer_id]
                    await self.send_json(
                        {"type": "presence", "event": "leave", "peer": peer["peer"], "stale": True}
                    )

    # --- presence (group messages between this twin's connections) -------------------------

    async def _to_room(self, event: str, **extra: Any) -> None:
        await self.channel_layer.group_send(
            self.group,
            {
                "type": "presence.event",
                "event": event,
                "peer": self.peer,
                "from": self.channel_name,
                **extra,
            },
        )

    async def presence_event(self, message: dict[str, Any]) -> None:
        if message["from"] == self.channel_name:
            return
        peer, event = message["peer"], message["event"]
        if event == "leave":
            self.peers.pop(peer["id"], None)
        else:
            self.peers[peer["id"]] = {"peer": peer, "last_seen": time.monotonic()}
        if event == "join":  # tell the newcomer who is here
            await self.channel_layer.send(
                message["reply_to"],
                {
                    "type": "presence.event",
                    "event": "here",
                    "peer": self.peer,
                    "from": self.channel_name,
                    "cursor": getattr(self, "cursor", None),
                },
            )
        out = {"type": "presence", "event": event, "peer": peer}
        if message.get("cursor") is not None:
            out["cursor"] = message["cursor"]
        await self.send_json(out)

    async def cursor_event(self, message: dict[str, Any]) -> None:
        if message["from"] != self.channel_name:
            self.peers.setdefault(message["peer"]["id"], {"peer": message["peer"]})["last_seen"] = (
                time.monotonic()
            )
            await self.send_json(
                {"type": "cursor", "peer": message["peer"]["id"], **message["cursor"]}
            )

    # --- client messages ---------------------------------------------------------------------

    async def receive_json(self, content: Any, **kwargs: Any) -> None:
        self.last_heard = time.monotonic()
        await super().receive_json(content, **kwargs)

    async def receive_message(self, kind: Any, content: Any) -> None:
        if kind == "heartbeat":
            await self._to_room("heartbeat", cursor=getattr(self, "cursor", None))
            await self.send_json({"type": "heartbeat"})
        elif kind == "cursor":
            await self._cursor(content)
        elif kind == "edit":
            await self._edit(content)
        elif kind == "lock":
            await self._lock(content)
        else:
            await self.error("unknown_type", f"Unknown message type {kind!r}.")

    async def _cursor(self, content: dict[str, Any]) -> None:
        position, path = content.get("position"), content.get("path")
        if position is not None:
            if (
                not isinstance(position, list)
                or len(position) != 3
                or not all(
                    isinstance(v, (int, float)) and not isinstance(v, bool) for v in position
                )
            ):
                await self.error("invalid", "position is [x, y, z] in numbers.")
                return
            cursor: dict[str, Any] = {"position": [float(v) for v in position]}
        elif path is not None:
            try:
                parse_path(path)
            except OpError as exc:
                await self.error("invalid", str(exc))
                return
            cursor = {"path": path}
        else:
            await self.error("invalid", "A cursor has a position [x, y, z] or a property path.")
            return
        self.cursor = cursor
        await self.channel_layer.group_send(
            self.group,
            {
                "type": "cursor.event",
                "peer": self.peer,
                "from": self.channel_name,
                "cursor": cursor,
            },
        )

    async def _edit(self, content: dict[str, Any]) -> None:
        op_id = content.get("id")
        base, ops = content.get("base_version"), content.get("ops")
        if not isinstance(base, int) or not isinstance(ops, list):
            await self.send_json(
                {
                    "type": "reject",
                    "id": op_id,
                    "reason": "invalid",
                    "message": "An edit has base_version (a number) and ops (a list).",
                }
            )
            return
        user = self.scope["user"]

        def run() -> dict[str, Any]:
            twin = DigitalTwin.objects.get(pk=self.twin_id)
            try:
                result = twin_edit(
                    by=user,
                    twin=twin,
                    base_version=base,
                    ops=ops,
                    message=str(content.get("message", ""))[:300],
                )
            except EditRejected as exc:
                details = exc.details or {}
                return {
                    "type": "reject",
                    "id": op_id,
                    "reason": details.get("reason", "conflict"),
                    "message": exc.message,
                    "version": details.get("version"),
                }
            except ValidationError as exc:
                return {
                    "type": "reject",
                    "id": op_id,
                    "reason": "invalid",
                    "message": "; ".join(error_messages(exc)),
                    "version": twin.version,
                }
            except PermissionDenied as exc:
                return {
                    "type": "reject",
                    "id": op_id,
                    "reason": "forbidden",
                    "message": str(exc),
                    "version": twin.version,
                }
            return {"type": "ack", "id": op_id, "version": result.version, "ops": result.ops}

        await self.send_json(await database_sync_to_async(run)())

    async def _lock(self, content: dict[str, Any]) -> None:
        user, action = self.scope["user"], content.get("action")

        def run() -> dict[str, Any]:
            twin = DigitalTwin.objects.get(pk=self.twin_id)
            if action == "acquire":
                lock = lock_acquire(
                    by=user,
                    twin=twin,
                    path=str(content.get("path", "")),
                    mode=str(content.get("mode", "exclusive")),
                )
            elif action in ("heartbeat", "release"):
                pk = content.get("lock")
                if not isinstance(pk, int):
                    raise ValidationError({"lock": ["The lock's id."]})
                if action == "heartbeat":
                    lock = lock_heartbeat(by=user, twin=twin, pk=pk)
                else:
                    lock = lock_release(by=user, twin=twin, pk=pk, force=bool(content.get("force")))
            else:
                raise ValidationError({"action": ["acquire, heartbeat or release."]})
            return {
                "type": "lock.ok",
                "action": action,
                "lock": lock.pk,
                "path": lock.path,
                "expires_at": lock.expires_at.isoformat(),
            }

        try:
            reply = await database_sync_to_async(run)()
        except (ValidationError, Conflict, PermissionDenied) as exc:
            code = {ValidationError: "invalid", PermissionDenied: "forbidden"}.get(
                type(exc), "conflict"
            )
            await self.error(code, "; ".join(error_messages(exc)))
            return
        await self.send_json(reply)
