"""Webhook signatures: HMAC-SHA256 over "<timestamp>.<body>" with the channel's secret.

Headers sent: X-Imewe-Timestamp (Unix seconds), X-Imewe-Signature ("v1=<hex digest>"),
X-Imewe-Event (the event kind) and X-Imewe-Delivery (the delivery id; the same on every
retry, so a receiver can drop a repeat). `signature_verify` is what a receiver runs (README)."""

from __future__ import annotations

import hashlib
import hmac

TIMESTAMP_HEADER = "X-Imewe-Timestamp"
SIGNATURE_HEADER = "X-Imewe-Signature"
EVENT_HEADER = "X-Imewe-Event"
DELIVERY_HEADER = "X-Imewe-Delivery"
REPLAY_WINDOW_S = 300


def signature_make(*, secret: str, timestamp: int, body: bytes) -> str:
    digest = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return f"v1={digest.hexdigest()}"


def signature_verify(
    *,
    secret: str,
    timestamp: str,
    signature: str,
    body: bytes,
    now: float,
    window_s: int = REPLAY_WINDOW_S,
) -> bool:
    """True when `signature` is ours for this body and timestamp, and the timestamp is within
    `window_s` of `now` (an old, captured request cannot be replayed later)."""
    try:
        sent = int(timestamp)
    except ValueError:
        return False
    if abs(now - sent) > window_s:
        return False
    expected = signature_make(secret=secret, timestamp=sent, body=body)
    return hmac.compare_digest(expected, signature)
