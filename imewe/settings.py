"""Imewe settings, read from the environment (12-factor).

Absent DATABASE_URL means an SQLite file; absent REDIS_URL means the in-memory channel layer,
a local-memory cache and Celery on the kombu filesystem transport (no broker server). See the
README's configuration table for every variable.
"""

from __future__ import annotations

import json
import math
import os
from datetime import timedelta
from pathlib import Path
from typing import Any

import dj_database_url
import django_stubs_ext
from csp.constants import NONCE, NONE, SELF
from django.core.exceptions import ImproperlyConfigured

# Django's generic classes (ModelAdmin, forms, fields) take type arguments at run time too, as
# `mypy --strict` wants them written (issue 24, item 6).
django_stubs_ext.monkeypatch()

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(os.environ.get("IMEWE_VAR_DIR", BASE_DIR / "var"))


def env_choice(name: str, default: str, choices: tuple[str, ...]) -> str:
    value = os.environ.get(name) or default
    if value not in choices:
        raise ImproperlyConfigured(f"{name} must be one of {', '.join(choices)}; got {value!r}.")
    return value


def env_bool(name: str, default: bool = False) -> bool:
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    if value.lower() in {"1", "true", "yes", "on"}:
        return True
    if value.lower() in {"0", "false", "no", "off"}:
        return False
    raise ImproperlyConfigured(f"{name} must be a boolean (1/0, true/false), got {value!r}.")


def env_int(name: str, default: int) -> int:
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    try:
        return int(value)
    except ValueError as exc:
        raise ImproperlyConfigured(f"{name} must be an integer, got {value!r}.") from exc


def env_list(name: str, default: str = "") -> list[str]:
    return [item.strip() for item in os.environ.get(name, default).split(",") if item.strip()]


DEBUG = env_bool("DEBUG", False)

# Keys that have been published (docs, compose file, examples) and must never run a server.
KNOWN_DEFAULT_SECRET_KEYS = {
    "",
    "change-me",
    "changeme",
    "secret",
    "dev",
    "imewe-change-me",
}
SECRET_KEY = os.environ.get("SECRET_KEY", "")
if (
    SECRET_KEY in KNOWN_DEFAULT_SECRET_KEYS
    or SECRET_KEY.startswith("django-insecure")
    or len(SECRET_KEY) < 50
    or len(set(SECRET_KEY)) < 5
):
    raise ImproperlyConfigured(
        "SECRET_KEY is missing, too short (< 50 characters) or a published default. "
        "Set SECRET_KEY to a long random value, e.g. "
        "python -c 'import secrets; print(secrets.token_urlsafe(64))'."
    )

ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", "localhost,127.0.0.1,[::1]" if DEBUG else "")
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS")

INSTALLED_APPS = [
    "daphne",  # first: channels.testing and runserver need it
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "channels",
    "rest_framework",
    "rest_framework_simplejwt.token_blacklist",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "django_filters",
    "guardian",
    "django_otp",
    # its table stays for migration users.0007, which moved every device into the users app's
    # EncryptedTOTPDevice (the key encrypted at rest); nothing creates TOTPDevice rows
    "django_otp.plugins.otp_totp",
    "django_otp.plugins.otp_static",
    "axes",
    "django_celery_beat",
    "django_prometheus",
    "csp",
    "apps.core",
    "apps.users",
    "apps.notify",
    "apps.vendors",
    "apps.telemetry",
    "apps.jobs",
    "apps.materials",
    "apps.energy",
    "apps.twins",
    "apps.maintenance",
    "apps.marketplace",
    "apps.portal",
]

MIDDLEWARE = [
    # First: every later reader of REMOTE_ADDR sees the client's address (apps/core/client_ip.py)
    "apps.core.client_ip.ClientAddressMiddleware",
    # Probes answer on any Host (a container's healthcheck asks 127.0.0.1)
    "apps.core.health.ProbeMiddleware",
    "django_prometheus.middleware.PrometheusBeforeMiddleware",
    "django.middleware.security.SecurityMiddleware",
    # An ETag on every GET answer (a hash of its body) and 304 Not Modified when the client's
    # If-None-Match matches: a phone or shop-floor screen polling a job once a second gets no
    # body while nothing changed. Above the middleware that change the body's headers.
    "django.middleware.http.ConditionalGetMiddleware",
    "csp.middleware.CSPMiddleware",
    "apps.core.errors.PermissionsPolicyMiddleware",
    "apps.core.middleware.ApiErrorFormatMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    # a database fault in a view: 503 with Retry-After, not 500 (DRF views: apps/core/api.py)
    "apps.core.errors.DatabaseUnavailableMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django_otp.middleware.OTPMiddleware",
    "apps.core.middleware.RequestContextMiddleware",
    "apps.users.middleware.RequireTwoFactorMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "axes.middleware.AxesMiddleware",
    "django_prometheus.middleware.PrometheusAfterMiddleware",
]

ROOT_URLCONF = "imewe.urls"
ASGI_APPLICATION = "imewe.asgi.application"
WSGI_APPLICATION = "imewe.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "apps.portal.context_processors.portal_nav",
            ],
        },
    },
]

