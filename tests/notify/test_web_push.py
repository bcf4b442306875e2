"""Browser push through a real push endpoint started by the test: the payload arrives
encrypted for the browser's keys (decrypted here as the browser would) and signed with the
platform's VAPID key; a browser that unsubscribed (410) is forgotten."""

from __future__ import annotations

import base64
import json
import os
from collections.abc import Iterator
from typing import Any

import http_ece
import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

from apps.notify.models import Delivery, PushSubscription
from apps.notify.services import channel_create, event_raise
from apps.notify.vapid import vapid_keys
from tests.conftest import jwt_client
from tests.fixtures.fleet import Fleet
from tests.notify.factories import PushSubscriptionFactory
from tests.notify.receivers import Receiver


def b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


@pytest.fixture
def vapid(settings: Any, tmp_path: Any) -> Iterator[Any]:
    settings.VAR_DIR = tmp_path
    settings.NOTIFY_VAPID_GENERATE = True
    vapid_keys.cache_clear()
    yield vapid_keys()
    vapid_keys.cache_clear()


@pytest.fixture
def push_service() -> Iterator[Receiver]:
    r = Receiver(port=8214).start()
    yield r
    r.stop()


def browser() -> tuple[ec.EllipticCurvePrivateKey, dict[str, str]]:
    key = ec.generate_private_key(ec.SECP256R1())
    public = key.public_key().public_bytes(
        serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
    )
    return key, {"p256dh": b64(public), "auth": b64(os.urandom(16))}


def test_push_arrives_encrypted_for_the_browser_and_signed(
    fleet: Fleet, vapid, push_service, django_capture_on_commit_callbacks
):
    user = fleet.operator
    key, keys = browser()
    api = jwt_client(user)
    assert api.get("/api/v1/notify/push/").json() == {"public_key": vapid.public_key}
    endpoint = f"{push_service.url}/push/abc"
    answer = api.post("/api/v1/notify/push/", {"endpoint": endpoint, "keys": keys}, format="json")
    assert answer.status_code == 201, answer.json()
    channel_create(
        by=user,
        kind="web_push",
        name="Phone",
        rules=[{"event_kind": "", "min_severity": "critical"}],
    )
    with django_capture_on_commit_callbacks(execute=True):
        event_raise(
            kind="ticket_opened",
            severity="critical",
            title="Spindle seized",
            link="/maintenance/tickets/3/",
            subject="node:3",
            users=[user],
        )
    (got,) = push_service.received
    assert got.path == "/push/abc" and got.headers["Content-Encoding"] == "aes128gcm"
    plain = http_ece.decrypt(
        got.body, private_key=key, auth_secret=unb64(keys["auth"]), version="aes128gcm"
    )
    assert json.loads(plain) == {
        "title": "Spindle seized",
        "body": "",
        "url": "/maintenance/tickets/3/",
        "tag": "node:3",
    }
    # the VAPID header: our public key, and a JWT for this push service signed with it
    auth = dict(p.strip().split("=", 1) for p in got.headers["Authorization"][6:].split(","))
    assert auth["k"] == vapid.public_key
    head, payload, signature = auth["t"].split(".")
    assert json.loads(unb64(payload))["aud"] == push_service.url
    raw = unb64(signature)
    public = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), unb64(vapid.public_key))
    public.verify(
        encode_dss_signature(int.from_bytes(raw[:32], "big"), int.from_bytes(raw[32:], "big")),
        f"{head}.{payload}".encode(),
        ec.ECDSA(hashes.SHA256()),
    )
    assert Delivery.objects.get().status == "sent"


def test_an_unsubscribed_browser_is_forgotten(
    fleet: Fleet, vapid, push_service, django_capture_on_commit_callbacks
):
    user = fleet.operator
    PushSubscriptionFactory.create(user=user, endpoint=f"{push_service.url}/gone")
    channel_create(
        by=user, kind="web_push", name="Phone", rules=[{"event_kind": "", "min_severity": "info"}]
    )
    push_service.refuse_with = 410
    with django_capture_on_commit_callbacks(execute=True):
        event_raise(kind="job_failed", severity="warning", title="x", users=[user])
    assert not PushSubscription.objects.exists()
    delivery = Delivery.objects.get()
    assert delivery.status == "pending" and "410" in delivery.last_error
    # with no browser left, the next attempt gives up: nothing could ever receive it
    from apps.notify.services import deliveries_drain

    Delivery.objects.update(next_attempt_at=None)
    deliveries_drain(delivery_id=delivery.pk)
    delivery.refresh_from_db()
    assert delivery.status == "failed" and "No browser" in delivery.last_error


def test_push_subscriptions_are_checked(fleet: Fleet, vapid, settings):
    api = jwt_client(fleet.operator)
    _, keys = browser()
    bad = api.post(
        "/api/v1/notify/push/",
        {"endpoint": "http://127.0.0.1:8214/p", "keys": {"auth": "x"}},
        format="json",
    )
    assert bad.status_code == 400 and "keys" in bad.json()["error"]["details"]
    settings.NOTIFY_ALLOWED_NETWORKS = []
    private = api.post(
        "/api/v1/notify/push/", {"endpoint": "http://127.0.0.1:8214/p", "keys": keys}, format="json"
    )
    assert private.status_code == 400 and "endpoint" in private.json()["error"]["details"]
    assert api.post("/api/v1/notify/push/", {}, format="json").status_code == 400
    assert not PushSubscription.objects.exists()
    anonymous = type(api)().post("/api/v1/notify/push/", {}, format="json")
    assert anonymous.status_code == 401


def test_push_channels_need_vapid_keys(fleet: Fleet, settings):
    settings.NOTIFY_VAPID_GENERATE = False
    settings.VAPID_PRIVATE_KEY = ""
    vapid_keys.cache_clear()
    try:
        answer = jwt_client(fleet.operator).post(
            "/api/v1/notify/channels/", {"kind": "web_push", "name": "Phone"}, format="json"
        )
    finally:
        vapid_keys.cache_clear()
    assert answer.status_code == 400
    assert "not configured" in str(answer.json()["error"]["details"]["kind"])
