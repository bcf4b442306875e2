"""Event-driven forwarding on real peers: an OPC UA server the test writes to, the gateway, and
the platform (HTTPS batch API on the live server, or Mosquitto). A point worth showing leaves at
once, long before `forward_every_s`; the rest waits for the batch; a noisy signal is rate-limited
into batches; urgent points survive an outage in the buffer."""

from __future__ import annotations

import asyncio
import contextlib
import gzip
import threading
import time
import uuid
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlparse

import orjson
import paho.mqtt.client as mqtt
import pytest
from asyncua import ua
from asyncua.server.server import Server

from apps.telemetry.models import TelemetryPoint
from edge.buffer import SqliteBuffer
from edge.forwarder import Forwarder
from edge.gateway import Gateway, from_config
from edge.publishers import HttpsBatchPublisher
from tests.conftest import free_port
from tests.edge.test_gateway import make_ready_node
from tests.edge.test_store_and_forward import CuttableProxy
from tests.fixtures.fleet import Fleet
from tests.telemetry.test_mqtt_bridge import wait_for

LONG = 60.0  # forward_every_s in these tests: nothing batched leaves while they run


class Machine:
    """A real OPC UA server whose variables (one per signal) the test writes."""

    def __init__(self, **values: float) -> None:
        self.port = free_port()
        self.url = f"opc.tcp://127.0.0.1:{self.port}/test/"
        self.values = values
        self.variables: dict[str, Any] = {}
        self.server = Server()

    @property
    def signals(self) -> dict[str, str]:
        return {s: f"ns=2;s=Test.{s}" for s in self.values}

    async def start(self) -> None:
        await self.server.init()
        self.server.set_endpoint(self.url)
        idx = await self.server.register_namespace("urn:imewe:test")
        machine = await self.server.nodes.objects.add_object(idx, "Test")
        for signal, value in self.values.items():
            self.variables[signal] = await machine.add_variable(
                ua.NodeId(ua.String(f"Test.{signal}"), ua.Int16(idx)),
                signal,
                value,
                varianttype=ua.VariantType.Double,
            )
        await self.server.start()

    async def write(self, signal: str, value: float) -> None:
        await self.variables[signal].write_value(value, ua.VariantType.Double)

    async def stop(self) -> None:
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self.server.stop(), 5)


def device(node: int, token: str, machine: Machine, **extra: Any) -> dict[str, Any]:
    return {
        "node": node,
        "token": token,
        "protocol": "opcua",
        "url": machine.url,
        "interval_ms": 100,
        "signals": machine.signals,
        **extra,
    }


async def until(predicate: Callable[[], bool], what: str, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.02)


async def polls(gateway: Gateway, node: int, count: int) -> None:
    """Wait until the gateway has read `count` more points of `node` (buffered or sent)."""
    forwarder = gateway.forwarders[node]
    start = forwarder.stats.sent + len(forwarder.buffer)
    await until(lambda: forwarder.stats.sent + len(forwarder.buffer) >= start + count, "polls")


async def stop(task: asyncio.Task[None]) -> None:
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


def test_a_change_worth_showing_leaves_at_once_and_the_rest_waits(
    live_server, fleet: Fleet, tmp_path
):
    node, token = make_ready_node(fleet, "Urgent-Mill")
    machine = Machine(temperature_c=20.0, power_kw=1.0)
    config = {
        "upstream": {"url": live_server.url},
        "buffer": {"path": str(tmp_path / "edge.sqlite3")},
        "forward_every_s": LONG,
        # temperature never moves beyond this deadband: only its alert can make it urgent
        "devices": [
            device(
                node.pk,
                token,
                machine,
                limits={"temperature_c": [50, 60]},
                deadband={"temperature_c": {"abs": 1000}},
            )
        ],
    }

    async def scenario() -> Gateway:
        await machine.start()
        gateway = from_config(config)
        forwarder, lane = gateway.forwarders[node.pk], gateway.lane(gateway.devices[0])
        task = asyncio.create_task(gateway.run())
        try:
            # the node's first point is worth showing: the platform has it long before 60 s
            await until(lambda: forwarder.stats.accepted >= 1, "the first point")
            first = forwarder.stats.accepted
            # given: changes inside the deadbands wait in the buffer for the batch
            await machine.write("power_kw", 1.02)  # < 5%
            await machine.write("temperature_c", 40.0)  # < its 1000 deadband, below limits
            await polls(gateway, node.pk, 8)
            assert forwarder.stats.accepted == first
            waiting = len(forwarder.buffer)
            assert waiting >= 8
            # when: power moves beyond its deadband
            await machine.write("power_kw", 2.0)
            # then: it goes at once, with everything buffered before it, in order
            await until(lambda: forwarder.stats.accepted > first + waiting, "the change")
            assert lane.urgent_sends == 2 and lane.batch_sends == 0
            # when: temperature crosses its warning threshold, inside its deadband
            sent = forwarder.stats.accepted
            await machine.write("temperature_c", 51.0)
            # then: the local alert makes its point urgent
            await until(lambda: forwarder.stats.accepted > sent, "the alert's point")
            assert [a.severity for a in gateway.alerts[:1]] == ["warning"]
            assert lane.urgent_sends == 3 and lane.batch_sends == 0
            # when: an urgent point is one the platform refuses (power below its range)
            await machine.write("power_kw", -5.0)
            # then: it is parked as a dead letter and the stream goes on
            await until(lambda: forwarder.stats.dead_lettered >= 1, "the dead letter")
            await machine.write("power_kw", 3.0)
            sent = forwarder.stats.accepted
            await until(lambda: forwarder.stats.accepted > sent, "the next change")
        finally:
            await stop(task)
            await machine.stop()
        return gateway

    gateway = asyncio.run(scenario())
    forwarder = gateway.forwarders[node.pk]
    rows = TelemetryPoint.objects.filter(node=node).order_by("time")
    assert rows.count() == forwarder.stats.accepted and len(forwarder.buffer) == 0
    powers = [r.power_kw for r in rows]
    assert powers[0] == 1.0 and 2.0 in powers
    # the batched points arrived, older than the urgent one that carried them
    assert powers.index(1.02) < powers.index(2.0)
    assert rows.filter(temperature_c=51.0).exists() and rows.filter(power_kw=3.0).exists()
    assert not rows.filter(power_kw__lt=0).exists()
    signals = [a.signal for a in gateway.alerts]
    assert signals[0] == "temperature_c" and set(signals[1:]) == {"telemetry"}


