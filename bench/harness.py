"""What the benchmarks share: a database of their own, free ports, process CPU time, and the
environment a real daphne / manage.py needs. Each benchmark keeps its own Redis DB and key prefix
so they never meet, and never touches the app's or the test suite's database."""

from __future__ import annotations

import os
import secrets
import socket
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import psycopg

ROOT = Path(__file__).resolve().parent.parent
PG_URL = os.environ.get("BENCH_PG_URL", "postgres://postgres@127.0.0.1:5432")
NEVER_TOUCH = frozenset({"imewe", "test_imewe"})  # the app's and the test suite's databases
HOST = "127.0.0.1"


class BenchDatabase:
    def __init__(self, name: str) -> None:
        if name in NEVER_TOUCH:
            raise ValueError(f"{name} belongs to the app or the tests, not to a benchmark")
        self.name = name

    @property
    def url(self) -> str:
        return f"{PG_URL}/{self.name}"

    def recreate(self) -> None:
        with psycopg.connect(f"{PG_URL}/postgres", autocommit=True) as conn:
            conn.execute(f"DROP DATABASE IF EXISTS {self.name} WITH (FORCE)")
            conn.execute(f"CREATE DATABASE {self.name}")

    def drop(self) -> None:
        with psycopg.connect(f"{PG_URL}/postgres", autocommit=True) as conn:
            conn.execute(f"DROP DATABASE IF EXISTS {self.name} WITH (FORCE)")

    def run_in_process(self, run: Callable[[], None], *, keep: bool = False) -> None:
        """Runs `run` in this process with production settings on this database, created anew
        (no Redis, a broker that goes nowhere), and drops the database after unless `keep`."""
        os.environ.update(
            DJANGO_SETTINGS_MODULE="imewe.settings",
            DATABASE_URL=self.url,
            SECRET_KEY=secrets.token_urlsafe(64),
            DEBUG="0",
            LOG_LEVEL="WARNING",
            CELERY_BROKER_URL="memory://",
        )
        os.environ.pop("REDIS_URL", None)
        os.environ.pop("TIMESCALE_REQUIRED", None)
        print(f"database {self.name}: drop, create, migrate")
        self.recreate()
        try:
            run()
        finally:
            if not keep:
                from django.db import connections

                connections.close_all()
                self.drop()


def redis_keys_delete(url: str, pattern: str) -> int:
    """Delete a benchmark's keys (`pattern`, e.g. "benchws*") from its Redis DB; how many."""
    import redis

    client = redis.Redis.from_url(url)
    try:
        keys = list(client.scan_iter(match=pattern, count=1000))
        for start in range(0, len(keys), 500):
            client.delete(*keys[start : start + 500])
        return len(keys)
    finally:
        client.close()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a process so far (nan once it is gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return float("nan")
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def tree_cpu_seconds(pid: int) -> float:
    """`cpu_seconds` of a process and every live process below it (a server whose workers are
    its children, such as granian's)."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    total, todo = 0.0, [pid]
    while todo:
        current = todo.pop()
        total += cpu_seconds(current)
        todo += children.get(current, [])
    return total


def migrate(env: dict[str, str]) -> None:
    subprocess.run(
        [sys.executable, "manage.py", "migrate", "--verbosity", "0"], cwd=ROOT, env=env, check=True
    )


def server_env(
    *, database: BenchDatabase, redis_url: str, key_prefix: str, var_dir: Path, **extra: str
) -> dict[str, str]:
    """Production-like settings on plain HTTP over loopback, one SECRET_KEY per run (the same in
    the servers and in the benchmark's own seeding), plus `extra`."""
    env = {
        k: v for k, v in os.environ.items() if k not in {"TIMESCALE_REQUIRED", "JWT_SIGNING_KEY"}
    }
    env.update(
        DJANGO_SETTINGS_MODULE="imewe.settings",
        DATABASE_URL=database.url,
        REDIS_URL=redis_url,
        CHANNELS_PREFIX=key_prefix,
        CACHE_PREFIX=key_prefix,
        SECRET_KEY=secrets.token_urlsafe(64),
        ALLOWED_HOSTS=f"{HOST},localhost",
        DEBUG="0",
        SECURE_SSL_REDIRECT="0",
        SESSION_COOKIE_SECURE="0",
        CSRF_COOKIE_SECURE="0",
        LOG_FORMAT="text",
        CELERY_BROKER_URL="memory://",  # tasks queued while seeding go nowhere
        EMAIL_BACKEND="django.core.mail.backends.locmem.EmailBackend",
        IMEWE_VAR_DIR=str(var_dir),
        PYTHONUNBUFFERED="1",
    )
    env.update(extra)
    return env
