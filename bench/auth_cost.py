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

Compare two checkouts by running this file in each, one after the other, on the same machine:
CPU per request is inflated by a loaded machine, so only figures of the same run compare.
"""

from __future__ import annotations

import argparse
import cProfile
import os
import pstats
import secrets
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

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
