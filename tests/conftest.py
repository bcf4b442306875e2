from __future__ import annotations

import contextlib
import shutil
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from typing import Any

import channels.testing.application as channels_testing
import pytest
from django.test import Client
from django_otp import DEVICE_ID_SESSION_KEY
from pytest_django.plugin import blocking_manager_key
from rest_framework.test import APIClient

from apps.users.models import User
from apps.users.roles import Role
from apps.users.tokens import tokens_issue
from tests.users.factories import OrganizationFactory, UserFactory, totp_device_for

# Fixtures more than one test directory uses, registered once (pytest reads `pytest_plugins`
# only here, in the top conftest); a directory's own fixtures stay in its conftest.py.
pytest_plugins = [
    "tests.fixtures.fleet",
    "tests.fixtures.shop",
    "tests.fixtures.market",
    "tests.fixtures.studio",
    "tests.fixtures.machines",
    "tests.fixtures.live",
]


def close_old_connections_outside_atomic() -> None:
    """`close_old_connections` that spares a connection in an atomic block (a test's own)."""
    from django.db import connections

    for conn in connections.all(initialized_only=True):
        if not conn.in_atomic_block:
            conn.close_if_unusable_or_obsolete()


# Channels' test communicators swap `channels.db.close_old_connections` for that module's `no_op`
# while a test awaits them, so that a test's transaction survives. The swap is module-wide: a
# consumer's database call in any other thread (the websocket rights sweeper's) then never gave
# its pooled connection back, and 20 such starved the rest of the suite (CI, session 14). Every
# connection outside a transaction is closed instead.
channels_testing.no_op = close_old_connections_outside_atomic


@pytest.fixture(autouse=True)
def _clean_cache() -> Any:
    # Throttle counters live in the cache; each test starts empty.
    _clear_own_cache()
    yield
    _clear_own_cache()


def _clear_own_cache() -> None:
    """Empty this run's cache only: on Redis, `cache.clear()` is FLUSHDB, which wiped the
    throttle counters of every other test run sharing the database mid-test. The process's
    cache of node rules goes too (a flushed database reuses nothing, but a rolled-back one may
    give a node's id to the next test's node), and so do the users' permissions."""
    from apps.maintenance.services.rule_cache import node_rules_forget
    from apps.telemetry.services import streaming_nodes
    from apps.users.permission_cache import cache_clear

    node_rules_forget()
    streaming_nodes.forget()
    cache_clear()
    from django.conf import settings
    from django.core.cache import caches
    from django.core.cache.backends.redis import RedisCache

    backend = caches["default"]  # `cache` is a proxy, never an instance of the backend class
    if not isinstance(backend, RedisCache):
        backend.clear()
        return
    client = backend._cache.get_client(write=True)
    keys = list(client.scan_iter(match=f"{settings.CACHES['default']['KEY_PREFIX']}:*", count=1000))
    if keys:
        client.delete(*keys)


@pytest.fixture(autouse=True)
def _fresh_channel_layer() -> Iterator[None]:
    """channels keeps one layer object per alias for the whole process, and channels-redis binds
    its receive lock to the event loop that first used it; each async test runs a loop of its
    own, so a socket one test left receiving held that lock for every later test ("is bound to
    a different event loop"). Each test gets its own layer."""
    from channels.layers import channel_layers

    channel_layers.backends.clear()
    yield
    channel_layers.backends.clear()


@pytest.fixture
def latest_migrations_after() -> Iterator[None]:
    """For a test that migrates an app back and forth: every app ends at its latest migration
    whatever the test left (jobs' test stopped at 0004 once jobs had 0006, and every later test
    that read a part failed on a missing column)."""
    yield
    from django.db import connection
    from django.db.migrations.executor import MigrationExecutor

    executor = MigrationExecutor(connection)
    executor.migrate(executor.loader.graph.leaf_nodes())


@pytest.fixture
def make_user(db: Any) -> Callable[..., User]:
    def make(role: Role | str = Role.DESIGNER, **kwargs: Any) -> User:
        return UserFactory.create(role=role, **kwargs)

    return make


@pytest.fixture
def org(db: Any) -> Any:
    return OrganizationFactory.create(name="Acme Design", slug="acme-design")


@pytest.fixture
def users_by_role(db: Any, org: Any) -> dict[Role, User]:
    return {
        role: UserFactory.create(role=role, email=f"{role.value}@example.test", organization=org)
        for role in Role
    }


@pytest.fixture
def api() -> APIClient:
    return APIClient()


def jwt_client(user: User) -> APIClient:
    client = APIClient()
    client.credentials(
        HTTP_AUTHORIZATION=f"Bearer {tokens_issue(user=user, otp_verified=True).access_token}"
    )
    return client


@pytest.fixture
def as_user() -> Callable[[User], APIClient]:
    return jwt_client


def portal_client(user: User) -> Client:
    """A browser-like client signed in; users who must use 2FA get a verified session."""
    client = Client()
    client.force_login(user, backend="django.contrib.auth.backends.ModelBackend")
    if user.role == Role.ADMIN or user.is_staff:
        device = totp_device_for(user)
        session = client.session
        session[DEVICE_ID_SESSION_KEY] = device.persistent_id
        session.save()
    return client


