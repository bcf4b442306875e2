"""The ingest fast path (apps/telemetry/fast_path.py) answers exactly what the DRF views answer,
and hands everything it does not own to Django. Each request goes through the deployed ASGI
application (imewe.asgi) and, on an emptied table, through Django's own ASGI handler alone."""

from __future__ import annotations

import asyncio
import gzip
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import orjson
import pytest
from asgiref.sync import async_to_sync
from django.core.asgi import get_asgi_application
from django.test import override_settings
from django.utils import timezone
from rest_framework.throttling import SimpleRateThrottle

from apps.telemetry import fast_path
from apps.telemetry.models import TelemetryPoint
from apps.vendors.services import device_credential_revoke
from tests.asgi import http_scope
from tests.conftest import jwt_client
from tests.fixtures.fleet import Fleet
from tests.fixtures.live import Live

pytestmark = pytest.mark.django_db(transaction=True)

BATCH = "/api/v1/telemetry/batch/"
POINT = "/api/v1/telemetry/"


@pytest.fixture(autouse=True)
def _empty_caches() -> Iterator[None]:
    fast_path.devices.clear()
    fast_path.throttle.windows.clear()
    yield
    fast_path.devices.clear()
    fast_path.throttle.windows.clear()


def call(app: Any, path: str, body: bytes, headers: dict[str, str]) -> tuple[int, dict, Any]:
    """One HTTP request through the ASGI `app`: (status, headers, parsed JSON body)."""
    scope = http_scope("POST", path, headers)
    sent: list[dict[str, Any]] = []
    chunks = [body[:100], body[100:]]  # a body in two messages, as servers deliver large ones

    async def receive() -> dict[str, Any]:
        if chunks:
            chunk = chunks.pop(0)
            return {"type": "http.request", "body": chunk, "more_body": bool(chunks)}
        await asyncio.Event().wait()  # the client stays until the response is sent
        raise AssertionError("unreachable")

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    async def run() -> None:
        await app(scope, receive, send)

    async_to_sync(run)()
    start = next(m for m in sent if m["type"] == "http.response.start")
    payload = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    head = {k.decode(): v.decode() for k, v in start["headers"]}
    return start["status"], head, orjson.loads(payload) if payload else None


def deployed() -> Any:
    from imewe.asgi import application

    return application


def both(path: str, body: bytes, headers: dict[str, str]) -> tuple[tuple, tuple]:
    """The same request through the fast path and through Django alone, each on an empty table."""
    TelemetryPoint.objects.all().delete()
    fast = call(deployed(), path, body, {"host": "testserver", **headers})
    TelemetryPoint.objects.all().delete()
    fast_path.devices.clear()
    django_only = call(get_asgi_application(), path, body, {"host": "testserver", **headers})
    return fast, django_only


def at(seconds: float) -> str:
    base = timezone.now().replace(microsecond=0) - timedelta(minutes=10)
    return (base + timedelta(seconds=seconds)).isoformat()


def point(node_id: int, seconds: float, **values: Any) -> dict[str, Any]:
    return {"node": node_id, "time": at(seconds), **(values or {"power_kw": 1.5})}


