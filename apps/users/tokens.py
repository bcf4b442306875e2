"""Revocation of access tokens at logout: a denylist of token ids in the cache (Redis in
production), each kept only until the token would have expired anyway."""

from __future__ import annotations

from django.core.cache import cache
from django.utils import timezone

DENYLIST_PREFIX = "jwt-denied:"


def access_token_revoke(*, jti: str, expires_at: int) -> None:
    ttl = max(int(expires_at - timezone.now().timestamp()), 1)
    cache.set(f"{DENYLIST_PREFIX}{jti}", 1, timeout=ttl)


def access_token_is_revoked(*, jti: str) -> bool:
    return cache.get(f"{DENYLIST_PREFIX}{jti}") is not None