@pytest.mark.integration
def test_a_noisy_signal_is_rate_limited_into_batches(tmp_path):
    # given: a gateway on the real broker, whose signal changes beyond its deadband at every poll
    site = f"noisy{uuid.uuid4().hex[:8]}"
    machine = Machine(power_kw=1.0)
    messages: list[int] = []  # points per MQTT message: one message per send
    subscribed = threading.Event()
    listener = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"listen-{site}")
    listener.on_message = lambda c, u, m: messages.append(len(orjson.loads(m.payload)["points"]))
    listener.on_subscribe = lambda *args: subscribed.set()
    listener.connect("127.0.0.1", 1883)
    listener.subscribe(f"factory/{site}/machine/+/telemetry", qos=1)
    listener.loop_start()
    assert subscribed.wait(10), "Mosquitto on 127.0.0.1:1883 is required"
    config = {
        "upstream": {"mqtt": "mqtt://127.0.0.1:1883", "site": site},
        "buffer": {"path": str(tmp_path / "edge.sqlite3")},
        "forward_every_s": LONG,
        "min_urgent_gap_s": 0.5,  # five polls
        "devices": [device(9, "imw_test", machine)],
    }

    async def noise() -> None:
        value = 1.0
        while True:
            value = 3.0 - value  # 1 <-> 2: far beyond the 5% deadband
            await machine.write("power_kw", value)
            await asyncio.sleep(0.03)

    async def scenario() -> Gateway:
        await machine.start()
        gateway = from_config(config)
        assert gateway.mqtt is not None and gateway.mqtt.connected.wait(10)
        writer = asyncio.create_task(noise())
        task = asyncio.create_task(gateway.run())
        try:
            # when: the noise runs for 30 polls
            await polls(gateway, 9, 30)
            await until(lambda: len(messages) >= 3, "urgent sends")
        finally:
            writer.cancel()
            await stop(task)
            await machine.stop()
        return gateway

    try:
        gateway = asyncio.run(scenario())
        sent = gateway.forwarders[9].stats.sent  # the final drain's message may still travel
        assert wait_for(lambda: sum(messages) == sent), (messages, sent)
    finally:
        listener.loop_stop()
        listener.disconnect()
    # then: the points went, several to a request, not one request per point
    lane = gateway.lanes[9]
    assert lane.urgent_sends >= 3 and lane.batch_sends == 0
    assert sum(messages) >= 2.5 * len(messages), messages


