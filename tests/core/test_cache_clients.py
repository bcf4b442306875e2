"""Django makes a cache object per async context (every ASGI request); on Redis they all share
one client and its connection pool, so a request that touches the cache reuses a connection
instead of opening one."""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from django.core.cache import BaseCache, caches
from django.core.cache.backends.redis import RedisCache

pytestmark = pytest.mark.skipif(not os.environ.get("REDIS_URL"), reason="needs Redis (CI sets it)")


def client_of(cache: BaseCache) -> Any:
    """The Redis client behind a cache object (Django's, private, so typed loosely)."""
    assert isinstance(cache, RedisCache)
    return cache._cache


def test_cache_objects_of_different_requests_share_one_connection_pool():
    first, second = caches.create_connection("default"), caches.create_connection("default")
    assert first is not second and client_of(first) is client_of(second)


def test_a_hundred_requests_one_after_another_use_one_connection():
    def request(i: int) -> object:
        cache = caches.create_connection("default")  # what each request context gets
        cache.set(f"pool-probe-{i}", i, timeout=5)
        return cache.get(f"pool-probe-{i}")

    def opened() -> int:
        shared = client_of(caches.create_connection("default"))._get_connection_pool(True)
        return len(shared._available_connections) + len(shared._in_use_connections)

    before = opened()  # (earlier tests of this process may have used the pool concurrently)
    with ThreadPoolExecutor(max_workers=1) as pool:
        assert list(pool.map(request, range(100))) == list(range(100))
    assert 1 <= opened() <= max(before, 1)
