"""PostgreSQL connections stay bounded: the psycopg pool is on by default wherever PostgreSQL is
used, and a burst of concurrent requests to a real daphne never holds more connections than
DB_POOL_MAX. (Without the pool, every request's thread kept a connection of its own: 20 API
clients left 75 idle connections and ingest failed with "too many clients".)"""

from __future__ import annotations

import os
import threading
import uuid
from concurrent.futures import ThreadPoolExecutor

import psycopg
import requests

from tests.daphne import running_daphne
from tests.test_settings import GOOD_KEY, run

SETTINGS_PROBE = (
    "import json; from django.conf import settings as s; db = s.DATABASES['default'];"
    "print(json.dumps({'pool': db.get('OPTIONS', {}).get('pool'), 'age': db['CONN_MAX_AGE']}))"
)


def database_settings(**env: str) -> dict:
    import json

    done = run(
        ["-c", "import django; django.setup();" + SETTINGS_PROBE], SECRET_KEY=GOOD_KEY, **env
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(done.stdout)


def test_postgresql_gets_the_pool_by_default():
    url = "postgres://imewe:pw@db.internal:5432/imewe"
    assert database_settings(DATABASE_URL=url) == {
        "pool": {"min_size": 2, "max_size": 20, "timeout": 10},
        "age": 0,  # the pool, not persistent per-thread connections
    }
    sized = database_settings(DATABASE_URL=url, DB_POOL_MIN="1", DB_POOL_MAX="6")
    assert sized["pool"]["min_size"] == 1 and sized["pool"]["max_size"] == 6


def test_the_pool_can_be_turned_off_and_sqlite_has_none():
    url = "postgres://imewe:pw@db.internal:5432/imewe"
    assert database_settings(DATABASE_URL=url, DB_POOL="0") == {"pool": None, "age": 60}
    assert database_settings(DATABASE_URL="")["pool"] is None


def server_url() -> str:
    """The machine's PostgreSQL (the one the test run uses, when it uses one)."""
    url = os.environ.get("DATABASE_URL", "")
    return (
        url.rsplit("/", 1)[0]
        if url.startswith("postgres")
        else "postgres://postgres@127.0.0.1:5432"
    )


def connections_named(app_name: str) -> int:
    with psycopg.connect(f"{server_url()}/postgres", autocommit=True) as conn:
        row = conn.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE application_name = %s", [app_name]
        ).fetchone()
    assert row is not None
    return int(row[0])


def production_env(tmp_path, app_name: str, **overrides: str) -> dict[str, str]:
    """daphne on the production settings and this machine's PostgreSQL, its connections named
    `app_name` so that they can be counted."""
    return {
        "DJANGO_SETTINGS_MODULE": "imewe.settings",
        "SECRET_KEY": GOOD_KEY,
        "DEBUG": "0",
        "SECURE_SSL_REDIRECT": "0",
        "ALLOWED_HOSTS": "127.0.0.1",
        "DATABASE_URL": f"{server_url()}/postgres?application_name={app_name}",
        "REDIS_URL": "",
        "IMEWE_VAR_DIR": str(tmp_path / "var"),
        **overrides,
    }


def test_a_burst_of_requests_holds_at_most_the_pool_size(tmp_path):
    # given: daphne with the production settings on PostgreSQL, the pool's size left to its
    # defaults but for the maximum, and its connections named so that we can count them
    app_name = f"imewe-pool-{uuid.uuid4().hex[:8]}"
    env = production_env(tmp_path, app_name, DB_POOL="", DB_POOL_MAX="4")  # DB_POOL: default
    peak = 0
    done = threading.Event()

    def watch() -> None:
        nonlocal peak
        while not done.is_set():
            peak = max(peak, connections_named(app_name))

    with running_daphne(tmp_path, **env) as port:
        watcher = threading.Thread(target=watch)
        watcher.start()
        try:
            # when: 40 clients ask at once for a page that queries the database
            with ThreadPoolExecutor(40) as clients:
                statuses = list(
                    clients.map(
                        lambda _: requests.get(
                            f"http://127.0.0.1:{port}/readyz", timeout=60
                        ).json()["checks"]["database"],
                        range(80),
                    )
                )
            after = connections_named(app_name)
        finally:
            done.set()
            watcher.join()

    # then: every request reached the database, through at most DB_POOL_MAX connections
    assert all(check["ok"] and check["backend"] == "postgresql" for check in statuses), statuses
    assert 0 < after <= 4
    assert peak <= 4


def test_pooled_connections_ended_by_the_server_are_replaced_not_failed(tmp_path):
    # given: daphne on the production settings with its pool warmed up
    app_name = f"imewe-pool-{uuid.uuid4().hex[:8]}"
    env = production_env(tmp_path, app_name, DB_POOL_MIN="2", DB_POOL_MAX="2")

    def database_ok(port: int) -> bool:
        answer = requests.get(f"http://127.0.0.1:{port}/readyz", timeout=60)
        return bool(answer.json()["checks"]["database"]["ok"])

    with running_daphne(tmp_path, **env) as port:
        assert all(database_ok(port) for _ in range(4))
        # when: the server ends every pooled connection, as a restart or failover does
        with psycopg.connect(f"{server_url()}/postgres", autocommit=True) as conn:
            ended = conn.execute(
                "SELECT count(*) FROM (SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE application_name = %s) AS t",
                [app_name],
            ).fetchone()
        assert ended is not None and ended[0] >= 1
        # then: the next requests get fresh connections (the pool checks each on checkout)
        assert all(database_ok(port) for _ in range(4))