# --- Database --------------------------------------------------------------------------------
DATABASE_URL = os.environ.get("DATABASE_URL", "")
if DATABASE_URL:
    DATABASES = {
        "default": dj_database_url.parse(
            DATABASE_URL, conn_max_age=env_int("DB_CONN_MAX_AGE", 60), conn_health_checks=True
        )
    }
    if "postgresql" in DATABASES["default"]["ENGINE"] and env_bool("DB_POOL", True):
        # psycopg's pool, on by default: under ASGI each request runs in a thread of its own, so
        # persistent connections (CONN_MAX_AGE) pile up one per thread (20 API clients left 75
        # idle connections and ingest hit "too many clients"). Each process has its own pool:
        # the sum of DB_POOL_MAX over all processes must stay under PostgreSQL's
        # max_connections (README, "Production topology").
        DATABASES["default"]["CONN_MAX_AGE"] = 0
        # Checked on checkout: after a PostgreSQL restart or failover a stale pooled connection
        # would otherwise fail the next request it serves (one per pooled connection).
        DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
        DATABASES["default"].setdefault("OPTIONS", {})["pool"] = {
            "min_size": env_int("DB_POOL_MIN", 2),
            "max_size": env_int("DB_POOL_MAX", 20),
            # Seconds a thread waits for a free connection before the query fails
            "timeout": env_int("DB_POOL_TIMEOUT", 10),
        }
else:
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": os.environ.get("SQLITE_PATH", str(VAR_DIR / "imewe.sqlite3")),
            # WAL lets the worker and the web server read while the other writes.
            "OPTIONS": {
                "timeout": 20,
                "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
                # Transactions take the write lock up front and wait for it (timeout above):
                # a deferred one that reads and then writes fails at once with "database is
                # locked" while another process (worker, ingest) writes.
                "transaction_mode": "IMMEDIATE",
            },
        }
    }
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Redis: channel layer, cache, Celery broker ---------------------------------------------
REDIS_URL = os.environ.get("REDIS_URL", "")
if REDIS_URL:
    # pubsub (default): a group message is one PUBLISH, and each server process hands it to its
    # own sockets' queues. lists (channels-redis's core layer): messages wait in Redis lists, with
    # a capacity and an expiry, but every socket's receive takes a process-wide lock: at 1,020
    # sockets that cost the websocket process ~30% more CPU and tripled the fan-out's p99
    # (bench/ws_fanout, 2026-12-07). Every process of one deployment must use the same kind.
    CHANNELS_LAYER = env_choice("CHANNELS_LAYER", "pubsub", ("pubsub", "lists"))
    CHANNELS_CONFIG: dict[str, Any] = {
        # redis-py 8 times socket reads out after 5 s, exactly channels-redis's blocking wait
        # for the next message, which killed idle websockets (channels_redis#422)
        "hosts": [{"address": REDIS_URL, "socket_timeout": 10}],
        "prefix": os.environ.get("CHANNELS_PREFIX", "imewe"),
    }
    CHANNEL_LAYERS = {
        "default": {
            "BACKEND": {
                "pubsub": "channels_redis.pubsub.RedisPubSubChannelLayer",
                "lists": "channels_redis.core.RedisChannelLayer",
            }[CHANNELS_LAYER],
            "CONFIG": CHANNELS_CONFIG,
        }
    }
    if CHANNELS_LAYER == "lists":
        CHANNELS_CONFIG.update(
            # channels-redis drops messages beyond a channel's capacity (default 100). All
            # consumers of one daphne share one Redis queue, so this bounds the backlog of the
            # whole process, not of each browser.
            capacity=env_int("CHANNELS_CAPACITY", 1000),
            expiry=30,
        )
    CACHES = {
        "default": {
            "BACKEND": "apps.core.cache.ResilientRedisCache",  # misses, never fails, without Redis
            "LOCATION": REDIS_URL,
            "KEY_PREFIX": os.environ.get("CACHE_PREFIX", "imewe"),
        }
    }
else:
    CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}

# Open websockets re-check every this many seconds that their sign-in and right still hold.
WS_RECHECK_SECONDS = env_int("WS_RECHECK_SECONDS", 5)
# daphne ends itself this long after SIGTERM if connections are not done (imewe/shutdown.py).
SHUTDOWN_TIMEOUT_SECONDS = env_int("SHUTDOWN_TIMEOUT_SECONDS", 7)

# Celery: an explicit broker wins; else Redis; else the filesystem transport under var/ so the
# embedded default runs background work across processes without any broker server.
# The platform's public address, for links in e-mails sent by background work
SITE_URL = os.environ.get("SITE_URL", "")

