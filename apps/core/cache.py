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

import threading
from typing import Any

from django.core.cache.backends.base import DEFAULT_TIMEOUT
from django.core.cache.backends.redis import RedisCache
from django.utils.functional import cached_property

from apps.core.breaker import REDIS_UNREACHABLE, Breaker

BREAKER_S = 5.0
# A blackholed Redis (no RST) must not hold a request for long either.
DEFAULT_OPTIONS = {"socket_connect_timeout": 0.5, "socket_timeout": 1.0}

breaker = Breaker("cache (Redis)", open_s=BREAKER_S)


# One client, and so one connection pool, per process and configuration. Django makes a cache
# object per async context (every ASGI request), each with a pool of its own: every request that
# touched the cache opened a new connection to Redis (7% of the ingest process in
# bench.ws_fanout, in redis-py's connect). redis-py's pools are thread-safe and reset themselves
# in a forked child.
_clients: dict[tuple[Any, ...], Any] = {}
_clients_lock = threading.Lock()


class ResilientRedisCache(RedisCache):
    _servers: list[str]  # (set by RedisCache)
    _class: Any

    def __init__(self, server: str, params: dict[str, Any]) -> None:
        super().__init__(server, params)
        self._options = {**DEFAULT_OPTIONS, **params.get("OPTIONS", {})}

    @cached_property
    def _cache(self) -> Any:
        key = (tuple(self._servers), repr(sorted(self._options.items())))
        with _clients_lock:
            client = _clients.get(key)
            if client is None:
                client = _clients[key] = self._class(self._servers, **self._options)
        return client

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
