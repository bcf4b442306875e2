"""CPU of one authenticated API request, in process (issue 21 item 11): what bench.job_status's
web process spends per request on the Django side, measured without daphne and without other
clients, so that two checkouts can be compared on a loaded machine.

    .venv/bin/python -m bench.auth_cost [--requests 400] [--rounds 3] [--profile DIR]

Seeds the job of bench.job_status (through the services) into database `bench_authcost`
(`--database NAME` for another), then sends each kind of request `--requests` times through
Django's test client with production settings (DEBUG=0, the Redis cache and throttles on Redis
DB 5 under the key prefix `benchauth`, the psycopg pool): the middleware stack, JWT
authentication, the role matrix, the throttle, the view. Prints, per kind, the process's CPU
milliseconds per request (the median of `--rounds` rounds), the SQL queries one request makes,
and the Python function calls per request (cProfile: a figure the machine's load does not move).
`--profile DIR` writes a pyinstrument profile of each kind into DIR (HTML, text, and the session
for `pyinstrument --load FILE --show-all`).
`--reuse-db` skips dropping, migrating and seeding when the database is already there.

Then the same requests go through the ASGI application daphne serves (`imewe.asgi.application`:
the body limit, the ingest fast path, Django's handler; no server, one request at a time on an
event loop), twice: with Django's stock ASGIHandler as the baseline and with ours
(apps/core/asgi_http.py, the middleware run as one sync call). The difference between the two is
what the thread hops between the event loop and the request's thread cost; the difference to
the test client's figure is what the ASGI layer costs on top of Django.

Compare two checkouts by running this file in each, one after the other, on the same machine:
CPU per request is inflated by a loaded machine, so only figures of the same run compare.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import os
import pstats
import secrets
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import psycopg

from bench import harness

REDIS_URL = "redis://127.0.0.1:6379/5"
KEY_PREFIX = "benchauth"
FIELDS = "id,status,parts_total"


def environment(database: harness.BenchDatabase, var_dir: Path) -> dict[str, str]:
    env = harness.server_env(
        database=database,
        redis_url=REDIS_URL,
        key_prefix=KEY_PREFIX,
        var_dir=var_dir,
        IMEWE_PROCESS_ROLE="web",
        ALLOWED_HOSTS="testserver,127.0.0.1",
        PROXY_COUNT="1",
        DB_POOL="1",
        DB_POOL_MIN="2",
        DB_POOL_MAX="30",
        LOG_LEVEL="WARNING",
        JWT_ACCESS_MINUTES="60",
        # the throttle still runs (and counts in Redis); it must not refuse a measured request
        API_THROTTLE_USER_READ="100000000/minute",
    )
    # one SECRET_KEY for the seeding and the requests: the tokens are signed with it
    env["SECRET_KEY"] = os.environ.get("BENCH_SECRET_KEY") or secrets.token_urlsafe(64)
    return env


def database_exists(database: harness.BenchDatabase) -> bool:
    with psycopg.connect(f"{harness.PG_URL}/postgres", autocommit=True) as conn:
        row = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (database.name,))
        return row.fetchone() is not None


Asgi = Callable[[dict[str, Any], Any, Any], Awaitable[None]]


async def asgi_get(app: Asgi, path: str, headers: dict[str, str]) -> int:
    """One GET through an ASGI application, as a server would hand it over; its status."""
    path, _, query = path.partition("?")
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": query.encode(),
        "root_path": "",
        "headers": [(k.lower().encode(), v.encode()) for k, v in headers.items()],
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 8000),
    }
    asked = False
    status = 0

    async def receive() -> dict[str, Any]:
        nonlocal asked
        if not asked:
            asked = True
            return {"type": "http.request", "body": b"", "more_body": False}
        await asyncio.Event().wait()  # the client stays: Django cancels this when it answers
        raise AssertionError("unreachable")

    async def send(message: dict[str, Any]) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = message["status"]

    await app(scope, receive, send)
    return status


def asgi_cost(app: Asgi, path: str, headers: dict[str, str], expected: int, n: int) -> float:
    """CPU milliseconds per request of `n` requests through `app`, one after the other."""

    async def run() -> float:
        for _ in range(20):
            status = await asgi_get(app, path, headers)
        assert status == expected, (path, status)
        began = time.process_time()
        for _ in range(n):
            await asgi_get(app, path, headers)
        return 1000 * (time.process_time() - began) / n

    return asyncio.run(run())


def measure(args: argparse.Namespace) -> None:
    import django

    django.setup()
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    from apps.jobs.models import Job
    from apps.users.models import User
    from apps.users.tokens import tokens_issue

    job = Job.objects.order_by("pk").first()
    assert job is not None, "no job: run without --reuse-db once"
    designer = User.objects.get(email="designer000@bench.test")
    token = str(tokens_issue(user=designer, otp_verified=False).access_token)
    headers = {
        "HTTP_AUTHORIZATION": f"Bearer {token}",
        "HTTP_X_FORWARDED_FOR": "10.1.0.1",
        "HTTP_X_FORWARDED_PROTO": "https",
        "HTTP_ACCEPT": "application/json",
    }
    client = Client(**headers)
    job_path = f"/api/v1/jobs/{job.pk}/"
    etag = client.get(job_path).headers["ETag"]
    kinds: list[tuple[str, str, dict[str, str], int]] = [
        ("healthz", "/healthz", {}, 200),
        ("me", "/api/v1/auth/me/", {}, 200),
        ("job fields", f"{job_path}?fields={FIELDS}", {}, 200),
        ("job 304", job_path, {"HTTP_IF_NONE_MATCH": etag}, 304),
        ("job full", job_path, {}, 200),
    ]
    print(f"job {job.pk}; {args.requests} requests per kind and round, {args.rounds} rounds")
    print(f"  {'request':<12}{'ms CPU/req':>12}{'rounds':>26}{'queries':>9}{'calls/req':>11}")
    for name, path, extra, expected in kinds:
        for _ in range(20):  # warm: imports, pools, the first compiled queries
            answer = client.get(path, **extra)
        assert answer.status_code == expected, (name, answer.status_code, answer.content[:300])
        with CaptureQueriesContext(connection) as captured:
            client.get(path, **extra)
        queries = len(captured)  # now: the next request empties the connection's log
        rounds = []
        for _ in range(args.rounds):
            began = time.process_time()
            for _ in range(args.requests):
                client.get(path, **extra)
            rounds.append(1000 * (time.process_time() - began) / args.requests)
        shown = " ".join(f"{r:.2f}" for r in rounds)
        # Python function calls per request: what the CPU figure stands for, without the
        # machine's load in it (cProfile counts every call, C functions included)
        counting = cProfile.Profile()
        counting.enable()
        for _ in range(20):
            client.get(path, **extra)
        counting.disable()
        calls = pstats.Stats(counting).total_calls / 20  # type: ignore[attr-defined]
        print(
            f"  {name:<12}{statistics.median(rounds):>12.2f}{shown:>26}{queries:>9}{calls:>11,.0f}",
            flush=True,
        )
        if args.profile:
            from pyinstrument import Profiler

            profiler = Profiler(interval=0.0005)
            with profiler:
                for _ in range(args.requests):
                    client.get(path, **extra)
            stem = args.profile / name.replace(" ", "_")
            stem.with_suffix(".html").write_text(profiler.output_html())
            stem.with_suffix(".txt").write_text(profiler.output_text(unicode=False))
            if profiler.last_session is not None:  # `pyinstrument --load FILE --show-all`
                profiler.last_session.save(str(stem.with_suffix(".pyisession")))
    asgi_compare(args, kinds, headers)


def asgi_compare(
    args: argparse.Namespace,
    kinds: list[tuple[str, str, dict[str, str], int]],
    headers: dict[str, str],
) -> None:
    from channels.routing import ProtocolTypeRouter
    from django.core.handlers.asgi import ASGIHandler

    import imewe.asgi
    from apps.core.body_limits import BodyLimitMiddleware
    from apps.telemetry.fast_path import IngestFastPath

    ours = imewe.asgi.application
    stock = ProtocolTypeRouter({"http": BodyLimitMiddleware(IngestFastPath(ASGIHandler()))})
    as_http = {k.removeprefix("HTTP_").replace("_", "-"): v for k, v in headers.items()}
    as_http["Host"] = "testserver"
    print("through the ASGI application (no server), ms CPU per request, median of the rounds:")
    print(f"  {'request':<12}{'stock':>10}{'ours':>10}{'saved':>9}")
    for name, path, extra, expected in kinds:
        asked = {
            **as_http,
            **{k.removeprefix("HTTP_").replace("_", "-"): v for k, v in extra.items()},
        }
        # rounds alternate between the two, so that a change in the machine's load falls on both
        rounds: dict[str, list[float]] = {"stock": [], "ours": []}
        for _ in range(args.rounds):
            for label, app in (("stock", stock), ("ours", ours)):
                rounds[label].append(asgi_cost(app, path, asked, expected, args.requests))
        figures = {label: statistics.median(values) for label, values in rounds.items()}
        if args.profile:
            from pyinstrument import Profiler

            profiler = Profiler(interval=0.0005, async_mode="disabled")
            with profiler:
                asgi_cost(ours, path, asked, expected, args.requests)
            stem = args.profile / f"asgi_{name.replace(' ', '_')}"
            stem.with_suffix(".txt").write_text(profiler.output_text(unicode=False))
        saved = 1 - figures["ours"] / figures["stock"]
        print(
            f"  {name:<12}{figures['stock']:>10.2f}{figures['ours']:>10.2f}{saved:>9.0%}",
            flush=True,
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=400)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--database", default="bench_authcost")
    parser.add_argument("--reuse-db", action="store_true")
    parser.add_argument("--profile", type=Path, metavar="DIR")
    parser.add_argument("--measure", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.profile is not None:
        args.profile = args.profile.resolve()
        args.profile.mkdir(parents=True, exist_ok=True)
    if args.measure:  # the child: environment set by the parent
        measure(args)
        return
    database = harness.BenchDatabase(args.database)
    env = environment(database, Path(tempfile.mkdtemp(prefix="imewe-bench-authcost-")))
    env["BENCH_SECRET_KEY"] = env["SECRET_KEY"]
    if not (args.reuse_db and database_exists(database)):
        print(f"database {database.name}: drop, create, migrate, seed", flush=True)
        database.recreate()
        harness.migrate(env)
        seed = "from bench.job_status import seed; seed(3)"
        subprocess.run([sys.executable, "-c", seed], cwd=harness.ROOT, env=env, check=True)
    harness.redis_keys_delete(REDIS_URL, f"*{KEY_PREFIX}*")
    # the tokens must be signed with the key the database's users were seeded under: any key
    # works for a token issued in the child, so the child issues its own
    argv = [sys.executable, "-m", "bench.auth_cost", "--measure"]
    argv += ["--requests", str(args.requests), "--rounds", str(args.rounds)]
    if args.profile:
        argv += ["--profile", str(args.profile)]
    try:
        subprocess.run(argv, cwd=harness.ROOT, env=env, check=True)
    finally:
        harness.redis_keys_delete(REDIS_URL, f"*{KEY_PREFIX}*")


if __name__ == "__main__":
    main()