# Notification channels (apps/notify): delivery retries back off exponentially from
# NOTIFY_RETRY_BASE_S up to NOTIFY_RETRY_MAX_S and give up after NOTIFY_MAX_ATTEMPTS; repeats of
# one subject (a node, its tickets) on one channel within NOTIFY_GROUP_WINDOW_S wait for one
# digest message (the first critical one never waits). 0 turns grouping off.
NOTIFY_RETRY_BASE_S = float(os.environ.get("NOTIFY_RETRY_BASE_S", "30"))
NOTIFY_RETRY_MAX_S = float(os.environ.get("NOTIFY_RETRY_MAX_S", "3600"))
NOTIFY_MAX_ATTEMPTS = env_int("NOTIFY_MAX_ATTEMPTS", 12)
NOTIFY_GROUP_WINDOW_S = env_int("NOTIFY_GROUP_WINDOW_S", 600)
# A critical ticket not acknowledged within this many minutes goes to the next on-call person
# of its site's rota (the rota's own time wins), then to the admins.
NOTIFY_ESCALATE_AFTER_MIN = env_int("NOTIFY_ESCALATE_AFTER_MIN", 15)
NOTIFY_HTTP_TIMEOUT_S = float(os.environ.get("NOTIFY_HTTP_TIMEOUT_S", "10"))
# Webhook, chat and push URLs are user input: private, loopback and link-local addresses are
# refused unless one of these networks (CIDR) contains them, e.g. "10.20.0.0/16" for an
# in-house receiver.
NOTIFY_ALLOWED_NETWORKS = env_list("NOTIFY_ALLOWED_NETWORKS")
# Web Push (VAPID): the key pair from the environment (the private key as PEM or base64url DER,
# the public one as base64url of the raw point); without them, in development (DEBUG or
# NOTIFY_VAPID_GENERATE=1) a pair is generated once into var/vapid_private.pem.
VAPID_PRIVATE_KEY = os.environ.get("VAPID_PRIVATE_KEY", "")
VAPID_PUBLIC_KEY = os.environ.get("VAPID_PUBLIC_KEY", "")
VAPID_CLAIMS_SUB = os.environ.get("VAPID_CLAIMS_SUB", "mailto:ops@imewe.local")
NOTIFY_VAPID_GENERATE = env_bool("NOTIFY_VAPID_GENERATE", DEBUG)

# Jobs: estimates and uploads
JOBS_CURRENCY = os.environ.get("JOBS_CURRENCY", "USD")
JOBS_ENERGY_PRICE_PER_KWH = float(os.environ.get("JOBS_ENERGY_PRICE_PER_KWH", "0.15"))
JOBS_PLATFORM_FEE_RATE = float(os.environ.get("JOBS_PLATFORM_FEE_RATE", "0.10"))
JOBS_CAD_MAX_BYTES = int(os.environ.get("JOBS_CAD_MAX_BYTES", str(50 * 1024 * 1024)))
# Scheduler weights as JSON, e.g. {"energy": 0.4, "reliability": 0.3}; missing keys keep the
# defaults (apps/jobs/scheduler.py: capability 0.24, capacity 0.16, energy 0.16, material 0.12,
# proximity 0.12, reliability 0.2)
JOBS_SCHEDULER_WEIGHTS = json.loads(os.environ.get("JOBS_SCHEDULER_WEIGHTS", "{}"))
# A node whose risk (1 - health score / 100, from maintenance) is at least this gets no work;
# 0.8: a health score of 20 or less
JOBS_SCHEDULER_MAX_RISK = float(os.environ.get("JOBS_SCHEDULER_MAX_RISK", "0.8"))
# A part skips a node more likely than this to fail during the part's run
JOBS_SCHEDULER_MAX_FAILURE = float(os.environ.get("JOBS_SCHEDULER_MAX_FAILURE", "0.5"))
# A node that has reported telemetry before and sends nothing for this long loses all its
# unfinished parts and gets no new work until it reports again; by default the maintenance
# agent's offline limit, so "silent" and "offline" mean the same node
JOBS_NODE_SILENT_MINUTES = int(
    os.environ.get("JOBS_NODE_SILENT_MINUTES")
    or math.ceil(float(os.environ.get("MAINTENANCE_OFFLINE_MINUTES") or "5"))
)
# A part the plan holds back (energy-aware timing, a site's power cap) is handed to its machine
# from this many minutes before its planned start; other parts as soon as they are first in
# their node's queue (the plan's order).
JOBS_START_TOLERANCE_MINUTES = float(os.environ.get("JOBS_START_TOLERANCE_MINUTES", "5"))
# The demo's time compression (`make run` sets 360): how many machine seconds the simulated
# machines live through in a second. An estimated hour runs in 3600/DEMO_TIME_SCALE seconds, so
# energy measured from their telemetry is the estimate divided by it; pages say so. 1: real time.
try:
    DEMO_TIME_SCALE = float(os.environ.get("DEMO_TIME_SCALE") or "1")
except ValueError:
    DEMO_TIME_SCALE = math.nan
if not 1 <= DEMO_TIME_SCALE <= 100_000:  # NaN fails too
    raise ImproperlyConfigured("DEMO_TIME_SCALE must be a number 1-100000 (1: real time).")
