"""API throttles by kind of request.

Reads are cheap and clients poll them (a phone app or a shop-floor screen asks for a job's status,
its nodes and the newest telemetry every second), writes change state and cost more: each has its
own budget per signed-in user (`user_read`, `user_write`). Anonymous callers keep DRF's `anon`
rate; signing in and refreshing a token have the `auth` rate per client address on top of the
lockout (axes); devices have theirs (apps/telemetry/api.py).
"""

from __future__ import annotations

from typing import Any

from rest_framework.permissions import SAFE_METHODS
from rest_framework.throttling import SimpleRateThrottle, UserRateThrottle


class UserReadWriteThrottle(UserRateThrottle):
    """DRF's per-user throttle with the scope chosen per request: `user_read` for GET, HEAD and
    OPTIONS, `user_write` for the rest. The two are counted apart."""

    scope = "user_read"

    def allow_request(self, request: Any, view: Any) -> bool:
        self.scope = "user_read" if request.method in SAFE_METHODS else "user_write"
        self.rate = self.get_rate()
        self.num_requests, self.duration = self.parse_rate(self.rate)
        return super().allow_request(request, view)


class AuthRateThrottle(SimpleRateThrottle):
    """Signing in, the second factor and token refresh: per client address, whoever is asked
    for (a password guesser tries many accounts)."""

    scope = "auth"

    def get_cache_key(self, request: Any, view: Any) -> str:
        return self.cache_format % {"scope": self.scope, "ident": self.get_ident(request)}
