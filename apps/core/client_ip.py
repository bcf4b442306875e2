"""The client's address, taken only from proxies we trust.

`X-Forwarded-For` is a list that every proxy extends on the right with the address it received
the request from; whatever is further left was written by the client and proves nothing. With
`PROXY_COUNT` = N proxies in front of the ASGI server (nginx in docker-compose: N = 1), the
client is the N-th entry from the right. `ClientAddressMiddleware` puts that address into
`REMOTE_ADDR` before anything else runs, so the lockout (axes), the API throttles, the audit log
and the /metrics and /readyz checks all read `REMOTE_ADDR` and hold no proxy logic of their own.
"""

from __future__ import annotations

import ipaddress
import logging
from collections.abc import Callable

from django.conf import settings
from django.http import HttpRequest, HttpResponse

logger = logging.getLogger(__name__)


def client_address(*, peer: str | None, forwarded_for: str | None, proxy_count: int) -> str:
    """The client's address given the socket peer and the X-Forwarded-For header.

    - `proxy_count` 0, or no header (a caller inside the deployment that bypasses the proxy,
      such as a health probe): the peer.
    - A header shorter than `proxy_count` (the request skipped an outer proxy): its left-most
      entry, which the innermost trusted proxy wrote.
    - The trusted entry is not an IP address (a misconfigured proxy): "" (unknown). Never the
      peer, which is the proxy's own, internal address, and would open /metrics.
    """
    if proxy_count <= 0 or not forwarded_for or not forwarded_for.strip():
        return peer or ""
    entries = [entry.strip() for entry in forwarded_for.split(",")]
    candidate = entries[-min(proxy_count, len(entries))]
    try:
        return str(ipaddress.ip_address(candidate))
    except ValueError:
        logger.warning(
            "X-Forwarded-For entry %r from a trusted proxy is not an IP address; "
            "check PROXY_COUNT and the proxy's configuration",
            candidate[:60],
        )
        return ""


def request_client_address(request: HttpRequest) -> str | None:
    """What the lockout (AXES_CLIENT_IP_CALLABLE) and audit log record: REMOTE_ADDR, which
    ClientAddressMiddleware has already resolved; None when unknown."""
    return request.META.get("REMOTE_ADDR") or None


class ClientAddressMiddleware:
    """First in MIDDLEWARE: replaces REMOTE_ADDR with the address from trusted proxies only."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        request.META["REMOTE_ADDR"] = client_address(
            peer=request.META.get("REMOTE_ADDR"),
            forwarded_for=request.META.get("HTTP_X_FORWARDED_FOR"),
            proxy_count=settings.PROXY_COUNT,
        )
        return self.get_response(request)