# A node whose vendor confirms each part: hours the vendor has before the part goes elsewhere.
# Twins: how long a component lock lives without a heartbeat.
TWINS_LOCK_TTL_SECONDS = int(os.environ.get("TWINS_LOCK_TTL_SECONDS", "300"))
TWINS_MODEL_MAX_BYTES = int(os.environ.get("TWINS_MODEL_MAX_BYTES", str(20 * 1024 * 1024)))
# Simulations a person may have queued or running at once (more wait for one to finish).
TWINS_SIMULATIONS_PER_USER = int(os.environ.get("TWINS_SIMULATIONS_PER_USER", "3"))
# Completed parts needed before the learned duration model is trained (nightly, Celery beat).
JOBS_DURATION_MIN_HISTORY = int(os.environ.get("JOBS_DURATION_MIN_HISTORY", "50"))
# A part taking at least this long on one node is split into lots for several nodes.
JOBS_SPLIT_MIN_HOURS = float(os.environ.get("JOBS_SPLIT_MIN_HOURS", "2"))
# The maintenance agent (the same issue on the same node updates its unresolved ticket, however
# old): a node silent this many minutes is offline; an anomaly must last this long to raise a
# ticket; a failure probability above this raises one.
# Ingest keeps each node's threshold rules this long per process; a rule saved elsewhere applies
# within it (apps/maintenance/services/rule_cache.py). 0: read them on every request.
MAINTENANCE_RULES_CACHE_SECONDS = float(os.environ.get("MAINTENANCE_RULES_CACHE_SECONDS", "5"))
MAINTENANCE_OFFLINE_MINUTES = float(os.environ.get("MAINTENANCE_OFFLINE_MINUTES", "5"))
MAINTENANCE_ANOMALY_SUSTAIN_MINUTES = float(
    os.environ.get("MAINTENANCE_ANOMALY_SUSTAIN_MINUTES", "10")
)
MAINTENANCE_FAILURE_PROBABILITY = float(os.environ.get("MAINTENANCE_FAILURE_PROBABILITY", "0.7"))
# ... and in samples of the node's reporting cadence (apps/maintenance/cadence.py): offline after
# this many missed samples, an anomaly sustained over this many samples (minutes above: floors).
MAINTENANCE_OFFLINE_SAMPLES = float(os.environ.get("MAINTENANCE_OFFLINE_SAMPLES", "3"))
MAINTENANCE_ANOMALY_SUSTAIN_SAMPLES = int(
    os.environ.get("MAINTENANCE_ANOMALY_SUSTAIN_SAMPLES", "3")
)
# The anomaly detector reads windows of this many samples of the node's cadence (never less than
# 10 minutes): enough readings for a spread and a slope (a spread from 12 readings is within ~20%),
# an hour of a 5-minute sensor. Training and scoring use the same windows; retrain after a change.
MAINTENANCE_ANOMALY_WINDOW_SAMPLES = int(os.environ.get("MAINTENANCE_ANOMALY_WINDOW_SAMPLES", "12"))
# An anomaly detector is activated only if it raised at most this many alarms per node-week on
# held-out healthy operation, with its threshold chosen for that rate.
MAINTENANCE_ANOMALY_ALARMS_PER_NODE_WEEK = float(
    os.environ.get("MAINTENANCE_ANOMALY_ALARMS_PER_NODE_WEEK", "1")
)
# Materials: days of usage history behind reorder points and stock-out forecasts.
MATERIALS_HISTORY_DAYS = int(os.environ.get("MATERIALS_HISTORY_DAYS", "30"))
# a spool at or below this many grams is running low: its vendor hears once when a print takes
# it there
MATERIALS_SPOOL_LOW_G = float(os.environ.get("MATERIALS_SPOOL_LOW_G", "100"))
# Energy: the grid price where no hourly rate is stored, and what own generation costs.
ENERGY_DEFAULT_GRID_PRICE_PER_KWH = float(
    os.environ.get("ENERGY_DEFAULT_GRID_PRICE_PER_KWH", str(JOBS_ENERGY_PRICE_PER_KWH))
)
ENERGY_DEFAULT_RENEWABLE_PRICE_PER_KWH = float(
    os.environ.get("ENERGY_DEFAULT_RENEWABLE_PRICE_PER_KWH", "0")
)
# Marketplace: the currency listings start in, the ones sellers may choose, the platform's
# commission per listing kind (the rest goes to the seller) and the payment provider class.
MARKETPLACE_DEFAULT_CURRENCY = os.environ.get("MARKETPLACE_DEFAULT_CURRENCY", JOBS_CURRENCY)
MARKETPLACE_CURRENCIES = tuple(
    c.strip().upper()
    for c in os.environ.get("MARKETPLACE_CURRENCIES", "USD,EUR,GBP,NGN,KES").split(",")
    if c.strip()
)
MARKETPLACE_COMMISSION = {
    "template": os.environ.get("MARKETPLACE_COMMISSION_TEMPLATE", "0.30"),
    "playbook": os.environ.get("MARKETPLACE_COMMISSION_PLAYBOOK", "0.25"),
    "capacity": os.environ.get("MARKETPLACE_COMMISSION_CAPACITY", "0.20"),
}
MARKETPLACE_PAYMENT_PROVIDER = os.environ.get(
    "MARKETPLACE_PAYMENT_PROVIDER", "apps.marketplace.payments.FakeProvider"
)
JOBS_CONFIRM_HOURS = float(os.environ.get("JOBS_CONFIRM_HOURS", "24"))

CELERY_QUEUE_DIR = VAR_DIR / "celery"
CELERY_BROKER_URL = os.environ.get("CELERY_BROKER_URL") or REDIS_URL or "filesystem://"
CELERY_RESULT_BACKEND = os.environ.get("CELERY_RESULT_BACKEND") or (
    REDIS_URL if REDIS_URL else f"file://{CELERY_QUEUE_DIR / 'results'}"
)
if CELERY_BROKER_URL == "filesystem://":
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(CELERY_QUEUE_DIR / "queue"),
        "data_folder_out": str(CELERY_QUEUE_DIR / "queue"),
        "processed_folder": str(CELERY_QUEUE_DIR / "processed"),
        "control_folder": str(CELERY_QUEUE_DIR / "control"),
        "store_processed": False,
    }