@pytest.mark.integration
def test_an_urgent_point_waits_out_the_gap_after_a_send_not_after_an_empty_look(tmp_path):
    # given: a gateway on the real broker allowed one urgent send per 30 s; its sender looked
    # at the (empty) buffer when it started, before the first poll
    site = f"gap{uuid.uuid4().hex[:8]}"
    machine = Machine(power_kw=1.0)
    messages: list[int] = []
    subscribed = threading.Event()
    listener = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"listen-{site}")
    listener.on_message = lambda c, u, m: messages.append(len(orjson.loads(m.payload)["points"]))
    listener.on_subscribe = lambda *args: subscribed.set()
    listener.connect("127.0.0.1", 1883)
    listener.subscribe(f"factory/{site}/machine/+/telemetry", qos=1)
    listener.loop_start()
    assert subscribed.wait(10), "Mosquitto on 127.0.0.1:1883 is required"
    config = {
        "upstream": {"mqtt": "mqtt://127.0.0.1:1883", "site": site},
        "buffer": {"path": str(tmp_path / "edge.sqlite3")},
        "forward_every_s": LONG,
        "min_urgent_gap_s": 30,
        "devices": [device(9, "imw_test", machine)],
    }

    async def scenario() -> Gateway:
        await machine.start()
        gateway = from_config(config)
        assert gateway.mqtt is not None and gateway.mqtt.connected.wait(10)
        forwarder = gateway.forwarders[9]
        task = asyncio.create_task(gateway.run())
        try:
            # then: the first point goes at once (the empty look was not a send)
            await until(lambda: len(messages) == 1, "the first point")
            # when: a change worth showing comes within the gap
            await machine.write("power_kw", 5.0)
            await polls(gateway, 9, 5)
            # then: it waits in the buffer for the gap to pass
            assert len(messages) == 1 and len(forwarder.buffer) >= 5
            assert gateway.lanes[9].urgent_waiting
        finally:
            await stop(task)
            await machine.stop()
        return gateway

    try:
        gateway = asyncio.run(scenario())
        sent = gateway.forwarders[9].stats.sent  # the final drain took the rest
        assert wait_for(lambda: sum(messages) == sent), (messages, sent)
    finally:
        listener.loop_stop()
        listener.disconnect()
    assert len(messages) == 2


def test_urgent_points_stay_buffered_through_an_outage(live_server, fleet: Fleet, tmp_path):
    node, token = make_ready_node(fleet, "Outage-Mill")
    proxy = CuttableProxy(urlparse(live_server.url).port)
    proxy.restore()
    machine = Machine(power_kw=1.0)
    config = {
        "upstream": {"url": f"http://127.0.0.1:{proxy.port}"},
        "buffer": {"path": str(tmp_path / "edge.sqlite3")},
        "forward_every_s": 1.0,
        "devices": [device(node.pk, token, machine)],
    }

    async def scenario() -> Gateway:
        await machine.start()
        gateway = from_config(config)
        forwarder = gateway.forwarders[node.pk]
        task = asyncio.create_task(gateway.run())
        try:
            await until(lambda: forwarder.stats.accepted >= 1, "the first point")
            # given: the platform becomes unreachable
            proxy.cut()
            failures = forwarder.stats.failures
            # when: every poll brings a change worth showing
            for step in range(20):
                await machine.write("power_kw", 1.0 + (step % 2))
                await polls(gateway, node.pk, 1)
            # then: they wait in the buffer, retried at the batch pace, not at every point
            assert len(forwarder.buffer) >= 20
            tries = forwarder.stats.failures - failures
            assert 1 <= tries <= 10, tries
            # and once the platform is back, they all arrive
            proxy.restore()
            await until(lambda: len(forwarder.buffer) == 0, "the backlog to drain")
        finally:
            await stop(task)
            await machine.stop()
            proxy.cut()
        return gateway

    gateway = asyncio.run(scenario())
    forwarder = gateway.forwarders[node.pk]
    times = list(TelemetryPoint.objects.filter(node=node).values_list("time", flat=True))
    assert len(times) == len(set(times)) == forwarder.stats.accepted >= 21
    assert forwarder.stats.duplicates == 0 and forwarder.stats.rejected == []


class SlowPlatform(ThreadingHTTPServer):
    """A batch endpoint that takes its time and notes every point it was sent."""

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), SlowBatchHandler)
        self.received: list[dict[str, Any]] = []


class SlowBatchHandler(BaseHTTPRequestHandler):
    server: SlowPlatform

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        points = orjson.loads(gzip.decompress(body))
        self.server.received.extend(points)
        time.sleep(0.3)
        answer = orjson.dumps({"accepted": len(points), "duplicates": 0, "rejected": []})
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(answer)))
        self.end_headers()
        self.wfile.write(answer)

    def log_message(self, format: str, *args: Any) -> None:
        pass


def test_a_drain_that_starts_while_another_runs_waits_for_it(tmp_path):
    # given: a send in flight (the gateway stopping while a node's sender still posts)
    platform = SlowPlatform()
    threading.Thread(target=platform.serve_forever, daemon=True).start()
    forwarder = Forwarder(
        SqliteBuffer(tmp_path / "b.sqlite3"),
        HttpsBatchPublisher(f"http://127.0.0.1:{platform.server_address[1]}", "t"),
    )
    forwarder.enqueue([{"node": 1, "time": f"2026-01-01T00:00:0{i}Z"} for i in range(5)])
    first = threading.Thread(target=forwarder.drain)
    first.start()
    try:
        assert wait_for(lambda: len(platform.received) == 5)
        # when: the final drain starts before that send was acknowledged
        assert forwarder.drain()
    finally:
        first.join(10)
        platform.shutdown()
    # then: it found the buffer empty instead of sending the same points again
    assert len(platform.received) == 5 and len(forwarder.buffer) == 0
