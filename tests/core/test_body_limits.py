"""Oversized request bodies get 413 (JSON under /api/) before anything buffers them, Django's own
body refusals are 413/400 and never 500, and a real daphne stays small and responsive under a
200 MB upload."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from asgiref.testing import ApplicationCommunicator
from django.db import connection
from django.test import override_settings

from apps.core.body_limits import BodyLimitMiddleware, body_limit_for
from apps.users.roles import Role
from bench.request_bodies import (
    MIB,
    MULTIPART,
    RssSampler,
    get_status,
    idle_rss,
    json_body,
    multipart_body,
    send_body,
    start_daphne,
    zeros,
)
from tests.conftest import jwt_client, portal_client

DEFAULT = 10 * MIB
CAD_ROUTE = 50 * MIB + MIB  # JOBS_CAD_MAX_BYTES + REQUEST_BODY_MULTIPART_OVERHEAD


# --- the route table -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "signed_in", "limit"),
    [
        ("/", True, DEFAULT),
        ("/api/v1/jobs/", True, DEFAULT),
        ("/api/v1/jobs/cad/", True, CAD_ROUTE),
        ("/api/v1/jobs/cad/", False, DEFAULT),  # anonymous: never the big limits
        ("/jobs/new/", True, CAD_ROUTE),
        ("/api/v1/twins/7/model/", True, 21 * MIB),
        ("/twins/7/model/", True, 21 * MIB),
        ("/api/v1/market/listings/3/images/", True, 6 * MIB),
        ("/market/listings/3/images/", True, 6 * MIB),
        ("/api/v1/telemetry/batch/", True, 6 * MIB),
        ("/api/v1/telemetry/batch/", False, 6 * MIB),  # a tighter limit binds everyone
        ("/api/v1/jobs/cad/extra/", True, DEFAULT),
    ],
)
def test_body_limit_per_route(path, signed_in, limit):
    assert body_limit_for(path, has_credentials=signed_in) == limit


@override_settings(TELEMETRY_BODY_MAX_BYTES=1000)
def test_telemetry_limit_is_its_own(settings):
    settings.REQUEST_BODY_ROUTE_LIMITS = [(r"^/api/v1/telemetry/(batch/)?$", 1000)]
    assert body_limit_for("/api/v1/telemetry/", has_credentials=True) == 1000
    assert body_limit_for("/api/v1/telemetry/batch/", has_credentials=False) == 1000


# --- the ASGI guard --------------------------------------------------------------------------


class Recorder:
    """An ASGI app that reads the whole body like Django's handler, then answers 200."""

    def __init__(self) -> None:
        self.called = False
        self.body = b""
        self.disconnected = False

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        self.called = True
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                self.disconnected = True
                return
            self.body += message.get("body", b"")
            if not message.get("more_body"):
                break
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})


def scope(path: str, headers: list[tuple[bytes, bytes]]) -> dict[str, Any]:
    return {"type": "http", "method": "POST", "path": path, "headers": headers}


async def run(app: Any, scope: dict[str, Any], chunks: list[bytes]) -> tuple[int, dict, bytes]:
    communicator = ApplicationCommunicator(app, scope)
    for i, chunk in enumerate(chunks):
        await communicator.send_input(
            {"type": "http.request", "body": chunk, "more_body": i < len(chunks) - 1}
        )
    start = await communicator.receive_output(5)
    body = await communicator.receive_output(5)
    await communicator.wait(5)
    return start["status"], dict(start["headers"]), body["body"]


@pytest.mark.asyncio
async def test_guard_refuses_a_declared_length_over_the_limit_without_reading_it():
    inner = Recorder()
    status, headers, body = await run(
        BodyLimitMiddleware(inner),
        scope("/api/v1/jobs/", [(b"content-length", str(DEFAULT + 1).encode())]),
        [b"x"],
    )
    assert status == 413
    assert not inner.called
    assert headers[b"content-type"] == b"application/json"
    assert b'"code":"payload_too_large"' in body
    assert b"10 MiB allowed here" in body


