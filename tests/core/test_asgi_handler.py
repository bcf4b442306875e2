"""The ASGI handler behind imewe.asgi (apps/core/asgi_http.py): Django's middleware stack run as
one sync call per request, in a thread reused from request to request; a request that did not
end cleanly gives its thread up."""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from django.http import HttpRequest, HttpResponse
from django.test import override_settings

from apps.core.asgi_http import SyncStackASGIHandler
from tests.asgi import http_scope
from tests.core import asgi_urls

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.urls("tests.core.asgi_urls"),
]


def seen_by(get_response: Callable[[HttpRequest], HttpResponse]) -> Callable[..., HttpResponse]:
    """A sync-only middleware at the top of the stack that records its thread on the request."""

    def middleware(request: HttpRequest) -> HttpResponse:
        request.seen_by_middleware_in = threading.get_ident()  # type: ignore[attr-defined]
        return get_response(request)

    return middleware


@pytest.fixture(autouse=True)
def _events() -> Iterator[None]:
    asgi_urls.release.clear()
    asgi_urls.finished.clear()
    yield
    asgi_urls.release.set()  # never leave a view thread waiting


async def call(
    app: SyncStackASGIHandler, path: str, disconnect: asyncio.Event | None = None
) -> tuple[int, bytes]:
    """One GET; when `disconnect` is given, the client goes away once it is set."""
    messages: list[dict[str, Any]] = []
    asked = False

    async def receive() -> dict[str, Any]:
        nonlocal asked
        if not asked:
            asked = True
            return {"type": "http.request", "body": b"", "more_body": False}
        await (disconnect or asyncio.Event()).wait()
        return {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        messages.append(message)

    await app(http_scope("GET", path, {"host": "testserver"}), receive, send)
    status = next((m["status"] for m in messages if m["type"] == "http.response.start"), 0)
    body = b"".join(m.get("body", b"") for m in messages if m["type"] == "http.response.body")
    return status, body


def handler() -> SyncStackASGIHandler:
    with override_settings(
        MIDDLEWARE=["tests.core.test_asgi_handler.seen_by", *_settings_middleware()]
    ):
        return SyncStackASGIHandler()


def _settings_middleware() -> list[str]:
    from django.conf import settings

    return list(settings.MIDDLEWARE)


def test_the_stack_is_loaded_as_one_sync_call() -> None:
    app = SyncStackASGIHandler()
    # Django's own handler builds an async chain (a coroutine function) that crosses to a
    # thread and back around each sync-only middleware; this one is a plain function
    assert not asyncio.iscoroutinefunction(getattr(app, "_middleware_chain"))  # noqa: B009


@pytest.mark.asyncio
async def test_middleware_and_view_run_in_one_thread_reused_by_the_next_request() -> None:
    app = handler()
    status, body = await call(app, "/where/")
    first = json.loads(body)
    status2, body2 = await call(app, "/where/")
    second = json.loads(body2)

    assert (status, status2) == (200, 200)
    assert first["view_thread"] == first["middleware_thread"] != threading.get_ident()
    # the idle thread served the next request: no new thread per request
    assert second["view_thread"] == first["view_thread"]


@pytest.mark.asyncio
async def test_concurrent_requests_run_in_threads_of_their_own() -> None:
    app = handler()
    gone = asyncio.Event()
    slow = asyncio.ensure_future(call(app, "/slow/", disconnect=gone))
    await asyncio.sleep(0.2)  # the slow view is now waiting in its thread
    status, body = await asyncio.wait_for(call(app, "/where/"), timeout=5)
    assert status == 200
    assert not asgi_urls.finished.is_set()
    asgi_urls.release.set()
    assert (await asyncio.wait_for(slow, timeout=5))[0] == 200


@pytest.mark.asyncio
async def test_a_request_the_server_gave_up_on_gives_its_thread_up() -> None:
    app = handler()
    _, body = await call(app, "/where/")
    idle_thread = json.loads(body)["view_thread"]  # one idle executor now
    slow = asyncio.ensure_future(call(app, "/slow/"))
    await asyncio.sleep(0.2)  # the view now waits in the idle thread
    slow.cancel()  # as a server cancels an application it gives up on
    with pytest.raises(asyncio.CancelledError):
        await slow
    assert not asgi_urls.finished.is_set()  # the view still runs in that thread

    # so the next request must not be queued behind it on that thread
    status, body = await asyncio.wait_for(call(app, "/where/"), timeout=5)
    assert status == 200
    assert json.loads(body)["view_thread"] != idle_thread
    asgi_urls.release.set()


@pytest.mark.asyncio
async def test_a_failing_view_is_answered_500_and_the_thread_kept() -> None:
    app = handler()
    status, _ = await call(app, "/broken/")
    assert status == 500
    _, body = await call(app, "/where/")
    _, body2 = await call(app, "/where/")
    assert json.loads(body)["view_thread"] == json.loads(body2)["view_thread"]


@pytest.mark.asyncio
async def test_other_connection_kinds_are_refused() -> None:
    app = SyncStackASGIHandler()
    with pytest.raises(ValueError, match="websocket"):
        await app({"type": "websocket"}, None, None)
