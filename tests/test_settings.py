"""Configuration from the environment, checked in fresh processes like a real start."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
GOOD_KEY = "k" * 20 + "Zq8-Lm3_Rt7xVb2NcW9pYs4HdF6jKa1Ue5" + "x" * 10


def run(args: list[str], **env: str) -> subprocess.CompletedProcess[str]:
    # A clean environment, as a fresh server start would have (test settings set some vars).
    base = {
        k: v for k, v in os.environ.items() if k in {"PATH", "HOME", "LANG", "LC_ALL", "TMPDIR"}
    }
    base.update(
        DJANGO_SETTINGS_MODULE="imewe.settings",
        IMEWE_VAR_DIR=str(ROOT / "var" / "settings-test"),
        **env,
    )
    return subprocess.run(
        [sys.executable, *args], cwd=ROOT, env=base, capture_output=True, text=True, timeout=120
    )


def settings_dump(**env: str) -> dict:
    code = (
        "import django, json; django.setup(); from django.conf import settings as s;"
        "db = s.DATABASES['default'];"
        "print(json.dumps({'db': db['ENGINE'], 'name': str(db['NAME']),"
        "'layer': s.CHANNEL_LAYERS['default']['BACKEND'], 'broker': s.CELERY_BROKER_URL,"
        "'cache': s.CACHES['default']['BACKEND'], 'hosts': s.ALLOWED_HOSTS, 'email': s.EMAIL_HOST,"
        "'access': s.SIMPLE_JWT['ACCESS_TOKEN_LIFETIME'].total_seconds(), 'debug': s.DEBUG}))"
    )
    result = run(["-c", code], **env)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


FERNET_KEY = "m3Nc8cX6yGdQ5mRrZ9lEo0wYkq2pVb7tHhJfUaS4xiA="


def test_check_deploy_is_clean_in_production():
    result = run(
        ["manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        SECRET_KEY=GOOD_KEY,
        DEBUG="0",
        ALLOWED_HOSTS="imewe.example.com",
        FIELD_ENCRYPTION_KEYS=FERNET_KEY,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


def test_check_deploy_warns_when_secrets_at_rest_hang_on_secret_key():
    result = run(
        ["manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        SECRET_KEY=GOOD_KEY,
        DEBUG="0",
        ALLOWED_HOSTS="imewe.example.com",
    )
    assert result.returncode != 0
    assert "core.W001" in result.stderr + result.stdout


def test_a_malformed_field_encryption_key_stops_every_start():
    result = run(["manage.py", "check"], SECRET_KEY=GOOD_KEY, FIELD_ENCRYPTION_KEYS="not-a-key")
    assert result.returncode != 0
    assert "core.E001" in result.stderr and "key 1 is not a Fernet key" in result.stderr


@pytest.mark.parametrize("key", ["", "change-me", "django-insecure-" + "a" * 50, "short-key"])
def test_server_refuses_missing_or_default_secret_key(key):
    env = {"DEBUG": "0", "ALLOWED_HOSTS": "imewe.example.com"}
    if key:
        env["SECRET_KEY"] = key
    result = run(["manage.py", "check"], **env)
    assert result.returncode != 0
    assert "SECRET_KEY is missing, too short" in result.stderr


def test_daphne_refuses_to_start_without_secret_key():
    result = run(["-m", "daphne", "-p", "0", "imewe.asgi:application"], DEBUG="0")
    assert result.returncode != 0
    assert "SECRET_KEY" in result.stderr


def test_embedded_defaults_without_servers():
    data = settings_dump(SECRET_KEY=GOOD_KEY)
    assert data["db"] == "django.db.backends.sqlite3"
    assert data["layer"] == "channels.layers.InMemoryChannelLayer"
    assert data["broker"] == "filesystem://"
    assert data["cache"].endswith("LocMemCache")
    assert data["debug"] is False and data["hosts"] == []


def test_servers_from_urls():
    data = settings_dump(
        SECRET_KEY=GOOD_KEY,
        DATABASE_URL="postgres://imewe:pw@db.internal:5432/imewe",
        REDIS_URL="redis://cache.internal:6379/2",
        ALLOWED_HOSTS="a.example.com,b.example.com",
        EMAIL_HOST="smtp.example.com",
        JWT_ACCESS_MINUTES="2",
    )
    assert data["db"] == "django.db.backends.postgresql" and data["name"] == "imewe"
    assert data["layer"] == "channels_redis.pubsub.RedisPubSubChannelLayer"
    assert data["broker"] == "redis://cache.internal:6379/2"
    assert data["hosts"] == ["a.example.com", "b.example.com"]
    assert data["email"] == "smtp.example.com"
    assert data["access"] == 120


def test_bad_boolean_is_a_clear_error():
    result = run(["manage.py", "check"], SECRET_KEY=GOOD_KEY, DEBUG="maybe")
    assert result.returncode != 0
    assert "DEBUG must be a boolean" in result.stderr


POOL_PROBE = """
import django
django.setup()
from concurrent.futures import ThreadPoolExecutor
from django.db import connection, connections

def query(_):
    with connection.cursor() as cursor:
        cursor.execute("select 1")
        value = cursor.fetchone()[0]
    connections.close_all()  # returns the connection to the pool
    return value

print(sum(ThreadPoolExecutor(8).map(query, range(40))), type(connection.pool).__name__,
      connection.settings_dict["CONN_MAX_AGE"])
"""


@pytest.mark.skipif(
    "postgres" not in os.environ.get("DATABASE_URL", ""), reason="needs PostgreSQL (CI sets it)"
)
def test_database_pool_serves_queries_from_many_threads():
    server = os.environ["DATABASE_URL"].rsplit("/", 1)[0]
    done = run(
        ["-c", POOL_PROBE],
        SECRET_KEY=GOOD_KEY,
        DEBUG="1",
        DB_POOL="1",
        DATABASE_URL=f"{server}/postgres",  # the maintenance database always exists
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.split() == ["40", "ConnectionPool", "0"]


@pytest.mark.parametrize(
    ("env", "silent"),
    [
        ({}, 5),
        ({"MAINTENANCE_OFFLINE_MINUTES": "7.5"}, 8),  # silent follows offline, whole minutes
        ({"MAINTENANCE_OFFLINE_MINUTES": "7.5", "JOBS_NODE_SILENT_MINUTES": "3"}, 3),
    ],
)
def test_a_silent_node_is_silent_as_long_as_an_offline_one(env, silent):
    code = (
        "import django; django.setup(); from django.conf import settings as s;"
        "print(s.JOBS_NODE_SILENT_MINUTES)"
    )
    result = run(["-c", code], SECRET_KEY=GOOD_KEY, DEBUG="1", **env)
    assert result.returncode == 0, result.stderr
    assert int(result.stdout.strip().splitlines()[-1]) == silent