CELERY_TASK_ALWAYS_EAGER = env_bool("CELERY_TASK_ALWAYS_EAGER", False)
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TIMEZONE = "UTC"
CELERY_BEAT_SCHEDULER = "django_celery_beat.schedulers:DatabaseScheduler"
CELERY_TASK_ACKS_LATE = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# Task events (sent, started, succeeded, failed, retried) for the monitoring profile's
# celery-exporter: task outcomes and queue depth on Grafana (docker-compose.yml, monitoring).
CELERY_WORKER_SEND_TASK_EVENTS = env_bool("CELERY_TASK_EVENTS", True)
CELERY_TASK_SEND_SENT_EVENT = env_bool("CELERY_TASK_EVENTS", True)

# --- Auth ------------------------------------------------------------------------------------
AUTH_USER_MODEL = "users.User"
AUTHENTICATION_BACKENDS = [
    # axes first: it refuses locked-out credentials before any password check.
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
    "guardian.backends.ObjectPermissionBackend",
]
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {
        "NAME": "django.contrib.auth.password_validation.MinimumLengthValidator",
        "OPTIONS": {"min_length": 10},
    },
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "users:login"
LOGIN_REDIRECT_URL = "portal:home"
LOGOUT_REDIRECT_URL = "users:login"
ANONYMOUS_USER_NAME = None  # guardian: no anonymous user row
GUARDIAN_RAISE_403 = False
OTP_TOTP_ISSUER = os.environ.get("OTP_TOTP_ISSUER", "Imewe")
# Secrets at rest (TOTP keys, webhook secrets: apps/core/encryption.py): Fernet keys, the first
# encrypts, all decrypt. Unset: one key derived from SECRET_KEY (the embedded default).
FIELD_ENCRYPTION_KEYS = env_list("FIELD_ENCRYPTION_KEYS")
EMAIL_VERIFICATION_MAX_AGE_DAYS = env_int("EMAIL_VERIFICATION_MAX_AGE_DAYS", 3)

# Lockout of repeated failed logins, by account and client address together, growing with each
# further failure, plus a looser limit per address (the rule: apps/users/lockout.py).
AXES_HANDLER = "apps.users.lockout.LoginLockoutHandler"
AXES_FAILURE_LIMIT = env_int("LOGIN_FAILURE_LIMIT", 5)
AXES_COOLOFF_TIME = timedelta(minutes=env_int("LOGIN_LOCKOUT_MINUTES", 15))
LOGIN_LOCKOUT_MAX_MINUTES = env_int("LOGIN_LOCKOUT_MAX_MINUTES", 24 * 60)
LOGIN_ADDRESS_FAILURE_LIMIT = env_int("LOGIN_ADDRESS_FAILURE_LIMIT", 30)
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_USERNAME_FORM_FIELD = "email"
AXES_USERNAME_CALLABLE = "apps.users.lockout.username_from_request"
AXES_LOCKOUT_CALLABLE = "apps.users.lockout.lockout_response"
AXES_RESET_ON_SUCCESS = True
AXES_ENABLE_ACCESS_FAILURE_LOG = False
AXES_VERBOSE = False
# REMOTE_ADDR, as ClientAddressMiddleware resolved it from PROXY_COUNT trusted proxies.
AXES_CLIENT_IP_CALLABLE = "apps.core.client_ip.request_client_address"

SIMPLE_JWT = {
    "ACCESS_TOKEN_LIFETIME": timedelta(minutes=env_int("JWT_ACCESS_MINUTES", 5)),
    "REFRESH_TOKEN_LIFETIME": timedelta(days=env_int("JWT_REFRESH_DAYS", 7)),
    "ROTATE_REFRESH_TOKENS": True,
    "BLACKLIST_AFTER_ROTATION": True,
    "UPDATE_LAST_LOGIN": True,
    "SIGNING_KEY": os.environ.get("JWT_SIGNING_KEY", SECRET_KEY),
    "AUTH_HEADER_TYPES": ("Bearer",),
    "USER_ID_FIELD": "id",
    "USER_ID_CLAIM": "user_id",
    # Tokens carry a hash of the password: changing it ends every session.
    "CHECK_REVOKE_TOKEN": True,
    "TOKEN_REFRESH_SERIALIZER": "apps.users.authentication.CheckedTokenRefreshSerializer",
}

