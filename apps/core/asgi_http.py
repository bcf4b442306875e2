"""Django's ASGI handler, with the middleware stack run as one synchronous call in a reused
thread.

Django's own ASGI handler costs a mostly synchronous project like this one twice per request:

- It loads the middleware in async mode. Our views are synchronous and most of the stack is
  synchronous-only, so every request crossed between the event loop and a worker thread about a
  dozen times: into the sync part of the stack, back out for the four async-capable middleware
  at the bottom (each runs its process_request and process_response through `sync_to_async`:
  two more crossings apiece), and in again for the view.
- It opens a new thread-sensitive context per request: a new worker thread, a new database
  connection wrapper set up in it, and one more thread to join the worker when it is done.

This handler loads the stack in sync mode, as WSGI does, and enters it once per request. Each
request still gets a thread-sensitive context of its own, so the stack, the view and the
response's `close()` (which hands the database connection back) run in one thread, as before;
the context's single-thread executor is taken from a free list and put back afterwards, as a
WSGI server keeps its worker threads. An executor whose request ended abnormally (cancelled on a
client's disconnect, or failed) may still be running that request's code, so it is shut down
instead of reused. bench/auth_cost measures the handler against Django's in the same process;
bench/job_status measures the server with it (bench/README.md, session 17).

Async views, which this project has none of, would still work: the sync stack calls them through
`async_to_sync`.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from contextvars import ContextVar
from typing import Any

from asgiref.sync import ThreadSensitiveContext, sync_to_async
from django.core.handlers.asgi import ASGIHandler
from django.core.handlers.base import BaseHandler
from django.http import HttpRequest, HttpResponseBase

# Idle executors kept per process: enough for the requests one process runs at once.
IDLE_EXECUTORS_MAX = 64

# Whether this request's sync code ran to its end (a list, so the task Django runs the request
# in, which holds a copy of the context, can mark it).
_finished: ContextVar[list[bool]] = ContextVar("request_finished_in_thread")


class SyncStackASGIHandler(ASGIHandler):
    def __init__(self) -> None:
        BaseHandler.__init__(self)  # not ASGIHandler's: it loads the stack in async mode
        self.load_middleware(is_async=False)
        self._idle: list[ThreadPoolExecutor] = []

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            raise ValueError(f"Django can only handle ASGI/HTTP connections, not {scope['type']}.")
        executor = (
            self._idle.pop()
            if self._idle
            else ThreadPoolExecutor(max_workers=1, thread_name_prefix="request")
        )
        finished = [False]
        token = _finished.set(finished)
        reusable = False
        try:
            async with ThreadSensitiveContext(executor=executor):
                await self.handle(scope, receive, send)
            reusable = finished[0]  # not if this call was cancelled or failed
        finally:
            _finished.reset(token)
            if reusable and len(self._idle) < IDLE_EXECUTORS_MAX:
                self._idle.append(executor)
            else:
                executor.shutdown(wait=False)

    async def get_response_async(self, request: HttpRequest) -> HttpResponseBase:
        response: HttpResponseBase = await sync_to_async(self.get_response, thread_sensitive=True)(
            request
        )
        # Reached only when the thread is done with the stack; a cancelled await (the client
        # went away) leaves the flag down while the view may still be running in the thread.
        _finished.get()[0] = True
        return response
