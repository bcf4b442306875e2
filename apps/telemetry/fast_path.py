"""The ingest fast path: telemetry POSTs from devices served before Django's middleware stack.

`IngestFastPath` wraps the ASGI HTTP application. A POST to the two ingest routes with an
`Authorization: Device <token>` header whose credential it knows (checked by
`device_authenticate`, then kept in the process for DEVICE_AUTH_CACHE_SECONDS) is served here:
the body is read on the event loop, and the decoding, validation and storage run in ONE worker
thread with the very code the DRF views run (`apps.telemetry.api.batch_result` / `point_result`),
answering the same statuses and bodies. Everything else goes to Django unchanged: other
routes and methods, users' tokens and sessions, unknown or malformed device headers (Django's
401 and 403 texts), a host outside ALLOWED_HOSTS, plain HTTP where HTTPS is required.

Why (issue 19, py-spy of the ingest process): 20 middleware classes, DRF's request wrapping,
one database query per request for the token and a Redis round trip for the throttle cost more
than a 100-point batch's own validation. Here a cached request costs no query and no Redis call
before the ingest itself.

The device throttle (API_THROTTLE_DEVICE, e.g. 1200/minute per credential) counts in the
process and adds its counts to a shared counter in the cache (Redis) at most once a second, so
several ingest processes share one limit: a burst may overshoot it by what the processes admit
in one second, never more. Without Redis each process counts alone.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass
from typing import Any

import orjson
from asgiref.sync import sync_to_async
from django.conf import settings
from django.core.cache import cache
from django.db import close_old_connections
from django.http.request import split_domain_port, validate_host
from rest_framework import exceptions
from rest_framework.throttling import SimpleRateThrottle

from apps.core.api import exception_handler

logger = logging.getLogger(__name__)

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
AsgiApp = Callable[..., Awaitable[None]]

BATCH_PATH = "/api/v1/telemetry/batch/"
POINT_PATH = "/api/v1/telemetry/"
THROTTLE_SYNC_S = 1.0


@dataclass(frozen=True, slots=True)
class CachedDevice:
    credential_id: int
    node_id: int
    expires: float


class DeviceCache:
    """Token -> the credential's ids, for DEVICE_AUTH_CACHE_SECONDS. Only successes are kept:
    an unknown token always reaches Django (and its 401), so nothing is learnt by guessing."""

    def __init__(self, max_entries: int = 50_000) -> None:
        self.entries: dict[str, CachedDevice] = {}
        self.max_entries = max_entries

    def get(self, token: str, now: float) -> CachedDevice | None:
        entry = self.entries.get(token)
        if entry is None or entry.expires <= now:
            return None
        return entry

    def put(self, token: str, credential_id: int, node_id: int, now: float) -> CachedDevice:
        if len(self.entries) >= self.max_entries:
            self.entries = {t: e for t, e in self.entries.items() if e.expires > now}
            if len(self.entries) >= self.max_entries:
                self.entries.clear()
        ttl = float(settings.DEVICE_AUTH_CACHE_SECONDS)
        entry = CachedDevice(credential_id, node_id, now + ttl)
        if ttl > 0:
            self.entries[token] = entry
        return entry

    def clear(self) -> None:
        self.entries.clear()


@dataclass
class _Window:
    start: float
    shared: int = 0  # the count of every process, as last read from the cache
    unsynced: int = 0  # this process's requests not yet added to the cache
    synced_at: float = 0.0


class _RateParser(SimpleRateThrottle):
    """DRF's reading of a rate ("600/min" -> 600 per 60 s) and nothing else: no scope, no
    cache, so nothing to set up."""

    def __init__(self) -> None:
        pass


_RATE_PARSER = _RateParser()


class DeviceThrottle:
    """Fixed windows of the rate's duration per credential, counted locally and shared through
    the cache once a second."""

    def __init__(self) -> None:
        self.windows: dict[int, _Window] = {}
        self.lock = threading.Lock()

    @staticmethod
    def rate() -> tuple[int | None, int | None]:
        # DRF's own throttle reads the class attribute set at import; the setting is the same.
        rates = SimpleRateThrottle.THROTTLE_RATES
        return _RATE_PARSER.parse_rate(rates.get("device"))

    def admit(self, credential_id: int, now: float) -> float | None:
        """None to go on, else the seconds until the next window."""
        allowed, duration = self.rate()
        if allowed is None or duration is None:
            return None
        with self.lock:
            window = self.windows.get(credential_id)
            if window is None or now - window.start >= duration:
                window = self.windows[credential_id] = _Window(start=now - now % duration)
            if window.shared + window.unsynced >= allowed:
                return max(window.start + duration - now, 0.0)
            window.unsynced += 1
            return None

    def sync(self, credential_id: int, now: float) -> None:
        """Add this process's count to the shared one (sync: runs in the worker thread)."""
        allowed, duration = self.rate()
        if allowed is None or duration is None:
            return
        with self.lock:
            window = self.windows.get(credential_id)
            if window is None or now - window.synced_at < THROTTLE_SYNC_S or not window.unsynced:
                return
            delta, window.unsynced, window.synced_at = window.unsynced, 0, now
            start = window.start
        key = f"throttle_device_fast_{credential_id}_{int(start)}"
        try:
            cache.add(key, 0, timeout=int(duration) + 5)
            total = cache.incr(key, delta)
        except Exception:  # a missing key (evicted, Redis down): count alone
            total = None
        with self.lock:
            if window is self.windows.get(credential_id):
                window.shared = int(total) if total is not None else window.shared + delta


