"""Test settings: real PostgreSQL/Redis when DATABASE_URL/REDIS_URL are set, else SQLite/memory."""

import os

os.environ.setdefault(
    "SECRET_KEY", "imewe-test-only-key-7f3b9c1d2e4a5b6c8d0e1f2a3b4c5d6e7f8091a2b3"
)
os.environ.setdefault("DEBUG", "0")
os.environ.setdefault("SECURE_SSL_REDIRECT", "0")
os.environ.setdefault("LOG_FORMAT", "text")
os.environ.setdefault("LOG_LEVEL", "WARNING")

from imewe.settings import *  # noqa: E402,F403
from imewe.settings import BASE_DIR, DATABASES, REDIS_URL  # noqa: E402

ALLOWED_HOSTS = ["testserver", "localhost", "127.0.0.1"]
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
# In-process tests run tasks eagerly; a server process a test starts may queue them on its
# broker as production does (IMEWE_TEST_CELERY_EAGER=0), to test what a broker outage does.
CELERY_TASK_ALWAYS_EAGER = os.environ.get("IMEWE_TEST_CELERY_EAGER", "1") == "1"
CELERY_TASK_EAGER_PROPAGATES = True
# Tests see the receivers' effects when the ingest call returns; those of the background thread
# turn it on (tests/telemetry/test_after_ingest.py), as may a server a test starts.
TELEMETRY_RECEIVERS_IN_BACKGROUND = os.environ.get("TELEMETRY_RECEIVERS_IN_BACKGROUND") == "1"
EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    # Manifest storage fails before collectstatic; tests don't run it.
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
if "sqlite" in DATABASES["default"]["ENGINE"]:
    (BASE_DIR / "var").mkdir(exist_ok=True)  # a fresh clone has none
    DATABASES["default"]["NAME"] = str(BASE_DIR / "var" / "test.sqlite3")
    DATABASES["default"]["TEST"] = {"NAME": str(BASE_DIR / "var" / "test-db.sqlite3")}
else:
    # Each pytest process gets its own database, so a second run on this machine (a helper's, a
    # CI rehearsal's) can never truncate or lock the tables of another run under its feet; a
    # lock held longer than two minutes fails the statement with its name instead of hanging.
    DATABASES["default"]["TEST"] = {"NAME": f"test_imewe_{os.getpid()}"}
    DATABASES["default"].setdefault("OPTIONS", {})["options"] = "-c lock_timeout=120000"
if REDIS_URL:
    # Each pytest process gets its own prefix so parallel runs never share groups or caches; a
    # server process a test starts may join its run's groups (IMEWE_LIVE_TEST_RUN, the pytest
    # process id), so what the test publishes reaches the browsers on that server.
    _run = os.environ.get("IMEWE_LIVE_TEST_RUN") or os.getpid()
    CHANNEL_LAYERS["default"]["CONFIG"]["prefix"] = f"imewe-test-{_run}"  # type: ignore[index]  # noqa: F405,E501
    CACHES["default"]["KEY_PREFIX"] = f"imewe-test-{os.getpid()}"  # noqa: F405
# A server process a test starts (a real daphne for the browser tests) works on that test run's
# database, whose name the test passes down.
if os.environ.get("IMEWE_LIVE_TEST_DB"):
    DATABASES["default"]["NAME"] = os.environ["IMEWE_LIVE_TEST_DB"]
# Serve static files from the finders (no collectstatic in tests; the browser test needs them).
WHITENOISE_AUTOREFRESH = True
WHITENOISE_USE_FINDERS = True
LOGGING["loggers"].update(  # type: ignore[attr-defined]  # noqa: F405
    {"axes": {"level": "ERROR"}, "django.request": {"level": "ERROR"}}
)
# Connections opened in worker threads (channels, the Celery test worker) close after each use,
# so the test database can be dropped at the end of the run.
DATABASES["default"]["CONN_MAX_AGE"] = 0