@pytest.mark.asyncio
async def test_guard_answers_a_portal_page_with_html():
    status, headers, body = await run(
        BodyLimitMiddleware(Recorder()),
        scope("/", [(b"content-length", str(DEFAULT + 1).encode())]),
        [b"x"],
    )
    assert status == 413
    assert headers[b"content-type"].startswith(b"text/html")
    assert b"that upload is too large" in body
    assert b"10 MiB allowed here" in body


@pytest.mark.asyncio
async def test_guard_counts_a_streamed_body_and_stops_the_app_reading_it():
    inner = Recorder()
    chunk = b"x" * MIB
    status, _, body = await run(
        BodyLimitMiddleware(inner), scope("/api/v1/jobs/", []), [chunk] * 12
    )
    assert status == 413
    assert inner.disconnected  # Django's handler drops a request whose client went away
    assert len(inner.body) <= DEFAULT
    assert b"payload_too_large" in body


@pytest.mark.asyncio
async def test_guard_passes_a_body_within_the_limit_whole():
    inner = Recorder()
    chunks = [b"a" * MIB] * 10  # exactly the default limit
    status, _, body = await run(
        BodyLimitMiddleware(inner),
        scope("/api/v1/jobs/", [(b"content-length", str(10 * MIB).encode())]),
        chunks,
    )
    assert (status, body) == (200, b"ok")
    assert inner.body == b"a" * (10 * MIB)


@pytest.mark.asyncio
async def test_guard_gives_the_upload_limit_only_to_callers_with_credentials():
    length = str(20 * MIB).encode()
    anonymous = Recorder()
    status, _, _ = await run(
        BodyLimitMiddleware(anonymous),
        scope("/api/v1/jobs/cad/", [(b"content-length", length)]),
        [b"x"],
    )
    assert status == 413 and not anonymous.called

    for credentials in [
        (b"authorization", b"Bearer abc"),
        (b"cookie", b"csrftoken=1; sessionid=abc"),
    ]:
        signed_in = Recorder()
        status, _, _ = await run(
            BodyLimitMiddleware(signed_in),
            scope("/api/v1/jobs/cad/", [(b"content-length", length), credentials]),
            [b"x"],
        )
        assert status == 200 and signed_in.called


# --- Django's own refusals: 413 / 400, never 500 ----------------------------------------------