devices = DeviceCache()
throttle = DeviceThrottle()


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", ()):
        if key == name:
            text: str = value.decode("latin-1")
            return text
    return None


def _device_token(scope: Scope) -> str | None:
    parts = (_header(scope, b"authorization") or "").split()
    if len(parts) == 2 and parts[0].lower() == "device":
        return parts[1]
    return None


def _secure(scope: Scope) -> bool:
    if scope.get("scheme") == "https":
        return True
    proxy = getattr(settings, "SECURE_PROXY_SSL_HEADER", None)
    if proxy is None:
        return False
    header, expected = proxy
    name = header.removeprefix("HTTP_").lower().replace("_", "-").encode()
    value = _header(scope, name)
    return value is not None and value.split(",")[0].strip() == expected


def _host_allowed(scope: Scope) -> bool:
    host = _header(scope, b"host")
    if host is None:
        return False
    domain, _port = split_domain_port(host)
    allowed = list(settings.ALLOWED_HOSTS)
    if settings.DEBUG and not allowed:
        allowed = [".localhost", "127.0.0.1", "[::1]"]
    return bool(domain) and validate_host(domain, allowed)


def _security_headers(secure: bool) -> list[tuple[bytes, bytes]]:
    headers = [
        (b"content-type", b"application/json"),
        (b"x-content-type-options", b"nosniff"),
        (b"x-frame-options", settings.X_FRAME_OPTIONS.encode()),
        (b"referrer-policy", settings.SECURE_REFERRER_POLICY.encode()),
        (b"permissions-policy", settings.PERMISSIONS_POLICY.encode()),
        (b"cache-control", b"no-store"),
    ]
    if secure and settings.SECURE_HSTS_SECONDS:
        hsts = f"max-age={settings.SECURE_HSTS_SECONDS}"
        if settings.SECURE_HSTS_INCLUDE_SUBDOMAINS:
            hsts += "; includeSubDomains"
        if settings.SECURE_HSTS_PRELOAD:
            hsts += "; preload"
        headers.append((b"strict-transport-security", hsts.encode()))
    return headers


def _authenticate(token: str) -> tuple[int, int] | None:
    from apps.vendors.services import device_authenticate

    try:
        credential = device_authenticate(token=token)
        return None if credential is None else (credential.pk, credential.node_id)
    finally:
        close_old_connections()


def _serve(
    path: str, body: bytes, encoding: str, node_id: int, credential_id: int
) -> tuple[int, Any, dict[str, str]]:
    """Runs in a worker thread: what the DRF view would answer, as (status, data, headers)."""
    from apps.telemetry.api import batch_result, decode_body, point_result

    try:
        if path == BATCH_PATH:
            code, data = batch_result(body, encoding, node_id)
        else:
            code, data = point_result(decode_body(body, encoding), node_id)
        return code, data, {}
    except Exception as exc:  # the API's one error format, as DRF's handler renders it
        response = exception_handler(exc, {})
        return response.status_code, response.data, dict(response.items())
    finally:
        throttle.sync(credential_id, time.monotonic())
        close_old_connections()


async def _read_body(receive: Receive) -> bytes | None:
    chunks = []
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return None
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            return b"".join(chunks)


class IngestFastPath:
    def __init__(self, app: AsgiApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] != "http"
            or scope.get("method") != "POST"
            or scope.get("path") not in (BATCH_PATH, POINT_PATH)
            or scope.get("query_string")
        ):
            await self.app(scope, receive, send)
            return
        token = _device_token(scope)
        secure = _secure(scope)
        if (
            token is None
            or not _host_allowed(scope)
            or (settings.SECURE_SSL_REDIRECT and not secure)
        ):
            await self.app(scope, receive, send)
            return
        now = time.monotonic()
        device = devices.get(token, now)
        if device is None:
            found = await sync_to_async(_authenticate, thread_sensitive=False)(token)
            if found is None:  # Django answers with its exact 401
                await self.app(scope, receive, send)
                return
            device = devices.put(token, *found, now=now)
        wait = throttle.admit(device.credential_id, now)
        if wait is not None:
            exc = exceptions.Throttled(wait=wait)
            response = exception_handler(exc, {})
            await self._respond(
                send, response.status_code, response.data, secure, dict(response.items())
            )
            return
        body = await _read_body(receive)
        if body is None:
            return
        encoding = (_header(scope, b"content-encoding") or "").lower()
        code, data, extra = await sync_to_async(_serve, thread_sensitive=False)(
            scope["path"], body, encoding, device.node_id, device.credential_id
        )
        await self._respond(send, code, data, secure, extra)

    @staticmethod
    async def _respond(send: Send, code: int, data: Any, secure: bool, extra: Any) -> None:
        body = orjson.dumps(data)
        headers = _security_headers(secure)
        headers.append((b"content-length", str(len(body)).encode()))
        for name, value in dict(extra).items():
            if name.lower() in ("retry-after", "www-authenticate"):
                headers.append((name.lower().encode(), str(value).encode()))
        await send({"type": "http.response.start", "status": code, "headers": headers})
        await send({"type": "http.response.body", "body": body})
