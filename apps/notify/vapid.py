"""The VAPID key pair that signs Web Push requests: from settings in production, generated once
into var/ in development."""

from __future__ import annotations

import base64
import functools
from dataclasses import dataclass

from cryptography.hazmat.primitives import serialization
from django.conf import settings
from py_vapid import Vapid


@dataclass(frozen=True)
class VapidKeys:
    private_pem: str
    public_key: str  # base64url of the uncompressed point, what PushManager.subscribe() takes


def _b64url(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _public(vapid: Vapid) -> str:
    raw = vapid.public_key.public_bytes(
        serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
    )
    return _b64url(raw)


@functools.cache
def vapid_keys() -> VapidKeys | None:
    """None when Web Push is not configured (no keys and generation not allowed)."""
    if settings.VAPID_PRIVATE_KEY:
        key = settings.VAPID_PRIVATE_KEY.strip()
        vapid = Vapid.from_pem(key.encode()) if key.startswith("-----") else Vapid.from_string(key)
        return VapidKeys(vapid.private_pem().decode(), settings.VAPID_PUBLIC_KEY or _public(vapid))
    if not settings.NOTIFY_VAPID_GENERATE:
        return None
    path = settings.VAR_DIR / "vapid_private.pem"
    if path.exists():
        vapid = Vapid.from_file(str(path))
    else:
        path.parent.mkdir(parents=True, exist_ok=True)
        vapid = Vapid()
        vapid.generate_keys()
        vapid.save_key(str(path))
    return VapidKeys(vapid.private_pem().decode(), _public(vapid))
