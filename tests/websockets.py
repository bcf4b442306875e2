"""Opening websockets on the project's ASGI application in tests."""

from __future__ import annotations

from asgiref.sync import sync_to_async
from channels.testing import WebsocketCommunicator

from apps.users.models import User
from apps.users.tokens import tokens_issue
from imewe.asgi import application

ORIGIN = [(b"origin", b"http://testserver")]


async def ws_open(
    path: str, headers: list[tuple[bytes, bytes]] = ORIGIN
) -> tuple[WebsocketCommunicator, bool, int | None]:
    """Connects; a refused connection is then disconnected as a server would do. Otherwise the
    refused consumer keeps waiting on the channel layer, outlives the test and can hold up
    the closing of its event loop (a CI run once hung there until its time limit)."""
    ws = WebsocketCommunicator(application, path, headers=headers)
    connected, code = await ws.connect()
    if not connected:
        await ws.disconnect()
    return ws, connected, code


async def ws_open_as(user: User, path: str) -> tuple[WebsocketCommunicator, bool, int | None]:
    """Connects with the user's JWT in the query string, as mobile clients do."""
    token = await sync_to_async(
        lambda: str(tokens_issue(user=user, otp_verified=True).access_token)
    )()
    return await ws_open(f"{path}{'&' if '?' in path else '?'}token={token}")
