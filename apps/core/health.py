"""Liveness and readiness: /healthz says the process serves; /readyz checks its dependencies."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.core.exceptions import DisallowedHost
from django.db import connection
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET
from django_prometheus.exports import ExportToDjangoView

from apps.core.network import is_internal

RESEND_S = 0.25
CHECK_TIMEOUT_S = 3.0


def check_database() -> str:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
        cursor.fetchone()
    return connection.vendor


async def _layer_roundtrip() -> str:
    layer = get_channel_layer()
    if layer is None:
        raise RuntimeError("no channel layer configured")
    channel = await layer.new_channel("readyz.")
    # Sent again every RESEND_S until it comes back: on the pub/sub layer a message published
    # before Redis has processed the new channel's SUBSCRIBE (another connection) is not kept.
    receiving = asyncio.ensure_future(layer.receive(channel))
    deadline = asyncio.get_running_loop().time() + CHECK_TIMEOUT_S
    try:
        while not receiving.done():
            await layer.send(channel, {"type": "readyz.ping"})
            left = deadline - asyncio.get_running_loop().time()
            if left <= 0:
                raise TimeoutError("no answer through the channel layer")
            await asyncio.wait({receiving}, timeout=min(RESEND_S, left))
        message = receiving.result()
    finally:
        receiving.cancel()
    if message.get("type") != "readyz.ping":
        raise RuntimeError("channel layer returned a different message")
    return type(layer).__name__


def check_channel_layer() -> str:
    return async_to_sync(_layer_roundtrip)()


def check_broker() -> str:
    from imewe.celery import app

    if app.conf.task_always_eager:
        return "eager (no broker)"
    with app.connection_for_write() as conn:
        conn.ensure_connection(max_retries=1, timeout=int(CHECK_TIMEOUT_S))
        return (
            conn.transport_cls
            if isinstance(conn.transport_cls, str)
            else conn.transport.driver_name
        )


CHECKS: dict[str, Callable[[], str]] = {
    "database": check_database,
    "channel_layer": check_channel_layer,
    "broker": check_broker,
}


@require_GET
@never_cache
def metrics(request: HttpRequest) -> HttpResponse:
    """Prometheus metrics (django-prometheus), for the scraper inside the deployment only."""
    if not is_internal(request):
        return HttpResponse(
            "Metrics are served to internal networks only.\n", status=403, content_type="text/plain"
        )
    response: HttpResponse = ExportToDjangoView(request)
    return response


@require_GET
@never_cache
def healthz(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"status": "ok"})


@require_GET
@never_cache
def readyz(request: HttpRequest) -> JsonResponse:
    results: dict[str, Any] = {}
    ok = True
    internal = is_internal(request)
    for name, check in CHECKS.items():
        started = time.perf_counter()
        try:
            detail = check()
        except Exception as exc:  # a dependency being down is the answer, not an error
            ok = False
            # Exception text can name hosts and users: only callers inside the deployment see it.
            error = f"{type(exc).__name__}: {exc}"[:300] if internal else type(exc).__name__
            results[name] = {"ok": False, "error": error}
        else:
            results[name] = {"ok": True, "backend": detail}
        results[name]["ms"] = round((time.perf_counter() - started) * 1000, 1)
    body = {"status": "ok" if ok else "unavailable", "checks": results}
    return JsonResponse(body, status=200 if ok else 503)


class ProbeMiddleware:
    """`/healthz`, `/readyz` and `/metrics` answer whatever Host the probe sends. A container
    healthcheck asks http://127.0.0.1:8000/..., and 127.0.0.1 is (rightly) not in a production
    ALLOWED_HOSTS: CommonMiddleware refused it with 400, so web and nginx never became healthy.
    Placed right after the client-address middleware; nothing else the probes need. A probe
    with a valid Host goes the usual way (and is counted in the metrics by view)."""

    PROBES: dict[str, Callable[[HttpRequest], HttpResponse]] = {
        "/healthz": healthz,
        "/readyz": readyz,
        # Prometheus scrapes each process by its address (deploy/prometheus/prometheus.yml);
        # the view itself still serves internal networks only.
        "/metrics": metrics,
    }

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        probe = self.PROBES.get(request.path_info)
        if probe is not None:
            try:
                request.get_host()
            except DisallowedHost:
                return probe(request)  # answered here; with a valid Host it goes the usual way
        return self.get_response(request)