# --- API -------------------------------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "apps.users.authentication.RevocableJWTAuthentication",
        "apps.users.authentication.VerifiedSessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    # Per signed-in user, one budget for reads and a stricter one for writes (apps/core/
    # throttles.py): a client polling a job, its nodes and the latest telemetry once a second
    # reads ~180 times a minute. Signing in and token refresh have their own, per address.
    "DEFAULT_THROTTLE_CLASSES": [
        "apps.core.throttles.UserReadWriteThrottle",
        "rest_framework.throttling.AnonRateThrottle",
    ],
    "DEFAULT_THROTTLE_RATES": {
        "user_read": os.environ.get("API_THROTTLE_USER_READ", "600/minute"),
        # (API_THROTTLE_USER: the name of the single user rate before reads had their own)
        "user_write": os.environ.get(
            "API_THROTTLE_USER_WRITE", os.environ.get("API_THROTTLE_USER", "100/minute")
        ),
        "auth": os.environ.get("API_THROTTLE_AUTH", "20/minute"),
        "anon": os.environ.get("API_THROTTLE_ANON", "30/minute"),
        "device": os.environ.get("API_THROTTLE_DEVICE", "1200/minute"),
    },
    "DEFAULT_PAGINATION_CLASS": "apps.core.api.StandardPagination",
    "PAGE_SIZE": 50,
    "DEFAULT_FILTER_BACKENDS": [
        "django_filters.rest_framework.DjangoFilterBackend",
        "rest_framework.filters.OrderingFilter",
    ],
    "DEFAULT_SCHEMA_CLASS": "apps.core.schema.AutoSchema",
    "EXCEPTION_HANDLER": "apps.core.api.exception_handler",
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"]
    + (["rest_framework.renderers.BrowsableAPIRenderer"] if DEBUG else []),
    "TEST_REQUEST_DEFAULT_FORMAT": "json",
    # 0: REMOTE_ADDR, which ClientAddressMiddleware already took from the trusted proxies.
    "NUM_PROXIES": 0,
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Imewe API",
    "DESCRIPTION": "Distributed digital fabrication: jobs, fleet, twins, telemetry, maintenance.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SERVE_PERMISSIONS": ["rest_framework.permissions.IsAuthenticated"],
    "SCHEMA_PATH_PREFIX": r"/api/v1",
    "COMPONENT_SPLIT_REQUEST": True,
    # Swagger UI assets from the drf-spectacular-sidecar package, not a CDN.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "ENUM_NAME_OVERRIDES": {
        "RoleEnum": "apps.users.roles.Role",
        "SelfServiceRoleEnum": [("designer", "Designer"), ("vendor", "Vendor")],
        "OrganizationKindEnum": "apps.users.models.Organization.Kind",
        "NodeKindEnum": "apps.vendors.models.FabricationNode.Kind",
        "NodeStatusEnum": "apps.vendors.models.FabricationNode.Status",
        "NodeApprovalEnum": "apps.vendors.models.FabricationNode.Approval",
        "NodeCommandKindEnum": "apps.vendors.models.NodeCommand.Kind",
        "NodeCommandStatusEnum": "apps.vendors.models.NodeCommand.Status",
        "JobStatusEnum": "apps.jobs.models.Status",
        "CadFormatEnum": "apps.jobs.models.CadFile.Format",
        "SimulationKindEnum": "apps.twins.models.Simulation.Kind",
        "SimulationStatusEnum": "apps.twins.models.Simulation.Status",
        "TicketStatusEnum": "apps.maintenance.models.Ticket.Status",
        "WindowKindEnum": "apps.maintenance.models.MaintenanceWindow.Kind",
        "WindowStatusEnum": "apps.maintenance.models.MaintenanceWindow.Status",
        "RuleModeEnum": "apps.maintenance.models.ThresholdRule.Mode",
        "LockModeEnum": "apps.twins.models.TwinLock.Mode",
        "JobTimingEnum": "apps.jobs.models.Job.Timing",
        "MaterialCategoryEnum": "apps.materials.models.Material.Category",
        "MaterialUnitEnum": "apps.materials.models.Material.Unit",
        "PurchaseOrderStatusEnum": "apps.materials.models.PurchaseOrder.Status",
        "PurchaseOrderOriginEnum": "apps.materials.models.PurchaseOrder.Origin",
        "StockMovementKindEnum": "apps.materials.models.StockMovement.Kind",
        "MaterialUsageSourceEnum": "apps.materials.models.MaterialUsage.Source",
        "MaterialUsageOutcomeEnum": "apps.materials.models.MaterialUsage.Outcome",
        "EnergySourceKindEnum": "apps.energy.models.SourceKind",
        "PurchaseStatusEnum": "apps.marketplace.models.Purchase.Status",
        "ListingKindEnum": "apps.marketplace.models.Listing.Kind",
        "EnergySourceStatusEnum": "apps.energy.models.EnergySource.Status",
        "SeverityEnum": "apps.notify.models.Severity",
        "NotifyChannelKindEnum": "apps.notify.models.Channel.Kind",
        "NotifyDeliveryStatusEnum": "apps.notify.models.Delivery.Status",
        "NotifyEventKindEnum": "apps.notify.models.EventKind",
    },
}

# --- Internationalisation, static files ------------------------------------------------------
LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "/static/"
STATIC_ROOT = Path(os.environ.get("STATIC_ROOT", BASE_DIR / "staticfiles"))
NODE_MODULES = BASE_DIR / "node_modules"
# Only the distributables of the npm packages we use, under static/vendor/<name>/.
STATICFILES_DIRS = [
    BASE_DIR / "static",
    ("vendor/pico", NODE_MODULES / "@picocss" / "pico" / "css"),
    ("vendor/htmx", NODE_MODULES / "htmx.org" / "dist"),
    ("vendor/chartjs", NODE_MODULES / "chart.js" / "dist"),
    ("vendor/three", NODE_MODULES / "three" / "build"),
    # three's add-ons import each other by relative paths: keep their folder layout
    ("vendor/three/addons/loaders", NODE_MODULES / "three" / "examples" / "jsm" / "loaders"),
    ("vendor/three/addons/controls", NODE_MODULES / "three" / "examples" / "jsm" / "controls"),
    ("vendor/three/addons/utils", NODE_MODULES / "three" / "examples" / "jsm" / "utils"),
]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"},
}
MEDIA_ROOT = Path(os.environ.get("MEDIA_ROOT", VAR_DIR / "media"))
MEDIA_URL = "/media/"