def requests_of(live: Live) -> list[tuple[str, str, bytes, dict[str, str]]]:
    node = live.nodes[0].pk
    other = live.nodes[1].pk
    device = {"authorization": f"Device {live.tokens[0]}"}
    as_json = {**device, "content-type": "application/json"}
    mixed = [
        point(node, 1),
        point(node, 2, temperature_c=5000),
        {"node": node, "time": "yesterday", "power_kw": 1},
        point(node, 1, power_kw=2.0),
        point(other, 3),
        "not an object",
        point(node, 4, colour="red"),
    ]
    good = [point(node, i, power_kw=i / 10) for i in range(50)]
    return [
        ("one point", POINT, orjson.dumps(point(node, 0)), as_json),
        ("a bad point", POINT, orjson.dumps(point(node, 0, power_kw=-1)), as_json),
        ("a good batch", BATCH, orjson.dumps(good), as_json),
        ("a wrapped batch", BATCH, orjson.dumps({"points": good}), as_json),
        (
            "a gzip batch",
            BATCH,
            gzip.compress(orjson.dumps(good)),
            {**as_json, "content-encoding": "gzip"},
        ),
        ("a mixed batch", BATCH, orjson.dumps(mixed), as_json),
        ("all bad", BATCH, orjson.dumps(mixed[1:3]), as_json),
        ("empty batch", BATCH, b"[]", as_json),
        ("not a list", BATCH, b'{"points": 3}', as_json),
        ("too many points", BATCH, orjson.dumps([point(node, 0)] * 10_001), as_json),
        ("bad JSON", BATCH, b'[{"node": 1,', as_json),
        (
            "corrupt gzip",
            BATCH,
            b"\x1f\x8b\x08\x00garbage",
            {**as_json, "content-encoding": "gzip"},
        ),
        ("brotli", BATCH, b"[]", {**as_json, "content-encoding": "br"}),
        ("NUL in extra", BATCH, orjson.dumps([point(node, 0, extra={"a": "x\x00y"})]), as_json),
    ]


def test_the_fast_path_answers_exactly_what_the_views_answer(live: Live):
    for name, path, body, headers in requests_of(live):
        (fast_code, fast_head, fast_body), (code, head, data) = both(path, body, headers)
        assert (fast_code, fast_body) == (code, data), name
        assert fast_head["content-type"] == "application/json", name
        assert fast_head["x-content-type-options"] == "nosniff", name


def test_the_fast_path_stores_what_it_accepts_and_serves_without_django(live: Live):
    node = live.nodes[0]
    headers = {"host": "testserver", "authorization": f"Device {live.tokens[0]}"}
    body = orjson.dumps([point(node.pk, i) for i in range(20)])
    code, head, data = call(deployed(), BATCH, body, headers)
    assert code == 200 and data["accepted"] == 20
    assert TelemetryPoint.objects.filter(node=node).count() == 20
    # Django's middleware would have added its own headers; the fast path sends only its own
    assert "x-frame-options" in head and "vary" not in head
    # the credential is now known: the next request needs no token lookup
    assert fast_path.devices.get(live.tokens[0], 0.0) is not None


def test_what_the_fast_path_does_not_own_goes_to_django(live: Live, fleet: Fleet):
    node = live.nodes[0].pk
    body = orjson.dumps([point(node, 0)])
    credentials = jwt_client(fleet.vendor)._credentials  # type: ignore[attr-defined]
    user = {"authorization": credentials["HTTP_AUTHORIZATION"]}
    for name, headers, expected in [
        ("no credentials", {}, 401),
        ("a user's token", user, 403),
        ("an unknown device token", {"authorization": "Device imw_nope"}, 401),
        ("a malformed header", {"authorization": f"Device {live.tokens[0]} extra"}, 401),
    ]:
        (fast_code, _, fast_body), (code, _, data) = both(BATCH, body, headers)
        assert fast_code == code == expected, name
        assert fast_body == data, name
    assert not TelemetryPoint.objects.exists()
    assert not fast_path.devices.entries  # refusals are never cached
    # a host outside ALLOWED_HOSTS: Django's 400, not stored
    headers = {"host": "evil.example", "authorization": f"Device {live.tokens[0]}"}
    assert call(deployed(), BATCH, body, headers)[0] == 400
    assert not TelemetryPoint.objects.exists()


