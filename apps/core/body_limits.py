"""Request-body limits enforced before Django reads a body: 413 for anything larger.

Each route has a limit (settings.REQUEST_BODY_MAX_BYTES, or a larger one from
settings.REQUEST_BODY_ROUTE_LIMITS for the upload routes). A limit above the default applies only
to requests that carry credentials (an Authorization header or a session cookie): an anonymous
caller gets the default everywhere, and the upload views refuse it anyway.

Two places use the same table:
- `BodyLimitMiddleware`, an ASGI wrapper in front of Django's handler: it refuses a declared
  Content-Length over the limit without reading the body, and counts streamed (chunked) bodies as
  they arrive, so Django never spools more than the limit.
- `apps.core.daphne_guard`, inside daphne (Twisted), which would otherwise receive the whole
  body, and parse multipart bodies in memory on its event loop, before the ASGI app is called.

Under /api/ the 413 is the API's JSON error; elsewhere a small standalone HTML page.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Iterable, MutableMapping
from functools import lru_cache
from typing import Any
from urllib.parse import unquote

import orjson
from django.conf import settings
from django.template.loader import render_to_string

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
AsgiApp = Callable[..., Awaitable[None]]  # (scope, receive, send); servers type these loosely


def human_size(size: int) -> str:
    """1 MiB steps read best for the limits we have (10 MiB, 51 MiB, 21 MiB)."""
    if size >= 1024 * 1024:
        return f"{size / (1024 * 1024):.4g} MiB"
    if size >= 1024:
        return f"{size / 1024:.4g} KiB"
    return f"{size} bytes"


@lru_cache(maxsize=4)
def _compiled(routes: tuple[tuple[str, int], ...]) -> tuple[tuple[re.Pattern[str], int], ...]:
    return tuple((re.compile(pattern), int(limit)) for pattern, limit in routes)


def body_limit_for(path: str, *, has_credentials: bool) -> int:
    """The largest body accepted for `path` (already percent-decoded, without the query)."""
    default = int(settings.REQUEST_BODY_MAX_BYTES)
    routes = tuple((pattern, limit) for pattern, limit in settings.REQUEST_BODY_ROUTE_LIMITS)
    for pattern, limit in _compiled(routes):
        if pattern.match(path):
            return limit if has_credentials or limit <= default else default
    return default


def path_of_target(target: bytes) -> str:
    """The decoded path of a raw request-target (`/a%20b?x=1` -> `/a b`), as Django routes it."""
    path = target.split(b"?", 1)[0].decode("latin-1")
    if not path.startswith("/"):  # absolute-form: http://host/path
        after_scheme = path.split("://", 1)[-1]
        path = "/" + after_scheme.split("/", 1)[1] if "/" in after_scheme else "/"
    return unquote(path)


def carries_credentials(headers: Iterable[tuple[bytes, bytes]]) -> bool:
    """An Authorization header or the session cookie: not checked here (that needs the
    database), only present; enough to keep anonymous callers at the default limit."""
    cookie_name = settings.SESSION_COOKIE_NAME.encode("latin-1") + b"="
    for name, value in headers:
        lowered = name.lower()
        if lowered == b"authorization" and value.strip():
            return True
        if lowered == b"cookie" and any(
            part.strip().startswith(cookie_name) for part in value.split(b";")
        ):
            return True
    return False


def too_large_message(limit: int) -> str:
    return f"The request body is larger than the {human_size(limit)} allowed here."


@lru_cache(maxsize=32)
def too_large_response(path_is_api: bool, limit: int) -> tuple[bytes, bytes]:
    """(content type, body) of the 413 answer."""
    message = too_large_message(limit)
    if path_is_api:
        from apps.core.api import error_body

        body = error_body("payload_too_large", message, {"limit_bytes": limit})
        return b"application/json", orjson.dumps(body)
    html = render_to_string("errors/413.html", {"message": message})
    return b"text/html; charset=utf-8", html.encode()


def is_api_path(path: str) -> bool:
    return path.startswith("/api/")


def _header(scope: Scope, name: bytes) -> bytes | None:
    for key, value in scope.get("headers", []):
        if key.lower() == name:
            return bytes(value)
    return None


class BodyLimitMiddleware:
    """ASGI: refuse a body over its route's limit before the wrapped app buffers it."""

    def __init__(self, app: AsgiApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = scope["path"]
        limit = body_limit_for(path, has_credentials=carries_credentials(scope.get("headers", [])))
        declared = _header(scope, b"content-length")
        if declared is not None:
            try:
                too_large = int(declared) > limit
            except ValueError:
                too_large = False  # the server has refused a malformed length already
            if too_large:
                await self._refuse(send, path, limit)
                return

        received = 0
        refused = False

        async def counting_receive() -> Message:
            nonlocal received, refused
            if refused:
                return {"type": "http.disconnect"}
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    # The app sees the client gone (Django drops the request quietly);
                    # the 413 is ours to send.
                    refused = True
                    return {"type": "http.disconnect"}
            return message

        await self.app(scope, counting_receive, send)
        if refused:
            await self._refuse(send, path, limit)

    @staticmethod
    async def _refuse(send: Send, path: str, limit: int) -> None:
        content_type, body = too_large_response(is_api_path(path), limit)
        await send(
            {
                "type": "http.response.start",
                "status": 413,
                "headers": [
                    (b"content-type", content_type),
                    (b"content-length", str(len(body)).encode()),
                    (b"connection", b"close"),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})
