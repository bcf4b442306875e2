"""Request-body limits inside daphne, where they must be for daphne to stay up.

What stock daphne 4.2 on Twisted does with a request body (daphne/http_protocol.py, twisted/web/
http.py), all before the ASGI application hears of the request:
1. Twisted receives the WHOLE body first: into memory under 100 kB, else into a temporary file
   (also for chunked bodies of unknown length). Nothing stops an endless body.
2. For a POST with `multipart/form-data` it then reads the whole file back into memory and parses
   it with the `email` package on the event loop (`Request.requestReceived`, to fill
   `request.args`, which daphne never uses): several copies of the body, and every other request
   and websocket of the process waits meanwhile. This is what took a 200 MB POST to 3 GB.
3. daphne then reads the file in 8 KiB chunks straight into the application's unbounded queue,
   so the whole body sits in memory again until the app has consumed it.

So an ASGI middleware alone cannot protect daphne. `BoundedWebRequest` (a subclass of daphne's
request, which daphne's factory picks up once `install()` has run) changes two things:
- it turns off Twisted's form parsing (2.); daphne and Django never read `request.args`;
- it checks the body against the route's limit (apps.core.body_limits) as soon as the headers are
  in: a declared Content-Length over it is answered 413 at once, and a chunked body is counted as
  it arrives and answered 413 when it passes the limit. The rest of a refused body is read and
  thrown away (so the client, still sending, reads the 413 rather than a reset), then the
  connection closes; a client still sending after DRAIN_MAX_BYTES is cut off.
A `Expect: 100-continue` request over the limit gets the 413 instead of the 100, and sends nothing.

Bodies within their limit still go through steps 1 and 3: up to the route's limit on disk, then
briefly in memory. The reverse proxy in front (client_max_body_size per route) is the first line.
"""

from __future__ import annotations

import logging
from io import BytesIO
from typing import Any

from apps.core.body_limits import (
    body_limit_for,
    carries_credentials,
    is_api_path,
    path_of_target,
    too_large_response,
)

logger = logging.getLogger(__name__)

# After refusing, read and drop at most this much more of the body before closing.
DRAIN_MAX_BYTES = 512 * 1024 * 1024


def _bounded_request_class() -> type:
    from daphne.http_protocol import WebRequest

    class BoundedWebRequest(WebRequest):  # type: ignore[misc]
        """daphne's request with Twisted's form parsing off and a body limit per route."""

        is_bounded = True  # what install() looks for, so it installs once
        body_limit: int | None = None
        body_received = 0
        body_refused = False
        body_dropped = 0

        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self._parsePOSTFormSubmission = False

        def gotLength(self, length: int | None) -> None:  # noqa: N802 (Twisted's name)
            target = getattr(self.channel, "_path", b"/")
            self.body_path = path_of_target(target)
            self.body_limit = body_limit_for(
                self.body_path,
                has_credentials=carries_credentials(_flat_headers(self.requestHeaders)),
            )
            if length is not None and length > self.body_limit:
                self.content = BytesIO()
                self._refuse_body()
                return
            super().gotLength(length)

        def handleContentChunk(self, data: bytes) -> None:  # noqa: N802
            if self.body_refused:
                self.body_dropped += len(data)
                if self.body_dropped > DRAIN_MAX_BYTES and self.channel is not None:
                    self.channel.transport.abortConnection()
                return
            self.body_received += len(data)
            if self.body_limit is not None and self.body_received > self.body_limit:
                self.content.close()
                self.content = BytesIO()
                self._refuse_body()
                return
            super().handleContentChunk(data)

        def requestReceived(self, command: bytes, path: bytes, version: bytes) -> None:  # noqa: N802
            if self.body_refused:
                # The refused body is over; the 413 has gone out already.
                if self.channel is not None:
                    self.channel.loseConnection()
                return
            super().requestReceived(command, path, version)

        def _refuse_body(self) -> None:
            self.body_refused = True
            assert self.body_limit is not None
            # Twisted answers `Expect: 100-continue` right after gotLength: not for this one.
            self.requestHeaders.removeHeader(b"Expect")
            content_type, body = too_large_response(is_api_path(self.body_path), self.body_limit)
            head = (
                b"HTTP/1.1 413 Payload Too Large\r\n"
                b"Content-Type: " + content_type + b"\r\n"
                b"Content-Length: " + str(len(body)).encode() + b"\r\n"
                b"Connection: close\r\n\r\n"
            )
            logger.warning(
                "refused a request body over %d bytes for %s", self.body_limit, self.body_path
            )
            self.channel.transport.write(head + body)

    return BoundedWebRequest


def _flat_headers(headers: Any) -> list[tuple[bytes, bytes]]:
    return [(name, value) for name, values in headers.getAllRawHeaders() for value in values]


def install() -> None:
    """Make daphne build its HTTP requests from BoundedWebRequest (idempotent). daphne's
    HTTPFactory looks up `WebRequest` in its module each time it builds a protocol."""
    try:
        from daphne import http_protocol
    except ImportError:  # served by another ASGI server: the ASGI middleware does the work
        return
    if getattr(http_protocol.WebRequest, "is_bounded", False):
        return
    http_protocol.WebRequest = _bounded_request_class()