def assert_api_error(response: Any, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status
    assert response["Content-Type"].startswith("application/json")
    error = response.json()["error"]
    assert error["code"] == code
    return error


@pytest.mark.django_db
@override_settings(DATA_UPLOAD_MAX_MEMORY_SIZE=1000)
def test_api_form_fields_over_django_limit_are_413_json(make_user):
    client = jwt_client(make_user(Role.DESIGNER))
    response = client.post(
        "/api/v1/jobs/cad/", {"size_x_mm": "1" * 2000, "file": b"solid x"}, format="multipart"
    )
    error = assert_api_error(response, 413, "payload_too_large")
    assert "1,000 bytes" in error["message"]


@pytest.mark.django_db
@override_settings(DATA_UPLOAD_MAX_NUMBER_FIELDS=5)
def test_api_too_many_fields_is_400_json(make_user):
    client = jwt_client(make_user(Role.DESIGNER))
    fields = "&".join(f"f{i}=1" for i in range(20))
    response = client.post(
        "/api/v1/jobs/cad/", fields, content_type="application/x-www-form-urlencoded"
    )
    error = assert_api_error(response, 400, "too_many_fields")
    assert "more than 5 form fields" in error["message"]


@pytest.mark.django_db
@override_settings(DATA_UPLOAD_MAX_NUMBER_FILES=1)
def test_api_too_many_files_is_400_json(make_user):
    from django.core.files.uploadedfile import SimpleUploadedFile

    client = jwt_client(make_user(Role.DESIGNER))
    files = [SimpleUploadedFile(f"p{i}.stl", b"solid x") for i in range(3)]
    response = client.post("/api/v1/jobs/cad/", {"file": files}, format="multipart")
    assert_api_error(response, 400, "too_many_files")


@pytest.mark.django_db
@override_settings(DATA_UPLOAD_MAX_MEMORY_SIZE=1000)
def test_portal_form_over_django_limit_is_a_413_page(make_user):
    client = portal_client(make_user(Role.DESIGNER))
    response = client.post("/jobs/new/", {"title": "x" * 2000})
    assert response.status_code == 413
    assert response["Content-Type"].startswith("text/html")
    assert b"that upload is too large" in response.content
    assert b"1,000 bytes" in response.content


@pytest.mark.django_db
@override_settings(DATA_UPLOAD_MAX_NUMBER_FIELDS=5)
def test_portal_too_many_fields_is_a_400_page(make_user):
    client = portal_client(make_user(Role.DESIGNER))
    response = client.post("/jobs/new/", {f"f{i}": "1" for i in range(20)})
    assert response.status_code == 400
    assert b"more than 5 form fields" in response.content


# --- a real daphne ---------------------------------------------------------------------------

BIG = 200 * 1000 * 1000  # the body of the attack that took daphne from 391 MB to 3 GB
RSS_BOUND = 100 * MIB  # the most a refused body may add to the server's idle RSS


@pytest.fixture
def daphne_server(tmp_path: Path, db: Any) -> Iterator[tuple[int, int]]:
    """`.venv/bin/daphne imewe.asgi:application` with production settings (DEBUG=0) on this test
    run's database: (port, pid)."""
    env = {k: v for k, v in os.environ.items() if k not in {"REDIS_URL", "JWT_SIGNING_KEY"}}
    env.update(
        DJANGO_SETTINGS_MODULE="imewe.settings",
        DEBUG="0",
        SECRET_KEY="body-limits-live-test-" + "k7Qz" * 10,
        ALLOWED_HOSTS="127.0.0.1",
        SECURE_SSL_REDIRECT="0",
        LOG_FORMAT="text",
        LOG_LEVEL="ERROR",
        IMEWE_VAR_DIR=str(tmp_path),
        CELERY_BROKER_URL="memory://",
    )
    settings_dict = connection.settings_dict
    if connection.vendor == "postgresql":
        env["DATABASE_URL"] = (
            f"postgres://{settings_dict['USER']}@{settings_dict['HOST']}:{settings_dict['PORT']}"
            f"/{settings_dict['NAME']}"
        )
    else:
        env.pop("DATABASE_URL", None)
        env["SQLITE_PATH"] = str(settings_dict["NAME"])
    proc, port = start_daphne(env, tmp_path / "daphne.log")
    yield port, proc.pid
    proc.terminate()
    proc.wait(timeout=30)


@pytest.mark.integration
@pytest.mark.django_db(transaction=True)
def test_real_daphne_refuses_huge_bodies_in_bounded_memory_and_keeps_serving(daphne_server):
    port, pid = daphne_server
    idle = idle_rss(port, pid)
    attacks = [
        # (path, (length, chunks), content type, halfway point, JSON answer)
        ("/", multipart_body(BIG), MULTIPART, BIG // 2, False),
        ("/api/v1/jobs/cad/", multipart_body(BIG), MULTIPART, BIG // 2, True),
        ("/api/v1/telemetry/batch/", json_body(50 * MIB), "application/json", 25 * MIB, True),
        ("/api/v1/jobs/", (None, zeros(50 * MIB)), "application/json", 25 * MIB, True),
    ]
    for path, (length, chunks), content_type, halfway_at, is_json in attacks:
        with RssSampler(pid) as rss:
            answer = send_body(
                port,
                path,
                chunks,
                length=length,
                content_type=content_type,
                halfway_at=halfway_at,
                halfway=lambda: get_status(port, "/healthz"),
            )
        assert answer.status == 413, (path, answer.status, answer.body[:300])
        if is_json:
            assert answer.headers["content-type"] == "application/json"
            assert b'"code":"payload_too_large"' in answer.body
        else:
            assert b"that upload is too large" in answer.body
        assert answer.complete  # the client could send its whole body and still read the 413
        assert answer.during == [200], path  # /healthz answered while the body was streaming
        # answered long before the body was in (the client's socket buffer is a few MB)
        assert answer.sent < 64 * MIB, (path, answer.sent)
        assert rss.peak - idle < RSS_BOUND, (path, (rss.peak - idle) / MIB)
    assert get_status(port, "/healthz") == 200