def test_https_required_means_a_redirect_from_django_not_a_stored_point(live: Live):
    headers = {"host": "testserver", "authorization": f"Device {live.tokens[0]}"}
    body = orjson.dumps([point(live.nodes[0].pk, 0)])
    proxy = ("HTTP_X_FORWARDED_PROTO", "https")
    with override_settings(SECURE_SSL_REDIRECT=True, SECURE_PROXY_SSL_HEADER=proxy):
        # Django's middleware reads the setting when it is built: a new handler, as at start
        app = fast_path.IngestFastPath(get_asgi_application())
        assert call(app, BATCH, body, headers)[0] == 301
        assert not TelemetryPoint.objects.exists()
        forwarded = {**headers, "x-forwarded-proto": "https"}
        code, head, _ = call(app, BATCH, body, forwarded)
        assert "strict-transport-security" in head
    assert code == 200 and TelemetryPoint.objects.count() == 1


def test_a_revoked_token_stops_within_the_cache_time(live: Live):
    token = live.tokens[0]
    headers = {"host": "testserver", "authorization": f"Device {token}"}
    node = live.nodes[0]
    assert call(deployed(), BATCH, orjson.dumps([point(node.pk, 0)]), headers)[0] == 200
    credential = node.device_credentials.get(revoked_at__isnull=True)
    device_credential_revoke(credential=credential, by=live.credential_vendor)
    # within DEVICE_AUTH_CACHE_SECONDS the process still knows the token
    assert call(deployed(), BATCH, orjson.dumps([point(node.pk, 1)]), headers)[0] == 200
    # once the entry lapses, Django answers 401 and nothing is stored
    fast_path.devices.entries[token] = fast_path.CachedDevice(credential.pk, node.pk, 0.0)
    code, _, body = call(deployed(), BATCH, orjson.dumps([point(node.pk, 2)]), headers)
    assert code == 401 and body["error"]["code"] == "device_token_invalid"
    assert TelemetryPoint.objects.filter(node=node).count() == 2
    with override_settings(DEVICE_AUTH_CACHE_SECONDS=0):  # no caching at all
        fast_path.devices.clear()
        assert call(deployed(), BATCH, orjson.dumps([point(node.pk, 3)]), headers)[0] == 401


def test_the_device_throttle_holds_and_answers_like_drf(live: Live, monkeypatch):
    monkeypatch.setitem(SimpleRateThrottle.THROTTLE_RATES, "device", "3/minute")
    headers = {"host": "testserver", "authorization": f"Device {live.tokens[0]}"}
    node = live.nodes[0].pk
    codes = [call(deployed(), POINT, orjson.dumps(point(node, i)), headers)[0] for i in range(4)]
    assert codes == [201, 201, 201, 429]
    code, head, body = call(deployed(), POINT, orjson.dumps(point(node, 9)), headers)
    assert code == 429 and int(head["retry-after"]) >= 1
    assert body["error"]["code"] == "throttled"
    assert body["error"]["details"]["retry_after_seconds"] > 0
    assert TelemetryPoint.objects.count() == 3
    # another device has a limit of its own
    other = {"host": "testserver", "authorization": f"Device {live.tokens[1]}"}
    assert call(deployed(), POINT, orjson.dumps(point(live.nodes[1].pk, 0)), other)[0] == 201


def test_ingest_processes_share_one_throttle_through_the_cache(monkeypatch):
    monkeypatch.setitem(SimpleRateThrottle.THROTTLE_RATES, "device", "4/minute")
    first, second = fast_path.DeviceThrottle(), fast_path.DeviceThrottle()
    now = 120.0 * 10_000 + 7  # the same minute for both
    assert [first.admit(42, now) for _ in range(3)] == [None, None, None]
    first.sync(42, now)
    assert second.admit(42, now) is None  # second's own count: 1; it has not synced yet
    second.sync(42, now)  # learns the shared count: 3 + 1
    assert second.admit(42, now + 1) is not None
    # first learns of second's request at its next sync (a second later) and refuses too
    assert first.admit(42, now + 1.5) is None  # its view is 3 + 1 own until then
    first.sync(42, now + 1.5)
    assert first.admit(42, now + 1.6) is not None
