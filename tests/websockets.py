"""Opening websockets on the project's ASGI application in tests."""

from __future__ import annotations

import asyncio
import threading
import time
from typing import Any

from asgiref.sync import sync_to_async
from channels.layers import get_channel_layer
from channels.testing import WebsocketCommunicator

from apps.users.models import User
from apps.users.tokens import tokens_issue
from imewe.asgi import application

ORIGIN = [(b"origin", b"http://testserver")]
# Waits for a message are at least this long: on a loaded machine a consumer's database call can
# take seconds, and a message that does come is never slowed down by a longer wait.
MIN_WAIT_S = 10.0


class Socket(WebsocketCommunicator):
    """A communicator that tells a refusal (accepted, then closed at once with a code, as the
    consumers refuse) from an open socket, without losing the first message of an open one."""

    handshake_accepted = False
    close_reason: str | None = None

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.held: list[dict[str, Any]] = []

    async def open(self) -> tuple[bool, int | None]:
        connected, code = await self.connect()
        self.handshake_accepted = connected
        if connected and not self.output_queue.empty():
            # A refusal sends accept and close in one go, so the close is already queued.
            first = await super().receive_output()
            if first["type"] == "websocket.close":
                self.close_reason = first.get("reason")
                return False, first.get("code")
            self.held.append(first)
        return connected, None if connected else code

    async def receive_output(self, timeout: float = 1) -> dict[str, Any]:
        if self.held:
            return self.held.pop(0)
        return await super().receive_output(max(timeout, MIN_WAIT_S))

    async def receive_nothing(self, timeout: float = 0.1, interval: float = 0.01) -> bool:
        return not self.held and await super().receive_nothing(timeout, interval)

    async def receive_close(self, timeout: float = 5) -> dict[str, Any]:
        """The close message, skipping whatever the server sent before it."""
        output = await self.receive_output(timeout)
        while output["type"] == "websocket.send":
            output = await self.receive_output(timeout)
        assert output["type"] == "websocket.close", output
        return output


async def ws_open(
    path: str, headers: list[tuple[bytes, bytes]] = ORIGIN
) -> tuple[Socket, bool, int | None]:
    """Connects; `connected` is False for a refusal, with its close code. A refused connection
    is then disconnected as a server would do. Otherwise the refused consumer keeps waiting on
    the channel layer, outlives the test and can hold up the closing of its event loop (a CI
    run once hung there until its time limit)."""
    ws = Socket(application, path, headers=headers)
    connected, code = await ws.open()
    if not connected:
        await ws.disconnect()
    return ws, connected, code


async def access_token(user: User) -> str:
    return await sync_to_async(
        lambda: str(tokens_issue(user=user, otp_verified=True).access_token)
    )()


async def ws_open_as(
    user: User, path: str, headers: list[tuple[bytes, bytes]] = ORIGIN
) -> tuple[Socket, bool, int | None]:
    """Connects with the user's JWT in the query string, as mobile clients do."""
    token = await access_token(user)
    return await ws_open(f"{path}{'&' if '?' in path else '?'}token={token}", headers)


class GroupListener:
    """What a group hears while sync test code runs: a thread with its own event loop joins
    `group` and collects every message until `stop()`. (A channel made with async_to_sync
    lives only as long as that call's event loop: on the pub/sub layer its subscription ends
    with it.)"""

    def __init__(self, group: str) -> None:
        self.group = group
        self.messages: list[dict[str, Any]] = []
        self.ready = threading.Event()
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_until_complete, args=(self._run(),))
        self.done: asyncio.Future[None] | None = None

    async def _run(self) -> None:
        layer = get_channel_layer()
        assert layer is not None
        channel = await layer.new_channel()
        await layer.group_add(self.group, channel)
        self.done = self.loop.create_future()
        self.ready.set()
        while not self.done.done():
            receiving = asyncio.ensure_future(layer.receive(channel))
            await asyncio.wait({receiving, self.done}, return_when=asyncio.FIRST_COMPLETED)
            if receiving.done():
                self.messages.append(receiving.result())
            else:
                receiving.cancel()
        await layer.group_discard(self.group, channel)

    def __enter__(self) -> GroupListener:
        self.thread.start()
        assert self.ready.wait(10), "the listener could not join its group"
        return self

    def stop(self, settle_s: float = 0.5) -> list[dict[str, Any]]:
        """The messages heard, after `settle_s` for those still on their way."""
        time.sleep(settle_s)
        done = self.done
        if done is not None:
            self.loop.call_soon_threadsafe(lambda: None if done.done() else done.set_result(None))
        self.thread.join(10)
        return self.messages

    def __exit__(self, *exc: object) -> None:
        if self.thread.is_alive():
            self.stop(settle_s=0)
