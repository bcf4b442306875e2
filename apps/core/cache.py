"""The cache backend used with Redis. The cache is an accelerator here, never the only home of
state that matters (JWT revocation lives in the database), so while Redis is unreachable the
cache degrades instead of failing the request: reads miss, writes and deletes are dropped,
`add` stores nothing and answers False (`incr` still raises: it has no safe answer; nothing
uses it). What that means for each user of the cache:

- DRF throttles (user, anon, device) fail open: requests are not rate-limited while Redis is
  down (logged). Login lockout is django-axes on the database and keeps working.
- the MQTT bridge's device-token lookups and the energy emission factors are recomputed from
  the database on every miss.

After a failure the backend does not touch Redis for `BREAKER_S` seconds, so an outage costs
one failed connection attempt per few seconds, not one per call; the first call after that
tries again, so service resumes without a restart when Redis is back."""

from __future__ import annotations

from typing import Any

from django.core.cache.backends.base import DEFAULT_TIMEOUT
from django.core.cache.backends.redis import RedisCache

from apps.core.breaker import REDIS_UNREACHABLE, Breaker

BREAKER_S = 5.0
# A blackholed Redis (no RST) must not hold a request for long either.
DEFAULT_OPTIONS = {"socket_connect_timeout": 0.5, "socket_timeout": 1.0}

breaker = Breaker("cache (Redis)", open_s=BREAKER_S)


class ResilientRedisCache(RedisCache):
    def __init__(self, server: str, params: dict[str, Any]) -> None:
        super().__init__(server, params)
        self._options = {**DEFAULT_OPTIONS, **params.get("OPTIONS", {})}

    def _guard(self, method: Any, fallback: Any, *args: Any) -> Any:
        if breaker.is_open():
            return fallback
        try:
            result = method(self, *args)
        except REDIS_UNREACHABLE as exc:
            breaker.failed(exc)
            return fallback
        breaker.succeeded()
        return result

    def add(self, key: Any, value: Any, timeout: Any = DEFAULT_TIMEOUT, version: Any = None) -> Any:
        return self._guard(RedisCache.add, False, key, value, timeout, version)

    def get(self, key: Any, default: Any = None, version: Any = None) -> Any:
        return self._guard(RedisCache.get, default, key, default, version)

    def set(
        self, key: Any, value: Any, timeout: Any = DEFAULT_TIMEOUT, version: Any = None
    ) -> None:
        self._guard(RedisCache.set, None, key, value, timeout, version)

    def touch(self, key: Any, timeout: Any = DEFAULT_TIMEOUT, version: Any = None) -> Any:
        return self._guard(RedisCache.touch, False, key, timeout, version)

    def delete(self, key: Any, version: Any = None) -> Any:
        return self._guard(RedisCache.delete, False, key, version)

    def get_many(self, keys: Any, version: Any = None) -> Any:
        return self._guard(RedisCache.get_many, {}, keys, version)

    def has_key(self, key: Any, version: Any = None) -> Any:
        return self._guard(RedisCache.has_key, False, key, version)

    def set_many(self, data: Any, timeout: Any = DEFAULT_TIMEOUT, version: Any = None) -> Any:
        return self._guard(RedisCache.set_many, list(data), data, timeout, version)

    def delete_many(self, keys: Any, version: Any = None) -> None:
        self._guard(RedisCache.delete_many, None, keys, version)

    def clear(self) -> Any:
        return self._guard(RedisCache.clear, False)
