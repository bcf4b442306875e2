"""A real daphne stops within the compose grace period (10 s) after SIGTERM, even with open
websockets, a consumer stuck in a database call and an HTTP request in flight. (Stopping once
hung over 60 s: daphne waits without a limit for every cancelled application, and a cancelled
`database_sync_to_async` waits for its thread.) The bound asserted is the functional requirement,
with room for a loaded machine, not a speed measure."""

from __future__ import annotations

import http.client
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path

import pytest
from django.db import connection, connections, transaction
from websockets.sync.client import ClientConnection
from websockets.sync.client import connect as ws_connect

from apps.core.models import Notification
from apps.core.services import notification_send
from apps.users.roles import Role
from apps.users.tokens import tokens_issue
from tests.conftest import free_port, wait_for_port

pytestmark = pytest.mark.django_db(transaction=True)
ROOT = Path(__file__).resolve().parents[1]
EXIT_BOUND_S = 15  # compose's default grace is 10 s; the server's own deadline is 7 s


class Daphne:
    def __init__(self, tmp_path: Path) -> None:
        self.port = free_port()
        self.log_path = tmp_path / "daphne.log"
        self.log = self.log_path.open("wb")
        env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "imewe.settings_test",
            "IMEWE_LIVE_TEST_DB": str(connection.settings_dict["NAME"]),
            "SHUTDOWN_TIMEOUT_SECONDS": "7",
        }
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "daphne", "-b", "127.0.0.1", "-p", str(self.port)]
            + ["imewe.asgi:application"],
            cwd=ROOT,
            env=env,
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )
        try:
            wait_for_port(self.port, self.proc, within_s=90)
        except RuntimeError as exc:
            self.proc.kill()
            raise RuntimeError(f"{exc}\n{self.log_path.read_text()}") from None

    def output(self) -> str:
        self.log.flush()
        return self.log_path.read_text(errors="replace")

    def stop_within(self, seconds: float) -> int:
        """SIGTERM, then the exit status; fails when the process outlives `seconds`."""
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout=seconds)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            pytest.fail(f"daphne still running {seconds} s after SIGTERM\n{self.output()}")


@pytest.fixture
def daphne(tmp_path: Path) -> Iterator[Daphne]:
    server = Daphne(tmp_path)
    yield server
    if server.proc.poll() is None:
        server.proc.kill()
        server.proc.wait()
    server.log.close()


@pytest.fixture
def designer(make_user):
    user = make_user(Role.DESIGNER)
    token = str(tokens_issue(user=user, otp_verified=True).access_token)
    return user, token


@pytest.fixture
def clients() -> Iterator[ExitStack]:
    with ExitStack() as stack:
        yield stack


def open_sockets(
    daphne: Daphne, token: str, count: int, clients: ExitStack
) -> list[ClientConnection]:
    # A token client, as a mobile app: no Origin header.
    url = f"ws://127.0.0.1:{daphne.port}/ws/notifications/?token={token}"
    sockets = [clients.enter_context(ws_connect(url, open_timeout=30)) for _ in range(count)]
    for ws in sockets:
        assert json.loads(ws.recv(timeout=30))["type"] == "hello"
    return sockets


def waiting_on_locks() -> int:
    """Statements of the server's that wait for a lock the test holds (PostgreSQL)."""
    if connection.vendor != "postgresql":
        return 0
    watcher = connections.create_connection("default")
    try:
        with watcher.cursor() as cursor:
            cursor.execute(
                "SELECT count(*) FROM pg_stat_activity "
                "WHERE datname = current_database() AND wait_event_type = 'Lock'"
            )
            return int(cursor.fetchone()[0])
    finally:
        watcher.close()


def test_daphne_stops_cleanly_with_open_websockets(daphne, designer, clients):
    _, token = designer
    open_sockets(daphne, token, 3, clients)
    idle = http.client.HTTPConnection("127.0.0.1", daphne.port, timeout=30)
    idle.request("GET", "/healthz")
    response = idle.getresponse()
    assert response.status == 200 and response.read()  # the connection is kept alive

    assert daphne.stop_within(EXIT_BOUND_S) == 0
    assert "did not finish" not in daphne.output()


def test_daphne_stops_in_time_with_a_consumer_and_a_request_stuck_in_the_database(
    daphne, designer, clients
):
    user, token = designer
    note = notification_send(user=user, title="Held")
    sockets = open_sockets(daphne, token, 3, clients)
    replies: list[object] = []

    def post_mark_read() -> None:  # an HTTP request whose view waits for the same row
        client = http.client.HTTPConnection("127.0.0.1", daphne.port, timeout=60)
        try:
            client.request(
                "POST",
                "/api/v1/notifications/read/",
                body=json.dumps({"ids": [note.pk]}),
                headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
            )
            replies.append(client.getresponse().status)
        except OSError as exc:  # the server went away mid-request: expected
            replies.append(exc)

    with transaction.atomic():
        # given: the test holds the notification's row lock, so the consumer's
        # database_sync_to_async call and the view below block on it
        Notification.objects.filter(pk=note.pk).update(title="Held by the test")
        sockets[0].send(json.dumps({"type": "mark_read", "ids": [note.pk]}))
        request = threading.Thread(target=post_mark_read, daemon=True)
        request.start()
        if connection.vendor == "postgresql":
            deadline = time.monotonic() + 60
            while waiting_on_locks() < 2:
                assert time.monotonic() < deadline, daphne.output()
                time.sleep(0.1)

        # when: the server is told to stop while both wait
        status = daphne.stop_within(EXIT_BOUND_S)

    # then: it ended on its own deadline and said which threads were stuck
    output = daphne.output()
    if connection.vendor == "postgresql":
        assert status == 3 and "did not finish" in output
        assert "notification_mark_read" in output  # the stack of the stuck consumer call
    request.join(timeout=30)
    assert replies and replies[0] != 200  # cut off, never answered as done