@pytest.fixture
def signed_in() -> Callable[[User], Client]:
    return portal_client


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_port(port: int, proc: subprocess.Popen, *, within_s: float) -> None:
    """Polls until a server process we started accepts connections on `port`; fails at once if
    it exits, or after `within_s` seconds."""
    deadline = time.monotonic() + within_s
    while True:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        if proc.poll() is not None:
            raise RuntimeError(f"the server on port {port} exited with {proc.returncode}")
        if time.monotonic() > deadline:
            raise RuntimeError(f"nothing listens on port {port} after {within_s:g} s")
        time.sleep(0.05)


@pytest.fixture
def own_redis() -> Iterator[tuple[int, subprocess.Popen[bytes]]]:
    """A real, private redis-server that the test may stop."""
    binary = shutil.which("redis-server")
    assert binary, "redis-server is required (Debian package redis-server)"
    port = free_port()
    proc = subprocess.Popen(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
        stdout=subprocess.DEVNULL,
    )
    wait_for_port(port, proc, within_s=10)
    yield port, proc
    proc.kill()
    proc.wait()


@pytest.fixture(scope="session", autouse=True)
def _end_stray_db_sessions(django_db_setup: Any, django_db_blocker: Any) -> Iterator[None]:
    """Threads that served tests (channels' sync workers, the in-process Celery worker, the
    MQTT bridge) may still hold a connection to the test database; end them so it can be
    dropped at the end of the run."""
    yield
    from django.db import OperationalError, connection

    with django_db_blocker.unblock(), contextlib.suppress(OperationalError):
        if connection.vendor == "postgresql":  # (nothing to end if the database is gone)
            with connection.cursor() as cursor:
                cursor.execute(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                    "WHERE datname = current_database() AND pid <> pg_backend_pid()"
                )


_POOL_OTHERS = pytest.StashKey[int]()


def _pooled_connections_held_elsewhere(config: pytest.Config) -> int | None:
    """Connections out of this process's pool, bar the test thread's own and asgiref's shared
    sync thread's (told to give its back first); None without a pool."""
    from asgiref.sync import SyncToAsync
    from django.db import connections

    conn = connections["default"]
    pool = getattr(type(conn), "_connection_pools", {}).get(conn.alias)
    if pool is None:
        return None
    # (pytest-django blocks the database outside tests, in every thread: closing checks it)
    with config.stash[blocking_manager_key].unblock(), contextlib.suppress(Exception):
        SyncToAsync.single_thread_executor.submit(close_old_connections_outside_atomic).result(5)
    stats = pool.get_stats()
    in_use = stats.get("pool_size", 0) - stats.get("pool_available", 0)
    return in_use - (conn.connection is not None)


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> Iterator[None]:
    item.stash[_POOL_OTHERS] = _pooled_connections_held_elsewhere(item.config) or 0  # (no pool yet)
    return (yield)


@pytest.hookimpl(wrapper=True, trylast=True)
def pytest_runtest_teardown(item: pytest.Item, nextitem: pytest.Item | None) -> Iterator[None]:
    """A thread that used the ORM and never closed its connection keeps it out of the pool for
    good: 20 such and every later test waited 10 s for one and failed (CI, session 14). The test
    that takes one and does not give it back fails here, by name, instead."""
    result = yield
    killed = item.get_closest_marker("kills_a_thread")
    before = item.stash.get(_POOL_OTHERS, 0) + (killed.args[0] if killed else 0)
    if _pooled_connections_held_elsewhere(item.config) is None:
        return result
    deadline = time.monotonic() + 5  # a server thread may still be finishing its response
    while (others := _pooled_connections_held_elsewhere(item.config) or 0) > before:
        if time.monotonic() > deadline:
            raise AssertionError(
                f"{others - before} pooled database connection(s) taken in other threads during "
                "this test were never given back: a thread that used the ORM did not close its "
                "connection (wrap the call in channels' database_sync_to_async, or close it)"
            )
        time.sleep(0.05)
    return result


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    """When a statement gives up on a lock (settings_test's lock_timeout), the report lists the
    database sessions of the moment, so the holder can be named instead of guessed."""
    outcome = yield
    if call.excinfo is None or "lock timeout" not in str(call.excinfo.value):
        return
    report = outcome.get_result()  # type: ignore[attr-defined]
    report.sections.append(("database sessions at the lock timeout", _database_sessions()))


def _database_sessions() -> str:
    import psycopg
    from django.db import connection

    params = connection.settings_dict
    try:
        with psycopg.connect(
            dbname=params["NAME"],
            user=params["USER"],
            host=params["HOST"],
            port=params["PORT"] or 5432,
            autocommit=True,
        ) as conn:
            rows = conn.execute(
                "SELECT pid, application_name, state, xact_start, wait_event_type,"
                " left(query, 200) FROM pg_stat_activity"
                " WHERE datname = current_database() AND pid <> pg_backend_pid()"
            ).fetchall()
    except psycopg.Error as exc:
        return f"(could not list them: {exc})"
    return "\n".join(" | ".join(str(v) for v in row) for row in rows) or "(none)"
