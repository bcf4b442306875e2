from __future__ import annotations

import base64
import os
from datetime import time

import factory
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from apps.notify.models import PushSubscription, QuietHours
from tests.users.factories import UserFactory


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _browser_public_key() -> str:
    """What a browser's PushManager gives as `p256dh`: a P-256 public key, uncompressed."""
    key = ec.generate_private_key(ec.SECP256R1()).public_key()
    return _b64(
        key.public_bytes(serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint)
    )


class PushSubscriptionFactory(factory.django.DjangoModelFactory[PushSubscription]):
    """A browser's subscription with real keys (a push to it can be encrypted), though no
    browser holds the private one."""

    class Meta:
        model = PushSubscription

    user = factory.SubFactory(UserFactory)
    endpoint = factory.Sequence(lambda n: f"https://push.example.test/{n}")
    p256dh = factory.LazyFunction(_browser_public_key)
    auth = factory.LazyFunction(lambda: _b64(os.urandom(16)))


class QuietHoursFactory(factory.django.DjangoModelFactory[QuietHours]):
    """22:00 to 07:00 UTC."""

    class Meta:
        model = QuietHours

    user = factory.SubFactory(UserFactory)
    start = time(22, 0)
    end = time(7, 0)
    timezone = "UTC"