# --- E-mail ----------------------------------------------------------------------------------
EMAIL_BACKEND = os.environ.get(
    "EMAIL_BACKEND",
    "django.core.mail.backends.console.EmailBackend"
    if DEBUG
    else "django.core.mail.backends.smtp.EmailBackend",
)
EMAIL_FILE_PATH = os.environ.get("EMAIL_FILE_PATH", str(VAR_DIR / "mail"))
EMAIL_HOST = os.environ.get("EMAIL_HOST", "localhost")
EMAIL_PORT = env_int("EMAIL_PORT", 25)
EMAIL_HOST_USER = os.environ.get("EMAIL_HOST_USER", "")
EMAIL_HOST_PASSWORD = os.environ.get("EMAIL_HOST_PASSWORD", "")
EMAIL_USE_TLS = env_bool("EMAIL_USE_TLS", False)
EMAIL_USE_SSL = env_bool("EMAIL_USE_SSL", False)
# Seconds; without it a mail server that never answers holds a worker forever.
EMAIL_TIMEOUT = env_int("EMAIL_TIMEOUT", 10)
DEFAULT_FROM_EMAIL = os.environ.get("DEFAULT_FROM_EMAIL", "Imewe <no-reply@imewe.local>")
SERVER_EMAIL = DEFAULT_FROM_EMAIL

# --- Security --------------------------------------------------------------------------------
# How many reverse proxies stand in front of the ASGI server (docker-compose: nginx, so 1). The
# client's address is the PROXY_COUNT-th entry from the right of X-Forwarded-For; 0 trusts no
# header and uses the socket's address (apps/core/client_ip.py).
PROXY_COUNT = env_int("PROXY_COUNT", 0)
SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", not DEBUG)
# Probes and the metrics scraper talk plain HTTP inside the cluster.
SECURE_REDIRECT_EXEMPT = [r"^healthz$", r"^readyz$", r"^metrics$"]
if env_bool("TRUST_X_FORWARDED_PROTO", False):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SESSION_COOKIE_SECURE = env_bool("SESSION_COOKIE_SECURE", not DEBUG)
CSRF_COOKIE_SECURE = env_bool("CSRF_COOKIE_SECURE", not DEBUG)
SESSION_COOKIE_HTTPONLY = True
SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 0 if DEBUG else 31536000)
SECURE_HSTS_INCLUDE_SUBDOMAINS = not DEBUG
SECURE_HSTS_PRELOAD = env_bool("SECURE_HSTS_PRELOAD", not DEBUG)
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"

# --- Request bodies --------------------------------------------------------------------------
# Every body is bounded before Django reads it (apps/core/body_limits.py in front of the ASGI app,
# apps/core/daphne_guard.py inside daphne): a larger one gets 413 at once, as JSON under /api/.
# The reverse proxy's per-route client_max_body_size should match these.
REQUEST_BODY_MAX_BYTES = env_int("REQUEST_BODY_MAX_BYTES", 10 * 1024 * 1024)  # any route
# Room for the form fields and multipart framing around an upload's file.
REQUEST_BODY_MULTIPART_OVERHEAD = env_int("REQUEST_BODY_MULTIPART_OVERHEAD", 1024 * 1024)
# The raw body of telemetry ingest (possibly gzip). The API refuses more than 5,120,000 bytes
# after inflation (10,000 points x 512 bytes, apps/telemetry/api.py), so a larger raw body could
# never be taken: refuse it before it is read.
TELEMETRY_BODY_MAX_BYTES = env_int("TELEMETRY_BODY_MAX_BYTES", 6 * 1024 * 1024)
# Live telemetry: ingest sends each node's newest point to the websocket fan-out at most once per
# this many milliseconds (apps/telemetry/live.py), never once per request.
TELEMETRY_LIVE_WINDOW_MS = env_int("TELEMETRY_LIVE_WINDOW_MS", 50)
# The receivers of stored telemetry (threshold rules, loaded material, battery charge) run in a
# thread of the ingest process beside the request, newest point per node (apps/telemetry/
# after_ingest.py); off, in the request after commit. Off by default on SQLite (one writer).
TELEMETRY_RECEIVERS_IN_BACKGROUND = env_bool(
    "TELEMETRY_RECEIVERS_IN_BACKGROUND", "postgresql" in DATABASES["default"]["ENGINE"]
)
# Telemetry's COPY waits for PostgreSQL to flush its WAL to disk before the gateway is answered
# (on: a stored point survives a PostgreSQL crash). Off, the COPY's own transaction commits
# asynchronously: on a disk whose flush takes milliseconds a 100-point request answers several
# milliseconds sooner, and a PostgreSQL crash (not a platform crash) may lose the last ~0.6 s of
# acknowledged points (3 x wal_writer_delay), which the gateway will not resend. Other writes
# keep synchronous commit either way. PostgreSQL only.
TELEMETRY_SYNCHRONOUS_COMMIT = env_bool("TELEMETRY_SYNCHRONOUS_COMMIT", True)
# The receivers of stored telemetry judge each node's newest point at most once per this many
# milliseconds (apps/telemetry/after_ingest.py; rules judge durations by the points' own times,
# and their minimum durations are seconds).
TELEMETRY_RECEIVERS_WINDOW_MS = env_int("TELEMETRY_RECEIVERS_WINDOW_MS", 250)
# The ingest fast path (apps/telemetry/fast_path.py) keeps a device token's check for this many
# seconds in the process: a revoked token or a node taken out of service stops ingest within it.
DEVICE_AUTH_CACHE_SECONDS = env_int("DEVICE_AUTH_CACHE_SECONDS", 5)
MARKETPLACE_IMAGE_MAX_BYTES = env_int("MARKETPLACE_IMAGE_MAX_BYTES", 5 * 1024 * 1024)
# (path regex, largest body). A limit above REQUEST_BODY_MAX_BYTES applies only to requests that
# carry credentials (Authorization header or session cookie); anonymous ones get the default.
# /jobs/new/ takes up to 20 parts' CAD files in one form: their total is bounded by one file's cap.
REQUEST_BODY_ROUTE_LIMITS: list[tuple[str, int]] = [
    (r"^/api/v1/telemetry/(batch/)?$", TELEMETRY_BODY_MAX_BYTES),
    (r"^/api/v1/jobs/cad/$", JOBS_CAD_MAX_BYTES + REQUEST_BODY_MULTIPART_OVERHEAD),
    (r"^/jobs/new/$", JOBS_CAD_MAX_BYTES + REQUEST_BODY_MULTIPART_OVERHEAD),
    (r"^(/api/v1)?/twins/\d+/model/$", TWINS_MODEL_MAX_BYTES + REQUEST_BODY_MULTIPART_OVERHEAD),
    (
        r"^(/api/v1)?/market/listings/\d+/images/$",
        MARKETPLACE_IMAGE_MAX_BYTES + REQUEST_BODY_MULTIPART_OVERHEAD,
    ),
]

