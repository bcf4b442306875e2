"""The base of every websocket consumer: close codes, refusals, ping, the relay of broadcasts,
and the periodic re-check of the caller's rights.

Close codes (the same for every `/ws/...` route):

    4400  bad request (e.g. a malformed query string)
    4401  not signed in, or the sign-in ended (token revoked or expired, session logged out,
          password or role changed, account deactivated)
    4403  signed in, but not allowed (this object, this role, or a session cookie from a foreign
          or missing Origin)
    4408  the client went silent (twins' heartbeat)
    1011  the rights could not be re-checked (e.g. the database is down): reconnect later

A refusal is never a failed handshake: the server accepts, then closes at once with the code
and a reason, so browsers and mobile clients can read the code (a close before accept would
reach them as a bare HTTP 403).
"""

from __future__ import annotations

import asyncio
import logging
import weakref
from collections import defaultdict
from typing import Any, Protocol

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer
from django.conf import settings
from django.contrib.auth import get_user_model

from apps.core.metrics import WEBSOCKET_CLIENTS

logger = logging.getLogger(__name__)

CLOSE_BAD_REQUEST = 4400
CLOSE_UNAUTHENTICATED = 4401
CLOSE_FORBIDDEN = 4403
CLOSE_STALE = 4408
CLOSE_CHECK_FAILED = 1011


class Credential(Protocol):
    """What the socket was opened with (a token, a session), put in `scope["credential"]` by the
    authentication middleware: it answers who that credential stands for now."""

    def current_user(self) -> Any:
        """The user, read afresh, while the credential is valid; None once it ended."""


class RightsEnded(Exception):
    def __init__(self, code: int, reason: str) -> None:
        super().__init__(reason)
        self.code = code
        self.reason = reason


class LiveConsumer(AsyncJsonWebsocketConsumer):  # type: ignore[misc]  # channels has no types
    """Subclasses implement `start(user)` (check the object, `join` groups, `accept`, send a
    hello; or `refuse`) and, when their right is narrower than "signed in",
    `still_allowed(user)` or, where one query can answer for many sockets, the classmethod
    `still_allowed_many(user, sockets)` (sync, run in a DB thread by the process's
    `RightsSweeper`: the same selector as `start`)."""

    groups_joined: list[str]
    rechecker: asyncio.Task[None] | None = None
    accepted = False
    ended = False
    counted = False  # in imewe_websocket_clients
    stream = ""  # the metric's label: the consumer's name unless a subclass names it

    # --- opening -----------------------------------------------------------------------------

    async def connect(self) -> None:
        self.groups_joined = []
        refusal = self.scope.get("refusal")  # set by the authentication middleware (Origin)
        if refusal is not None:
            await self.refuse(*refusal)
            return
        user = self.scope.get("user")
        if user is None or not user.is_authenticated:
            await self.refuse(CLOSE_UNAUTHENTICATED, "Sign in first (session or ?token=).")
            return
        await self.start(user)
        if self.accepted:
            self.rechecker = asyncio.create_task(self._recheck_periodically())
            WEBSOCKET_CLIENTS.labels(self.stream or type(self).__name__).inc()
            self.counted = True

    async def start(self, user: Any) -> None:
        await self.accept()

    async def accept(self, subprotocol: str | None = None, headers: Any = None) -> None:
        await super().accept(subprotocol, headers)
        self.accepted = True

    async def refuse(self, code: int, reason: str) -> None:
        """Accept, then close at once with `code`: nothing happens in between."""
        await self.accept()
        self.accepted = False
        await self.close(code=code, reason=reason)

    async def join(self, *groups: str) -> None:
        for group in groups:
            await self.channel_layer.group_add(group, self.channel_name)
            self.groups_joined.append(group)

    # --- closing -----------------------------------------------------------------------------

    async def disconnect(self, code: int) -> None:
        """Runs once, whether the client left or a re-check closed the socket."""
        if self.ended:
            return
        self.ended = True
        self.accepted = False  # from now on nothing more is relayed
        if self.counted:
            WEBSOCKET_CLIENTS.labels(self.stream or type(self).__name__).dec()
            self.counted = False
        if self.rechecker is not None and self.rechecker is not asyncio.current_task():
            self.rechecker.cancel()
        await self.stop()
        for group in getattr(self, "groups_joined", []):
            await self.channel_layer.group_discard(group, self.channel_name)

    async def stop(self) -> None:
        """A subclass's own clean-up (its tasks, a goodbye to its group)."""

    # --- re-checking rights ------------------------------------------------------------------

    def still_allowed(self, user: Any) -> bool:
        """Whether `user` (read afresh) may still watch what this socket shows."""
        return True

    @classmethod
    def still_allowed_many(cls, user: Any, sockets: list[Any]) -> list[bool]:
        """`still_allowed` for several sockets of one caller and this class, in order. A class
        whose right is a query overrides this with one query for all of them (the sweeper asks
        once per caller and class, not once per socket)."""
        return [socket.still_allowed(user) for socket in sockets]

    def credential_key(self) -> tuple[Any, ...]:
        """Sockets opened with the same credential share one reading of it per sweep."""
        credential = self.scope.get("credential")
        if credential is not None:
            return ("credential", type(credential).__name__, repr(credential))
        return ("user", self.scope["user"].pk)

    def read_caller(self) -> Any:
        """The caller now (sync, in a DB thread): None once the sign-in ended."""
        credential: Credential | None = self.scope.get("credential")
        if credential is not None:
            return credential.current_user()
        # a scope built by hand (tests): at least the account must still be active
        return get_user_model().objects.filter(pk=self.scope["user"].pk, is_active=True).first()

    async def end_rights(self, problem: tuple[int, str]) -> None:
        if self.ended:
            return
        await self.close(code=problem[0], reason=problem[1])
        await self.disconnect(problem[0])

    async def _recheck_periodically(self) -> None:
        """Kept for the life of the socket: registers it with this process's sweeper."""
        sweeper = RightsSweeper.of_running_loop()
        sweeper.add(self)
        try:
            await asyncio.Event().wait()  # until disconnect cancels this task
        finally:
            sweeper.discard(self)

    # --- messages ----------------------------------------------------------------------------

    async def receive_json(self, content: Any, **kwargs: Any) -> None:
        kind = content.get("type") if isinstance(content, dict) else None
        if kind == "ping":
            await self.send_json({"type": "pong"})
        else:
            await self.receive_message(kind, content)

    async def receive_message(self, kind: Any, content: Any) -> None:
        """A client message other than ping; ignored unless a subclass handles it."""

    async def error(self, code: str, message: str) -> None:
        await self.send_json({"type": "error", "code": code, "message": message})

    async def dispatch(self, message: dict[str, Any]) -> None:
        # Channels closes stale DB connections in a worker thread before every message; a
        # broadcast touches no database, and that thread hop per message cost ~25% of a core
        # at fan-out rates (bench/ws_fanout).
        if message["type"] == "broadcast":
            if self.accepted:
                await self.broadcast(message)
        else:
            await super().dispatch(message)

    async def broadcast(self, message: dict[str, Any]) -> None:
        await self.send_json(message["payload"])


