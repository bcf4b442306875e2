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
import random
from typing import Any, Protocol

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer
from django.conf import settings
from django.contrib.auth import get_user_model

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


class LiveConsumer(AsyncJsonWebsocketConsumer):
    """Subclasses implement `start(user)` (check the object, `join` groups, `accept`, send a
    hello; or `refuse`) and, when their right is narrower than "signed in",
    `still_allowed(user)` (sync, runs in a DB thread: the same selector as `start`)."""

    groups_joined: list[str]
    rechecker: asyncio.Task[None] | None = None
    accepted = False
    ended = False

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

    def _rights_problem(self) -> tuple[int, str] | None:
        credential: Credential | None = self.scope.get("credential")
        if credential is not None:
            user = credential.current_user()
        else:  # a scope built by hand (tests): at least the account must still be active
            pk = self.scope["user"].pk
            user = get_user_model().objects.filter(pk=pk, is_active=True).first()
        if user is None:
            return CLOSE_UNAUTHENTICATED, "Your sign-in ended; sign in again."
        self.scope["user"] = user  # the role and memberships of now, for the consumer too
        if not self.still_allowed(user):
            return CLOSE_FORBIDDEN, "You may no longer see this."
        return None

    async def recheck(self) -> bool:
        """Closes the socket when the caller's sign-in or right has ended; True if it stays."""
        try:
            # Not the one thread that thread-sensitive calls share: re-checks of many sockets
            # must not queue the consumers' own database work behind them.
            problem = await database_sync_to_async(self._rights_problem, thread_sensitive=False)()
        except Exception:
            logger.exception("websocket rights re-check failed; closing %s", self.scope["path"])
            problem = CLOSE_CHECK_FAILED, "Could not re-check your access; reconnect later."
        if problem is None:
            return True
        await self.close(code=problem[0], reason=problem[1])
        await self.disconnect(problem[0])
        return False

    async def _recheck_periodically(self) -> None:
        interval = float(getattr(settings, "WS_RECHECK_SECONDS", 5.0))
        # Sockets opened together (a restart, a page of dashboards) spread their checks.
        await asyncio.sleep(interval * random.uniform(0.5, 1.0))
        while await self.recheck():
            await asyncio.sleep(interval)

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
