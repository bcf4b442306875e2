"""Redis stopped under a real daphne: the core paths keep working (never 500), revocations
hold, and when Redis comes back broadcasts and throttles work again without a restart. Plus the
queueing of background work with the broker down, in process."""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Callable, Iterator
from datetime import timedelta
from http.cookiejar import CookieJar
from pathlib import Path
from typing import Any
from urllib.error import HTTPError
from urllib.parse import urlencode
from urllib.request import HTTPCookieProcessor, HTTPRedirectHandler, Request, build_opener

import pytest
from django.utils import timezone
from websockets.sync.client import connect

from apps.core import background
from apps.core.background import task_enqueue
from apps.jobs.services import job_submit, parts_schedule
from apps.telemetry.models import TelemetryPoint
from apps.users.tasks import purge_unverified_users_task
from apps.users.tokens import tokens_issue
from apps.vendors.services import device_credential_issue
from imewe.celery import app as celery_app
from tests.conftest import wait_for_port
from tests.daphne import running_daphne
from tests.fixtures.shop import Shop
from tests.users.factories import PASSWORD, UserFactory

ROOT = Path(__file__).resolve().parents[2]
USER_RATE = 40  # requests per minute for the daphne under test


class _NoRedirect(HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


class Http:
    """A tiny HTTP client with a cookie jar (a browser for the portal, a client for the API)."""

    def __init__(self, base: str) -> None:
        self.base = base
        self.jar = CookieJar()
        self.opener = build_opener(HTTPCookieProcessor(self.jar), _NoRedirect)

    def call(
        self,
        method: str,
        path: str,
        *,
        body: Any = None,
        form: dict[str, str] | None = None,
        headers: dict[str, str] | None = None,
    ) -> tuple[int, dict[str, str], Any]:
        headers = dict(headers or {})
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        elif form is not None:
            data = urlencode(form).encode()
            headers["Content-Type"] = "application/x-www-form-urlencoded"
        request = Request(self.base + path, data=data, headers=headers, method=method)
        try:
            with self.opener.open(request, timeout=60) as response:
                status, head, raw = response.status, dict(response.headers), response.read()
        except HTTPError as error:
            status, head, raw = error.code, dict(error.headers), error.read()
        content = raw.decode(errors="replace")
        if head.get("Content-Type", "").startswith("application/json"):
            return status, head, json.loads(content)
        return status, head, content

    def cookie(self, name: str) -> str:
        return next(c.value for c in self.jar if c.name == name) or ""


def bearer(access: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {access}"}


def _start_redis(port: int) -> subprocess.Popen[bytes]:
    proc = subprocess.Popen(
        ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", ""],
        stdout=subprocess.DEVNULL,
    )
    wait_for_port(port, proc, within_s=10)
    return proc


@pytest.fixture
def daphne_on_own_redis(own_redis: Any, tmp_path: Path) -> Iterator[dict[str, Any]]:
    """daphne (the compose command) on this run's test database, with its cache, channel layer
    and broker on the private Redis the test may stop (and start again on the same port)."""
    redis_port, _ = own_redis
    with running_daphne(
        tmp_path,
        REDIS_URL=f"redis://127.0.0.1:{redis_port}/0",
        CELERY_BROKER_URL="",  # the broker follows REDIS_URL
        API_THROTTLE_USER_READ=f"{USER_RATE}/minute",
        SESSION_COOKIE_SECURE="0",  # plain http on loopback
        CSRF_COOKIE_SECURE="0",
        IMEWE_TEST_CELERY_EAGER="0",  # work is queued on the private Redis, as deployed
    ) as port:
        yield {
            "base": f"http://127.0.0.1:{port}",
            "redis_port": redis_port,
            "log": tmp_path / f"daphne-{port}.log",
        }


def _until(check: Callable[[], bool], *, attempts: int, pause_s: float = 0.5) -> bool:
    for _ in range(attempts):
        if check():
            return True
        time.sleep(pause_s)
    return False


@pytest.mark.django_db(transaction=True)  # daphne reads the rows from its own process
def test_core_paths_survive_redis_stopping_and_recover_when_it_returns(  # noqa: PLR0915
    shop: Shop,
    own_redis,
    daphne_on_own_redis,
):
    # given: a scheduled job, a node with a device token, a user with a revoked access token
    designer, vendor, mill = shop.designer, shop.vendor, shop.mill
    job = job_submit(
        by=designer,
        title="Frame",
        parts=[
            {
                "name": "arm",
                "material": "PLA",
                "process": "fdm",
                "size_x_mm": 50,
                "size_y_mm": 50,
                "size_z_mm": 50,
            }
        ],
    )
    parts_schedule()
    _, device_token = device_credential_issue(node=mill, by=vendor)
    base = daphne_on_own_redis["base"]
    api = Http(base)

    def obtain(email: str) -> dict[str, str]:
        status, _, body = api.call(
            "POST", "/api/v1/auth/token/", body={"email": email, "password": PASSWORD}
        )
        assert status == 200, body
        return body

    revoked = obtain(designer.email)
    status, _, _ = api.call(
        "POST",
        "/api/v1/auth/logout/",
        body={"refresh": revoked["refresh"]},
        headers=bearer(revoked["access"]),
    )
    assert status == 200

    # when: Redis stops
    redis_port, redis_proc = own_redis
    redis_proc.kill()
    redis_proc.wait()

    # then: JWT calls, the token endpoint and refresh keep working
    tokens = obtain(designer.email)
    status, _, body = api.call("GET", "/api/v1/jobs/", headers=bearer(tokens["access"]))
    assert status == 200, body
    assert [row["id"] for row in body["results"]] == [job.pk]
    status, _, refreshed = api.call(
        "POST", "/api/v1/auth/token/refresh/", body={"refresh": tokens["refresh"]}
    )
    assert status == 200, refreshed
    assert api.call("GET", "/api/v1/auth/me/", headers=bearer(refreshed["access"]))[0] == 200

    # the token revoked while Redis was up stays refused
    status, _, body = api.call("GET", "/api/v1/auth/me/", headers=bearer(revoked["access"]))
    assert status == 401 and body["error"]["code"] == "token_revoked"

    # throttles fail open (logged) rather than fail the request
    throttled_user = UserFactory.create(role="designer", email="busy@f.test")
    busy = bearer(str(tokens_issue(user=throttled_user, otp_verified=True).access_token))
    statuses = {api.call("GET", "/api/v1/auth/me/", headers=busy)[0] for _ in range(USER_RATE + 5)}
    assert statuses == {200}

    # device ingest stores its points
    start = timezone.now().replace(microsecond=0) - timedelta(hours=1)  # inside the ingest window
    point = {"node": mill.pk, "time": start.isoformat(), "temperature_c": 40.0}
    status, _, body = api.call(
        "POST",
        "/api/v1/telemetry/batch/",
        body=[point],
        headers={"Authorization": f"Device {device_token}"},
    )
    assert status in (200, 201, 207), body
    assert TelemetryPoint.objects.filter(node=mill).count() == 1

    # an emergency window starting now: the node goes to maintenance and healing its work is
    # queued after commit (a 500 on the old `on_commit(task.delay)`)
    vendor_api = bearer(str(tokens_issue(user=vendor, otp_verified=True).access_token))
    status, _, body = api.call(
        "POST",
        "/api/v1/maintenance/windows/",
        body={
            "node": mill.pk,
            "kind": "emergency",
            "starts_at": timezone.now().isoformat(),
            "ends_at": (timezone.now() + timedelta(hours=2)).isoformat(),
            "reason": "spindle bearings",
        },
        headers=vendor_api,
    )
    assert status == 201, body

    # portal sign-in, the job page and sign-out
    browser = Http(base)
    assert browser.call("GET", "/account/login/")[0] == 200
    status, head, page = browser.call(
        "POST",
        "/account/login/",
        form={
            "email": designer.email,
            "password": PASSWORD,
            "csrfmiddlewaretoken": browser.cookie("csrftoken"),
        },
    )
    assert status == 302, page
    status, _, page = browser.call("GET", f"/jobs/{job.pk}/")
    assert status == 200 and "Frame" in page
    status, head, _ = browser.call(
        "POST", "/account/logout/", form={"csrfmiddlewaretoken": browser.cookie("csrftoken")}
    )
    assert status == 302
    assert browser.call("GET", f"/jobs/{job.pk}/")[0] == 302  # signed out: to the login page

    # "log out everywhere" ends the other device's access token at once
    phone, laptop = obtain(designer.email), obtain(designer.email)
    status, _, _ = api.call(
        "POST",
        "/api/v1/auth/logout/",
        body={"refresh": laptop["refresh"], "everywhere": True},
        headers=bearer(laptop["access"]),
    )
    assert status == 200
    status, _, body = api.call("GET", "/api/v1/auth/me/", headers=bearer(phone["access"]))
    assert status == 401 and body["error"]["code"] == "token_revoked"

    # when: Redis comes back on the same port
    restarted = _start_redis(redis_port)
    try:
        # then: throttles count again (the cache retries after its breaker pause)
        assert _until(
            lambda: api.call("GET", "/api/v1/auth/me/", headers=busy)[0] == 429, attempts=200
        ), "the user throttle never came back"

        # and live telemetry reaches a websocket again
        watcher = str(tokens_issue(user=vendor, otp_verified=True).access_token)
        ws_url = (
            f"ws://{base.removeprefix('http://')}/ws/telemetry/?nodes={mill.pk}&token={watcher}"
        )
        with connect(ws_url, origin=base, open_timeout=30) as ws:
            assert json.loads(ws.recv(timeout=30))["type"] == "subscribed"
            seconds = iter(range(1, 3000))

            def ingest_and_hear() -> bool:
                second = next(seconds)
                when = (start + timedelta(seconds=second)).isoformat()
                api.call(
                    "POST",
                    "/api/v1/telemetry/batch/",
                    body=[{**point, "time": when}],
                    headers={"Authorization": f"Device {device_token}"},
                )
                try:
                    return json.loads(ws.recv(timeout=1))["type"] == "telemetry"
                except TimeoutError:
                    return False

            assert _until(ingest_and_hear, attempts=30, pause_s=0), "no broadcast after recovery"
    finally:
        restarted.kill()
        restarted.wait()
    log = daphne_on_own_redis["log"].read_text()
    assert " 500 " not in log and "Internal Server Error" not in log, log[-3000:]


@pytest.mark.django_db
def test_task_enqueue_with_the_broker_down_logs_and_returns(own_redis, caplog):
    port, proc = own_redis
    saved = celery_app.conf.broker_url, celery_app.conf.task_always_eager
    celery_app.conf.update(broker_url=f"redis://127.0.0.1:{port}/0", task_always_eager=False)
    _forget_broker_pools()  # an earlier test may have left pools open on the shared broker
    try:
        assert task_enqueue(purge_unverified_users_task) is True
        proc.kill()
        proc.wait()
        assert task_enqueue(purge_unverified_users_task) is False  # raises on the old .delay()
        assert background.breaker.is_open()
        assert task_enqueue(purge_unverified_users_task) is False  # skipped while open
        restarted = _start_redis(port)
        try:
            background.breaker._open_until = 0.0  # the pause is over
            assert task_enqueue(purge_unverified_users_task) is True
        finally:
            restarted.kill()
            restarted.wait()
    finally:
        celery_app.conf.update(broker_url=saved[0], task_always_eager=saved[1])
        _forget_broker_pools()
        background.breaker.succeeded()
    assert "Celery broker unreachable" in caplog.text


def _forget_broker_pools() -> None:
    """Celery caches its broker connection and producer pools on first use; drop them so the
    next send connects to the broker the test configured, not one an earlier test used. (Not
    closed: kombu keeps them in a registry by broker address and would hand the closed pool to
    the next user of that address.)"""
    celery_app._pool = None  # type: ignore[attr-defined]  # private, not in the stubs
    celery_app.amqp._producer_pool = None  # type: ignore[attr-defined]
