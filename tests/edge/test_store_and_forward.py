"""The gateway's upstream path against a real platform server: the connection is cut mid-stream
(a TCP proxy the test closes) and restored; every point arrives exactly once."""

from __future__ import annotations

import contextlib
import socket
import threading
from datetime import timedelta
from urllib.parse import urlparse

import pytest
from django.utils import timezone

from apps.telemetry.models import TelemetryPoint
from apps.vendors.models import FabricationNode
from apps.vendors.services import device_credential_issue, node_config_save, node_transition
from edge.buffer import SqliteBuffer
from edge.forwarder import Forwarder
from edge.publishers import HttpsBatchPublisher, UpstreamRefused
from tests.conftest import free_port
from tests.fixtures.fleet import Fleet, approved_node


class CuttableProxy:
    """A TCP proxy on a fixed local port; `cut()` closes it (connections refused), `restore()`
    listens again. Stands for the network between the shop floor and the platform."""

    def __init__(self, target_port: int) -> None:
        self.port = free_port()
        self.target_port = target_port
        self.server: socket.socket | None = None
        self.open: list[socket.socket] = []  # piped connections: a cut link ends them too

    def restore(self) -> None:
        server = socket.socket()
        server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        server.bind(("127.0.0.1", self.port))
        server.listen(16)
        self.server = server
        threading.Thread(target=self._accept, args=(server,), daemon=True).start()

    def cut(self) -> None:
        if self.server is not None:
            # shutdown() wakes the blocked accept(); close() alone would leave it listening.
            with contextlib.suppress(OSError):
                self.server.shutdown(socket.SHUT_RDWR)
            self.server.close()
            self.server = None
        for open_socket in self.open:  # the publisher keeps its connection alive: cut it
            with contextlib.suppress(OSError):
                open_socket.shutdown(socket.SHUT_RDWR)
        self.open.clear()

    def _accept(self, server: socket.socket) -> None:
        while True:
            try:
                client, _ = server.accept()
            except OSError:
                return
            upstream = socket.create_connection(("127.0.0.1", self.target_port))
            self.open += [client, upstream]
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    @staticmethod
    def _pipe(source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            pass
        finally:
            for s in (source, sink):
                with contextlib.suppress(OSError):
                    s.shutdown(socket.SHUT_RDWR)


@pytest.fixture
def streaming(fleet: Fleet):
    node = approved_node(fleet, name="Edge-1")
    node_config_save(node=node, by=fleet.vendor, config={"a": 1})
    node_transition(node=node, to=FabricationNode.Status.IDLE, by=fleet.vendor, reason="up")
    _, token = device_credential_issue(node=node, by=fleet.vendor)
    return node, token


# One base for every call: taken per call, a re-sent batch produced a second later carried other
# times than the batch it repeats (710 points stored instead of 700, now and then).
BASE = timezone.now().replace(microsecond=0) - timedelta(minutes=30)


def produce(node_id: int, start: int, count: int) -> list[dict]:
    base = BASE
    return [
        {
            "node": node_id,
            "time": (base + timedelta(milliseconds=100 * i)).isoformat(),
            "power_kw": 1.0 + i / 1000,
        }
        for i in range(start, start + count)
    ]


def test_cut_and_restore_loses_and_duplicates_nothing(live_server, streaming, tmp_path):
    node, token = streaming
    proxy = CuttableProxy(urlparse(live_server.url).port)
    proxy.restore()
    forwarder = Forwarder(
        SqliteBuffer(tmp_path / "buffer.sqlite3"),
        HttpsBatchPublisher(f"http://127.0.0.1:{proxy.port}", token, timeout=5),
        batch_size=100,
    )
    # given: the first 300 points flow normally
    for chunk in range(3):
        forwarder.enqueue(produce(node.pk, chunk * 100, 100))
        assert forwarder.drain()
    assert TelemetryPoint.objects.filter(node=node).count() == 300

    # when: the link is cut, the machine keeps producing 400 more points
    proxy.cut()
    for chunk in range(3, 7):
        forwarder.enqueue(produce(node.pk, chunk * 100, 100))
        assert forwarder.drain() is False
    assert len(forwarder.buffer) == 400
    assert TelemetryPoint.objects.filter(node=node).count() == 300

    # and a crash re-sends an already delivered batch on restart (ack lost)
    forwarder.buffer.append(produce(node.pk, 200, 100))

    # then: once the link is back, the replay brings every point exactly once
    proxy.restore()
    assert forwarder.drain()
    assert len(forwarder.buffer) == 0
    times = list(TelemetryPoint.objects.filter(node=node).values_list("time", flat=True))
    assert len(times) == 700 == len(set(times))
    assert forwarder.stats.duplicates == 100 and forwarder.stats.rejected == []
    proxy.cut()


def test_revoked_token_stops_the_forwarder_loudly(live_server, streaming, fleet: Fleet, tmp_path):
    node, token = streaming
    from apps.vendors.services import device_credential_revoke

    device_credential_revoke(credential=node.device_credentials.get(), by=fleet.vendor)
    forwarder = Forwarder(
        SqliteBuffer(tmp_path / "b.sqlite3"), HttpsBatchPublisher(live_server.url, token)
    )
    forwarder.enqueue(produce(node.pk, 0, 5))
    with pytest.raises(UpstreamRefused):
        forwarder.drain()
    assert len(forwarder.buffer) == 5  # kept for when a valid token is configured