# --- the sweeper -----------------------------------------------------------------------------


def rights_verdicts(sockets: list[LiveConsumer]) -> dict[LiveConsumer, tuple[int, str] | None]:
    """Re-checks `sockets` (sync, one DB thread): each credential is read once, and each consumer
    class asks once per caller, so the cost follows the number of callers, not of sockets. A
    caller whose check fails gets 1011 on its sockets; the others are unaffected."""
    by_credential: dict[tuple[Any, ...], list[LiveConsumer]] = defaultdict(list)
    for socket in sockets:
        if not socket.ended:
            by_credential[socket.credential_key()].append(socket)
    verdicts: dict[LiveConsumer, tuple[int, str] | None] = {}
    for group in by_credential.values():
        try:
            user = group[0].read_caller()
            credential = group[0].scope.get("credential")
            for socket in group[1:]:  # (a session store may have moved to a new key)
                socket.scope["credential"] = credential
            if user is None:
                verdicts.update(dict.fromkeys(group, ENDED))
                continue
            by_class: dict[type[LiveConsumer], list[LiveConsumer]] = defaultdict(list)
            for socket in group:
                socket.scope["user"] = user  # the role and memberships of now, for the consumer
                by_class[type(socket)].append(socket)
            for cls, same in by_class.items():
                for socket, allowed in zip(same, cls.still_allowed_many(user, same), strict=True):
                    verdicts[socket] = None if allowed else FORBIDDEN
        except Exception:
            logger.exception("websocket rights re-check failed for %d socket(s)", len(group))
            verdicts.update(dict.fromkeys(group, CHECK_FAILED))
    return verdicts


ENDED = CLOSE_UNAUTHENTICATED, "Your sign-in ended; sign in again."
FORBIDDEN = CLOSE_FORBIDDEN, "You may no longer see this."
CHECK_FAILED = CLOSE_CHECK_FAILED, "Could not re-check your access; reconnect later."


class RightsSweeper:
    """One per event loop (per server process): every WS_RECHECK_SECONDS it re-checks all the
    open sockets in one database thread call and closes those whose sign-in or right ended.

    A check per socket on its own timer cost a query or two per socket every few seconds: at
    1,020 sockets that was ~400 queries/s, starved the fan-out and lost every live view
    (bench/ws_fanout, 2026-12-07). One sweep reads each credential once and asks each consumer
    class once per caller."""

    _by_loop: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, RightsSweeper] = (
        weakref.WeakKeyDictionary()
    )

    def __init__(self) -> None:
        self.sockets: set[LiveConsumer] = set()
        self.task: asyncio.Task[None] | None = None

    @classmethod
    def of_running_loop(cls) -> RightsSweeper:
        loop = asyncio.get_running_loop()
        sweeper = cls._by_loop.get(loop)
        if sweeper is None:
            sweeper = cls._by_loop[loop] = cls()
        return sweeper

    def add(self, socket: LiveConsumer) -> None:
        self.sockets.add(socket)
        if self.task is None or self.task.done():
            self.task = asyncio.create_task(self._run(), name="websocket rights sweeper")

    def discard(self, socket: LiveConsumer) -> None:
        self.sockets.discard(socket)

    async def _run(self) -> None:
        while self.sockets:
            await asyncio.sleep(float(getattr(settings, "WS_RECHECK_SECONDS", 5.0)))
            await self.sweep()

    async def sweep(self) -> None:
        sockets = list(self.sockets)
        if not sockets:
            return
        try:
            # Not the one thread that thread-sensitive calls share: a sweep must not queue the
            # consumers' own database work behind it.
            verdicts = await database_sync_to_async(rights_verdicts, thread_sensitive=False)(
                sockets
            )
        except Exception:  # e.g. no database connection could be opened at all
            logger.exception("websocket rights sweep failed; closing %d socket(s)", len(sockets))
            verdicts = dict.fromkeys(sockets, CHECK_FAILED)
        for socket, problem in verdicts.items():
            if problem is not None:
                await socket.end_rights(problem)