# --- Browser security headers ----------------------------------------------------------------
CSRF_FAILURE_VIEW = "apps.core.errors.csrf_failure"
# Content-Security-Policy (django-csp): scripts, styles and everything else from this origin
# only; no inline scripts or event handlers, except blocks carrying the response's nonce (the
# twins' import maps). The API docs page widens style-src for its own inline styles (urls.py).
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": [SELF],
        "script-src": [SELF, NONCE],
        "style-src": [SELF],
        "img-src": [SELF, "data:", "blob:"],
        "font-src": [SELF],
        "connect-src": [SELF],  # includes this origin's ws:/wss: websockets
        "worker-src": [SELF, "blob:"],
        "object-src": [NONE],
        "base-uri": [SELF],
        "form-action": [SELF],
        "frame-ancestors": [NONE],
    }
}
# Browser features no page of Imewe uses are switched off for every page. Only features
# Chromium knows: an unknown one ('bluetooth', the retired 'interest-cohort') logs a console
# error on every page load.
PERMISSIONS_POLICY = (
    "camera=(), microphone=(), geolocation=(), payment=(), usb=(), serial=(), "
    "magnetometer=(), gyroscope=(), accelerometer=(), midi=(), display-capture=(), hid=()"
)
# Django's own bounds behind those: form fields held in memory (files excluded), and the size
# above which an uploaded file (and the spooled request body) goes to a temporary file on disk.
DATA_UPLOAD_MAX_MEMORY_SIZE = env_int("DATA_UPLOAD_MAX_MEMORY_SIZE", 10 * 1024 * 1024)
# how long a job's detail answer, built once per version of the job, is kept for its pollers
# (apps/jobs/api/jobs.py; a new version is a new entry, so this bounds memory, not staleness)
JOB_DETAIL_CACHE_S = env_int("JOB_DETAIL_CACHE_S", 300)
# the largest gateway software wheel an admin may register (apps/vendors/edge_releases.py);
# nginx takes request bodies of at most 10 MB outside the upload routes
EDGE_RELEASE_MAX_BYTES = env_int("EDGE_RELEASE_MAX_BYTES", 8 * 1024 * 1024)
FILE_UPLOAD_MAX_MEMORY_SIZE = env_int("FILE_UPLOAD_MAX_MEMORY_SIZE", 2621440)  # 2.5 MiB

# --- Logging ---------------------------------------------------------------------------------
LOG_FORMAT = os.environ.get("LOG_FORMAT", "text" if DEBUG else "json")
LOG_LEVEL = os.environ.get("LOG_LEVEL", "INFO")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "json": {
            "()": "pythonjsonlogger.json.JsonFormatter",
            "fmt": "%(asctime)s %(levelname)s %(name)s %(message)s",
            "rename_fields": {"asctime": "time", "levelname": "level", "name": "logger"},
            # which kind of process wrote the line in the production topology (web, ingest, ws)
            "static_fields": (
                {"role": os.environ["IMEWE_PROCESS_ROLE"]}
                if os.environ.get("IMEWE_PROCESS_ROLE")
                else {}
            ),
        },
        "text": {"format": "%(asctime)s %(levelname)-7s %(name)s: %(message)s"},
    },
    "filters": {"client_errors_one_line": {"()": "apps.core.logs.ClientErrorsOneLine"}},
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "formatter": LOG_FORMAT,
            "filters": ["client_errors_one_line"],
        }
    },
    "root": {"handlers": ["console"], "level": LOG_LEVEL},
    "loggers": {
        # Django's default config gives its loggers a console handler of their own (under DEBUG)
        # on top of propagating to ours: every line printed twice. Ours alone prints them.
        "django": {"handlers": [], "level": "INFO"},
        "django.db.backends": {"level": "WARNING"},
        "axes": {"level": "WARNING"},
    },
}

PROMETHEUS_EXPORT_MIGRATIONS = False
# Callers that may read /metrics and the error details of /readyz (loopback and private ranges
# by default: the scraper and the orchestrator's probes run inside the deployment's network).
INTERNAL_NETWORKS = env_list(
    "INTERNAL_NETWORKS", "127.0.0.0/8,::1/128,10.0.0.0/8,172.16.0.0/12,192.168.0.0/16"
)
