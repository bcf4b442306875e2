"""Live latency benchmark: how long after a value changes on a machine does a browser see it?

    .venv/bin/python -m bench.live_latency [--seconds S] [--interval-ms N] [--forward-every-s F]
                                           [--quick] [--no-sweep] [--keep-db]

An OPC UA server run by this process writes a marker (1, 2, 3, ... into the variable mapped to
`material_remaining`, each step far beyond the gateway's default deadband: see MARKER_JUMP)
every 0.3-0.7 s, at random instants so that the writes never lock into step with the gateway's
timers, and notes the wall-clock time of each write. The real edge gateway (`python -m
edge.gateway`, its own process, with its default config unless an option changes it) polls it
and forwards to a real daphne (PostgreSQL, channels-redis); a `websockets` client on
/ws/telemetry/ notes when each marker, or a newer one, first shows. Latency = that receive
time - the write time (time.time() on both sides, one machine). Target: p99 <= poll interval +
100 ms.

Three taps that do not change the path explain where the time goes:
- a pass-through HTTP proxy between gateway and daphne decodes every batch: the gateway's read
  time of each point (its stamp) and when the batch carrying it was posted and answered;
- a second member of the node's channel-layer group notes when each broadcast left daphne;
- the websocket client itself: time between broadcast and message (the consumer holds a message
  while the node had one in the last 250 ms: coalescing).

Baselines in the same run and on the same writes: the OPC UA poll floor (the gateway's own
OpcUaSource polling at the same interval in this process), an OPC UA subscription, and one
channel-layer hop (group_send -> receive). After the main phase the run repeats with markers
that step by 1, inside the deadband (the batched path: they wait for `forward_every_s` by
design, no target), then with shorter forward intervals (the sweep), then, as a what-if, on a
daphne whose websocket consumer does not coalesce (patched in that daphne's memory only, see
`whatif_application`). Everything runs against a database of its own (imewe_bench_live, dropped
and created anew) and Redis DB 5 under the key prefix `benchlive`; daphne runs as docker-compose's
web service does (DB_POOL=1). A missed target prints MISS; the exit status stays 0 (only a broken
run fails). See bench/README.md, section live_latency.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import gzip
import importlib
import logging
import os
import random
import signal
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import orjson
import yaml

from bench import harness
from edge.gateway import DEFAULT_FORWARD_EVERY_S

ROOT = harness.ROOT
BIN = Path(sys.executable).parent  # the virtualenv's bin/: daphne lives there
DATABASE = harness.BenchDatabase("imewe_bench_live")
REDIS_URL = "redis://127.0.0.1:6379/5"
KEY_PREFIX = "benchlive"  # channel layer and cache keys; deleted before and after the run
HOST = harness.HOST

MARKER_SIGNAL = "material_remaining"  # a real signal (0..1e9) without local safety limits
# Marker k is written as k, plus MARKER_JUMP when k is odd: every step moves the value by about
# half its range, far beyond the gateway's default deadband (edge/urgency.py, 1% for this
# signal), as a change worth showing does. The small-steps phase writes SMALL_BASE + k / 100
# instead: steps far inside the deadband, which wait for the periodic batch by design.
MARKER_JUMP = 500_000_000
SMALL_BASE = 100_000_000
MARKER_NODE_ID = "Machine1.Bench.Marker"
MARKER_GAP_S = (0.3, 0.7)  # random gap between marker writes
COALESCE_S = 0.25  # apps/telemetry/consumers.py MIN_INTERVAL_S
TARGET_SLACK_MS = 100.0  # target: p99 <= poll interval + 100 ms
WARMUP_S = 1.0  # after the first message of a phase: connections, lazy imports
HOP_EVERY_S = 0.2  # channel-layer hop floor: one probe every 200 ms

NODE_FIELDS = {
    "kind": "cnc_mill",
    "processes": ["milling"],
    "materials": ["aluminium 6061"],
    "build_x_mm": 600,
    "build_y_mm": 400,
    "build_z_mm": 300,
    "precision_mm": 0.01,
    "rated_power_kw": 7.5,
    "latitude": 6.45,
    "longitude": 3.39,
    "software_version": "bench",
}


def server_env(var_dir: Path) -> dict[str, str]:
    return harness.server_env(
        database=DATABASE,
        redis_url=REDIS_URL,
        key_prefix=KEY_PREFIX,
        var_dir=var_dir,
        JWT_ACCESS_MINUTES="60",
        DB_POOL="1",  # as docker-compose's web service: ASGI would otherwise connect per request
    )


def marker_value(marker: int, small_steps: bool = False) -> float:
    """The value written for `marker` (see MARKER_JUMP)."""
    if small_steps:
        return SMALL_BASE + marker / 100
    return float(marker + (MARKER_JUMP if marker % 2 else 0))


def marker_of(value: Any) -> int:
    """The marker a value read back (a point, a message, an OPC UA read) stands for."""
    number = float(value or 0)
    if SMALL_BASE <= number < MARKER_JUMP:
        return round((number - SMALL_BASE) * 100)
    return int(number) % MARKER_JUMP


def time_us(text: str) -> int:
    """A point's ISO time as integer microseconds: the key shared by batches and broadcasts."""
    parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return round(parsed.timestamp() * 1_000_000)


def percentile(values: list[float], q: float) -> float:
    """Linear interpolation between closest ranks (numpy's default)."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    rank = (len(ordered) - 1) * q
    low = int(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


# --- Database, Redis, environment ------------------------------------------------------------


def redis_keys_delete() -> None:
    harness.redis_keys_delete(REDIS_URL, f"{KEY_PREFIX}*")


@dataclass(frozen=True)
class Seeded:
    node_id: int
    device_token: str
    access_token: str  # a vendor member's JWT: may watch the vendor's own nodes


def seed() -> Seeded:
    """One streaming node (approved, configured, idle) with a device token, and a vendor user
    who may watch it, made through the project's services."""
    import django

    django.setup()
    from django.db import connections

    from apps.users.models import Organization
    from apps.users.roles import Role
    from apps.users.services import organization_create, user_create
    from apps.users.tokens import tokens_issue
    from apps.vendors.models import FabricationNode
    from apps.vendors.services import (
        device_credential_issue,
        node_config_save,
        node_decide,
        node_register,
        node_transition,
    )

    forge = organization_create(name="Bench Forge", kind=Organization.Kind.VENDOR)
    site = organization_create(name="Bench Site", kind=Organization.Kind.OPERATOR_SITE)
    admin = user_create(email="admin@live.bench.test", password=None, role=Role.ADMIN)
    vendor = user_create(
        email="vendor@live.bench.test", password=None, role=Role.VENDOR, organization=forge
    )
    node = node_register(by=vendor, vendor=forge, site=site, name="Live-Mill", **NODE_FIELDS)
    node = node_decide(node=node, by=admin, approve=True)
    node_config_save(node=node, by=vendor, config={"bench": "live_latency"})
    node_transition(node=node, to=FabricationNode.Status.IDLE, by=vendor, reason="bench")
    _, device_token = device_credential_issue(node=node, by=vendor, label="bench")
    access = str(tokens_issue(user=vendor, otp_verified=False).access_token)
    connections.close_all()
    return Seeded(node_id=node.pk, device_token=device_token, access_token=access)


# --- What the taps record --------------------------------------------------------------------


@dataclass
class Batch:
    sent: float  # the proxy has the request
    answered: float  # the proxy has daphne's whole answer
    newest_us: int  # the newest point's time: the key of its broadcast


@dataclass
class Record:
    writes: dict[int, float] = field(default_factory=dict)  # marker -> write time
    points: list[tuple[float, int, int]] = field(default_factory=list)  # read, marker, batch
    batches: list[Batch] = field(default_factory=list)
    connections: int = 0  # TCP connections the gateway opened to the proxy
    broadcasts: dict[int, float] = field(default_factory=dict)  # newest point time -> seen
    messages: list[tuple[float, int]] = field(default_factory=list)  # received, marker
    poll_floor: list[tuple[float, int]] = field(default_factory=list)
    subscription_floor: list[tuple[float, int]] = field(default_factory=list)
    hops: list[tuple[float, float]] = field(default_factory=list)  # sent, received
    drops: list[tuple[float, int | None]] = field(default_factory=list)  # websocket closed, code


# --- The machine: an OPC UA server with the simulator's layout plus the marker ---------------


class Machine:
    def __init__(self, port: int) -> None:
        self.port = port
        self.url = f"opc.tcp://{HOST}:{port}/imewe/"
        self.server: Any = None
        self.variables: dict[str, Any] = {}
        self.marker: Any = None
        self.small_steps = False  # see marker_value

    @property
    def signals(self) -> dict[str, str]:
        from edge.simulators.opcua import NODE_IDS

        return {**{s: f"ns=2;s={n}" for s, n in NODE_IDS.items()}, MARKER_SIGNAL: self.marker_id}

    marker_id = f"ns=2;s={MARKER_NODE_ID}"

    async def start(self) -> None:
        from asyncua import ua
        from asyncua.server.server import Server

        from edge.simulators.opcua import NAMESPACE, NODE_IDS

        self.server = Server()
        await self.server.init()
        self.server.set_endpoint(self.url)
        self.server.set_server_name("Imewe live latency bench")
        idx = await self.server.register_namespace(NAMESPACE)
        machine = await self.server.nodes.objects.add_object(idx, "Machine1")
        for signal_name, node_id in [*NODE_IDS.items(), (MARKER_SIGNAL, MARKER_NODE_ID)]:
            self.variables[signal_name] = await machine.add_variable(
                ua.NodeId(ua.String(node_id), ua.Int16(idx)),
                node_id.split(".", 1)[1],
                0.0,
                varianttype=ua.VariantType.Double,
            )
        self.marker = self.variables.pop(MARKER_SIGNAL)
        await self.server.start()

    async def run_model(self) -> None:
        """The simulator's machine model, refreshed every 100 ms like edge.simulators.opcua."""
        from asyncua import ua

        from edge.simulators.machines import MachineModel

        model = MachineModel(kind="cnc_mill", rated_power_kw=7.5, seed=3)
        started = time.monotonic()
        while True:
            values = model.sample(time.monotonic() - started)
            for name, variable in self.variables.items():
                await variable.write_value(float(values.get(name, 0.0)), ua.VariantType.Double)
            await asyncio.sleep(0.1)

    async def write_markers(self, record: Record) -> None:
        from asyncua import ua

        rng = random.Random()
        marker = 0
        while True:
            await asyncio.sleep(rng.uniform(*MARKER_GAP_S))
            marker += 1
            record.writes[marker] = time.time()
            value = marker_value(marker, self.small_steps)
            await self.marker.write_value(value, ua.VariantType.Double)

    async def stop(self) -> None:
        if self.server is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self.server.stop(), 5.0)


# --- Taps and floors (all in this process) ---------------------------------------------------


class BatchTap:
    """A pass-through HTTP proxy between the gateway and daphne. It forwards each request whole
    and decodes the batch only after the answer went back, so it adds well under a millisecond
    on loopback (reported as `proxy hold`)."""

    def __init__(self, upstream_port: int, record: Record) -> None:
        self.upstream_port = upstream_port
        self.record = record
        self.holds: list[float] = []
        self.server: asyncio.Server | None = None
        self.port = 0

    async def start(self) -> None:
        self.server = await asyncio.start_server(self._handle, HOST, 0)
        self.port = int(self.server.sockets[0].getsockname()[1])

    async def stop(self) -> None:
        if self.server is not None:
            self.server.close()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.record.connections += 1
        try:
            while True:  # the gateway's urllib closes after one request; keep-alive would loop
                try:
                    head = await reader.readuntil(b"\r\n\r\n")
                except asyncio.IncompleteReadError:
                    return
                sent = time.time()
                body = await reader.readexactly(content_length(head))
                up_reader, up_writer = await asyncio.open_connection(HOST, self.upstream_port)
                forwarded = time.time()
                up_writer.write(head + body)
                await up_writer.drain()
                answer_head = await up_reader.readuntil(b"\r\n\r\n")
                answer = answer_head + await read_body(up_reader, answer_head)
                answered = time.time()
                up_writer.close()
                writer.write(answer)
                await writer.drain()
                self.holds.append((forwarded - sent) + (time.time() - answered))
                self._note(head, body, sent, answered)
                if b"connection: close" in head.lower():
                    return
        finally:
            writer.close()

    def _note(self, head: bytes, body: bytes, sent: float, answered: float) -> None:
        if b"content-encoding: gzip" in head.lower():
            body = gzip.decompress(body)
        points = orjson.loads(body)
        if isinstance(points, dict):
            points = points.get("points", [])
        if not points:
            return
        stamps = [time_us(p["time"]) for p in points]
        index = len(self.record.batches)
        self.record.batches.append(Batch(sent=sent, answered=answered, newest_us=max(stamps)))
        for point, stamp in zip(points, stamps, strict=True):
            marker = marker_of(point.get(MARKER_SIGNAL))
            self.record.points.append((stamp / 1_000_000, marker, index))


def content_length(head: bytes) -> int:
    for line in head.split(b"\r\n"):
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            return int(value)
    return 0


async def read_body(reader: asyncio.StreamReader, head: bytes) -> bytes:
    if b"content-length:" in head.lower():
        return await reader.readexactly(content_length(head))
    return await reader.read()  # no length: the server closes after the body


async def broadcast_tap(layer: Any, group: str, record: Record, ready: asyncio.Event) -> None:
    """One more member of the node's telemetry group: when each broadcast left daphne."""
    channel = await layer.new_channel()
    await layer.group_add(group, channel)
    ready.set()
    while True:
        message = await layer.receive(channel)
        seen = time.time()
        record.broadcasts.setdefault(time_us(message["payload"]["time"]), seen)


async def hop_floor(layer: Any, record: Record) -> None:
    """One channel-layer hop through the same Redis: group_send -> receive, in one process."""
    group = f"{KEY_PREFIX}.hop"
    channel = await layer.new_channel()
    await layer.group_add(group, channel)
    while True:
        sent = time.time()
        await layer.group_send(group, {"type": "hop", "sent": sent})
        message = await layer.receive(channel)
        record.hops.append((message["sent"], time.time()))
        await asyncio.sleep(HOP_EVERY_S)


async def poll_floor(url: str, signals: dict[str, str], interval: list[float], rec: Record) -> None:
    """The gateway's own OpcUaSource and poll loop, in this process: what polling alone costs.
    `interval` is a one-item list so that each phase can set its own."""
    from edge.sources.opcua import OpcUaSource

    source = OpcUaSource(url, signals)
    await source.connect()
    try:
        while True:
            values = await source.read()
            rec.poll_floor.append((time.time(), marker_of(values[MARKER_SIGNAL])))
            await asyncio.sleep(interval[0])
    finally:
        with contextlib.suppress(Exception):
            await asyncio.wait_for(source.disconnect(), 1.0)


class _DataChange:
    def __init__(self, record: Record) -> None:
        self.record = record

    def datachange_notification(self, node: Any, val: Any, data: Any) -> None:
        self.record.subscription_floor.append((time.time(), marker_of(val)))


async def subscription_floor(url: str, node_id: str, record: Record) -> None:
    """An OPC UA subscription on the marker (10 ms publishing, sampling on change): what the
    protocol can do when it pushes instead of being polled."""
    from asyncua.client.client import Client

    client = Client(url=url, timeout=4.0)
    await client.connect()
    try:
        subscription = await client.create_subscription(10, _DataChange(record))
        await subscription.subscribe_data_change(client.get_node(node_id), sampling_interval=0)
        await asyncio.Event().wait()
    finally:
        with contextlib.suppress(Exception):
            await asyncio.wait_for(client.disconnect(), 1.0)


async def websocket_client(port: int, seeded: Seeded, record: Record, ready: asyncio.Event) -> None:
    """Like a browser: reconnects when daphne closes the socket, and notes each drop (the
    markers of the gap arrive late, which the latencies then show)."""
    from websockets.asyncio.client import connect
    from websockets.exceptions import ConnectionClosed
    from websockets.typing import Origin

    url = f"ws://{HOST}:{port}/ws/telemetry/?nodes={seeded.node_id}&token={seeded.access_token}"
    while True:
        try:
            async with connect(url, origin=Origin(f"http://{HOST}"), ping_interval=None) as ws:
                async for raw in ws:
                    received = time.time()
                    message = orjson.loads(raw)
                    if message.get("type") == "subscribed":
                        ready.set()
                    elif message.get("type") == "telemetry":
                        record.messages.append((received, marker_of(message.get(MARKER_SIGNAL))))
                code = ws.close_code
        except ConnectionClosed as exc:
            code = exc.rcvd.code if exc.rcvd else None
        record.drops.append((time.time(), code))
        print(f"    websocket closed by daphne (code {code}); reconnecting", flush=True)
        await asyncio.sleep(0.5)


# --- Processes -------------------------------------------------------------------------------


class Processes:
    """Every subprocess the run starts, each in a session of its own; `stop` sends SIGINT (the
    gateway then drains its buffer), then SIGTERM, then SIGKILL."""

    def __init__(self, logs: Path) -> None:
        self.logs = logs
        self.running: list[asyncio.subprocess.Process] = []

    async def start(self, name: str, *argv: str, env: dict[str, str]) -> asyncio.subprocess.Process:
        with (self.logs / f"{name}.log").open("ab") as log:
            proc = await asyncio.create_subprocess_exec(
                *argv,
                cwd=ROOT,
                env=env,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=log,
                stderr=log,
                start_new_session=True,
            )
        self.running.append(proc)
        return proc

    async def stop(self, proc: asyncio.subprocess.Process) -> None:
        for sig, wait in ((signal.SIGINT, 5.0), (signal.SIGTERM, 5.0), (signal.SIGKILL, 5.0)):
            if proc.returncode is not None:
                break
            with contextlib.suppress(ProcessLookupError):
                proc.send_signal(sig)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(proc.wait(), wait)
        if proc in self.running:
            self.running.remove(proc)

    async def stop_all(self) -> None:
        for proc in reversed(list(self.running)):
            await self.stop(proc)

    def kill_leftovers(self) -> None:
        """Last resort when the event loop itself failed: the ids this run started, nothing else."""
        for proc in self.running:
            if proc.returncode is None:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(proc.pid, signal.SIGKILL)


async def wait_port(port: int, proc: asyncio.subprocess.Process, what: str) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.returncode is not None:
            raise RuntimeError(f"{what} exited with {proc.returncode} before listening")
        try:
            _, writer = await asyncio.open_connection(HOST, port)
        except OSError:
            await asyncio.sleep(0.1)
            continue
        writer.close()
        return
    raise RuntimeError(f"{what} did not listen on {port} within 60 s")


# --- Phases ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Phase:
    name: str
    interval_ms: int
    forward_every_s: float
    seconds: float
    coalesce_s: float | None = None  # None: the platform as it is; else a what-if consumer
    small_steps: bool = False  # markers step by 1, inside the deadband: the batched path

    @property
    def target_ms(self) -> float:
        return self.interval_ms + TARGET_SLACK_MS


@dataclass
class Trace:
    """One marker through the platform; the parts add up to `total`."""

    total: float
    poll: float | None = None  # write -> the gateway read it (waiting for the poll + the read)
    forward: float | None = None  # read -> its batch was posted (the forwarder's timer)
    ingest: float | None = None  # posted -> broadcast on the channel layer (HTTP, auth, COPY)
    hold: float | None = None  # broadcast held back by the consumer's 250 ms coalescing
    deliver: float | None = None  # channel layer -> consumer -> websocket -> client, unheld
    answered: float | None = None  # posted -> the gateway had its answer


@dataclass
class PhaseResult:
    phase: Phase
    traces: list[Trace]
    lost: int
    poll_floor: list[float]
    subscription_floor: list[float]
    hops: list[float]
    proxy_holds: list[float]
    batches: int
    connections: int
    gateway_cpu: float  # CPU seconds per wall second of the gateway process
    drops: int  # websocket closes by daphne during the phase

    @property
    def totals(self) -> list[float]:
        return [t.total for t in self.traces]


def first_at_least(seen: list[tuple[float, int]], marker: int, after: float) -> float | None:
    """When `marker` or a newer one first showed in `seen` ((time, marker), in time order)."""
    for stamp, value in seen:
        if value >= marker and stamp >= after:
            return stamp
    return None


def trace_markers(
    record: Record, start: float, end: float, coalesce_s: float
) -> tuple[list[Trace], int]:
    markers = sorted(k for k, t in record.writes.items() if start <= t < end)
    points = sorted(record.points)
    messages = sorted(record.messages)
    traces: list[Trace] = []
    lost = 0
    for marker in markers:
        written = record.writes[marker]
        received = first_at_least(messages, marker, written)
        if received is None:
            lost += 1
            continue
        trace = Trace(total=received - written)
        traces.append(trace)
        point = next(((r, b) for r, m, b in points if m >= marker), None)
        if point is None:
            continue
        read, index = point
        batch = record.batches[index]
        trace.poll = read - written
        trace.forward = batch.sent - read
        trace.answered = batch.answered - batch.sent
        broadcast = record.broadcasts.get(batch.newest_us)
        if broadcast is None:
            continue
        trace.ingest = broadcast - batch.sent
        earlier = [r for r, _ in messages if r < received]
        held_until = earlier[-1] + coalesce_s if earlier else 0.0
        # the client can hear a message a hair before the tap hears its broadcast: never < 0
        trace.hold = max(min(held_until - broadcast, received - broadcast), 0.0)
        trace.deliver = received - broadcast - trace.hold
    return traces, lost


def floor_latencies(
    record: Record, seen: list[tuple[float, int]], start: float, end: float
) -> list[float]:
    out = []
    ordered = sorted(seen)
    for marker, written in record.writes.items():
        if start <= written < end:
            stamp = first_at_least(ordered, marker, written)
            if stamp is not None:
                out.append(stamp - written)
    return out


def gateway_config(
    phase: Phase, seeded: Seeded, machine: Machine, proxy_port: int, buffer: Path
) -> dict[str, Any]:
    """The gateway's config: only what the phase changes is set, the rest is the default."""
    config: dict[str, Any] = {
        "upstream": {"url": f"http://{HOST}:{proxy_port}", "batch_size": 1000},
        "buffer": {"path": str(buffer)},
        "devices": [
            {
                "node": seeded.node_id,
                "token": seeded.device_token,
                "protocol": "opcua",
                "url": machine.url,
                "interval_ms": phase.interval_ms,
                "signals": machine.signals,
            }
        ],
    }
    if phase.forward_every_s != DEFAULT_FORWARD_EVERY_S:
        config["forward_every_s"] = phase.forward_every_s
    return config


@dataclass
class Bench:
    seeded: Seeded
    work: Path
    env: dict[str, str]
    procs: Processes
    machine: Machine
    proxy: BatchTap
    record: Record
    floor_interval: list[float]
    watchdogs: list[asyncio.Task[Any]]
    daphne: asyncio.subprocess.Process | None = None
    ingest: asyncio.subprocess.Process | None = None
    websocket: asyncio.Task[None] | None = None

    def check(self) -> None:
        for task in [*self.watchdogs, *([self.websocket] if self.websocket else [])]:
            if task.done():
                task.result()  # re-raises what ended it
                raise RuntimeError("a background task ended")

    async def serve(self, coalesce_s: float | None) -> None:
        """(Re)start daphne and the websocket client: the platform as it is, or with the
        consumer's coalescing interval set to `coalesce_s` (what-if)."""
        await self.unserve()
        env, app, name = self.env, "imewe.asgi:application", "daphne"
        if coalesce_s is not None:
            env = {**env, "BENCH_MIN_INTERVAL_S": str(coalesce_s), "PYTHONPATH": str(ROOT)}
            app, name = "bench.live_latency:whatif_application", f"daphne-coalesce-{coalesce_s:g}"
        # The production topology: the gateway's batches go to an ingest daphne, the browser's
        # websocket to another, and the point crosses between them through Redis.
        ingest_port = harness.free_port()
        self.ingest = await self.procs.start(
            "daphne-ingest",
            str(BIN / "daphne"),
            "-b",
            HOST,
            "-p",
            str(ingest_port),
            "imewe.asgi:application",
            env={**self.env, "IMEWE_PROCESS_ROLE": "ingest"},
        )
        port = harness.free_port()
        self.daphne = await self.procs.start(
            name,
            str(BIN / "daphne"),
            "-b",
            HOST,
            "-p",
            str(port),
            app,
            env={**env, "IMEWE_PROCESS_ROLE": "ws"},
        )
        await wait_port(ingest_port, self.ingest, "daphne-ingest")
        await wait_port(port, self.daphne, name)
        self.proxy.upstream_port = ingest_port
        subscribed = asyncio.Event()
        self.websocket = asyncio.create_task(
            websocket_client(port, self.seeded, self.record, subscribed)
        )
        deadline = time.monotonic() + 30
        while not subscribed.is_set():
            if time.monotonic() > deadline:
                raise RuntimeError("the websocket client did not subscribe")
            await self.sleep(0.1)

    async def unserve(self) -> None:
        if self.websocket is not None:
            self.websocket.cancel()
            await asyncio.wait([self.websocket], timeout=5)
            self.websocket = None
        if self.daphne is not None:
            await self.procs.stop(self.daphne)
            self.daphne = None
        if self.ingest is not None:
            await self.procs.stop(self.ingest)
            self.ingest = None

    async def sleep(self, seconds: float) -> None:
        deadline = time.monotonic() + seconds
        while (left := deadline - time.monotonic()) > 0:
            self.check()
            await asyncio.sleep(min(left, 0.2))

    async def run_phase(self, phase: Phase) -> PhaseResult:
        self.floor_interval[0] = phase.interval_ms / 1000
        self.machine.small_steps = phase.small_steps
        tag = f"{phase.interval_ms}ms-{phase.forward_every_s:g}s{'-small' * phase.small_steps}"
        config = self.work / f"edge-{tag}.yaml"
        config.write_text(
            yaml.safe_dump(
                gateway_config(
                    phase, self.seeded, self.machine, self.proxy.port, self.work / f"buf-{tag}"
                )
            )
        )
        batches, connections = len(self.record.batches), self.record.connections
        started = time.time()
        gateway = await self.procs.start(
            f"gateway-{tag}",
            sys.executable,
            "-m",
            "edge.gateway",
            "--config",
            str(config),
            env=self.env,
        )
        try:
            deadline = time.monotonic() + 30
            while not any(r > started for r, _ in self.record.messages):
                if gateway.returncode is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"no live message from the gateway ({tag}); see its log")
                await self.sleep(0.1)
            await self.sleep(WARMUP_S)
            start = time.time()
            await self.sleep(phase.seconds)
            end = time.time()
            # the last markers still travel: poll, forward timer, ingest, coalescing, slack
            await self.sleep(phase.interval_ms / 1000 + phase.forward_every_s + 1.5)
            cpu = harness.cpu_seconds(gateway.pid) / (time.time() - started)
        finally:
            await self.procs.stop(gateway)
        coalesce_s = COALESCE_S if phase.coalesce_s is None else phase.coalesce_s
        traces, lost = trace_markers(self.record, start, end, coalesce_s)
        return PhaseResult(
            phase=phase,
            traces=traces,
            lost=lost,
            poll_floor=floor_latencies(self.record, self.record.poll_floor, start, end),
            subscription_floor=floor_latencies(
                self.record, self.record.subscription_floor, start, end
            ),
            hops=[r - s for s, r in self.record.hops if start <= s < end],
            proxy_holds=list(self.proxy.holds),
            batches=len(self.record.batches) - batches,
            connections=self.record.connections - connections,
            gateway_cpu=cpu,
            drops=sum(1 for t, _ in self.record.drops if started <= t),
        )


async def orchestrate(
    seeded: Seeded, env: dict[str, str], work: Path, phases: list[Phase]
) -> list[PhaseResult]:
    from channels_redis.core import RedisChannelLayer

    from apps.telemetry.services import telemetry_group

    record = Record()
    procs = Processes(work)
    machine = Machine(harness.free_port())
    # redis-py 8 reads with a 5 s socket timeout, the same as channels-redis's BZPOPMIN wait:
    # a longer one keeps these taps alive while no telemetry flows (between phases).
    layer = RedisChannelLayer(
        hosts=[{"address": REDIS_URL, "socket_timeout": 15}],
        prefix=KEY_PREFIX,
        capacity=1000,
        expiry=30,
    )
    tasks: list[asyncio.Task[Any]] = []
    proxy: BatchTap | None = None
    bench: Bench | None = None
    try:
        proxy = BatchTap(0, record)  # its upstream is set when daphne starts
        await proxy.start()
        await machine.start()
        tapped = asyncio.Event()
        floor_interval = [phases[0].interval_ms / 1000]
        tasks = [
            asyncio.create_task(machine.run_model()),
            asyncio.create_task(
                broadcast_tap(layer, telemetry_group(seeded.node_id), record, tapped)
            ),
            asyncio.create_task(hop_floor(layer, record)),
            asyncio.create_task(poll_floor(machine.url, machine.signals, floor_interval, record)),
            asyncio.create_task(subscription_floor(machine.url, machine.marker_id, record)),
        ]
        bench = Bench(seeded, work, env, procs, machine, proxy, record, floor_interval, tasks)
        deadline = time.monotonic() + 30
        while not tapped.is_set():
            if time.monotonic() > deadline:
                raise RuntimeError("the channel-layer tap did not subscribe")
            await bench.sleep(0.1)
        tasks.append(asyncio.create_task(machine.write_markers(record)))
        results = []
        serving: tuple[float | None] | None = None
        for phase in phases:
            if serving != (phase.coalesce_s,):
                await bench.serve(phase.coalesce_s)
                serving = (phase.coalesce_s,)
            result = await bench.run_phase(phase)
            results.append(result)
            raw = orjson.dumps(dataclasses.asdict(record), option=orjson.OPT_NON_STR_KEYS)
            (work / "record.json").write_bytes(raw)
            print(phase_line(result), flush=True)
        return results
    finally:
        # Subprocesses first (the gateway drains into a still running daphne), then this
        # process's clients, then the OPC UA server they talk to; every wait is bounded.
        if bench is not None:
            await bench.unserve()
        await procs.stop_all()
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.wait(tasks, timeout=5)
        if proxy is not None:
            await proxy.stop()
        await machine.stop()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(layer.flush(), 5)
        procs.kill_leftovers()


async def run(
    seeded: Seeded, env: dict[str, str], work: Path, phases: list[Phase]
) -> list[PhaseResult]:
    """`orchestrate`, cancelled (so its clean-up runs) on SIGINT or SIGTERM."""
    loop = asyncio.get_running_loop()
    main_task = asyncio.current_task()
    assert main_task is not None
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, main_task.cancel)
    try:
        return await orchestrate(seeded, env, work, phases)
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)


def __getattr__(name: str) -> Any:
    """`daphne bench.live_latency:whatif_application`: the platform with the websocket
    consumer's coalescing interval (MIN_INTERVAL_S) taken from BENCH_MIN_INTERVAL_S, a what-if
    run in daphne's memory only; nothing under apps/ changes."""
    if name != "whatif_application":
        raise AttributeError(name)
    from imewe.asgi import application  # first: it sets Django up and imports the consumer

    consumers = importlib.import_module("apps.telemetry.consumers")
    consumers.MIN_INTERVAL_S = float(os.environ["BENCH_MIN_INTERVAL_S"])
    return application


# --- Report ----------------------------------------------------------------------------------


def ms(seconds: float) -> str:
    return str(int(round(seconds * 1000))) if seconds == seconds else "-"


def stats_cells(values: list[float]) -> str:
    return (
        f"{len(values):>4} {ms(percentile(values, 0.5)):>6} {ms(percentile(values, 0.99)):>6} "
        f"{ms(max(values) if values else float('nan')):>6}"
    )


def verdict(result: PhaseResult) -> str:
    p99 = percentile(result.totals, 0.99) * 1000
    if p99 != p99:
        return "no data"
    if result.phase.small_steps:
        return "batched by design (no target)"
    gap = p99 - result.phase.target_ms
    return "PASS" if gap <= 0 else f"MISS by {gap:.0f} ms"


def phase_line(result: PhaseResult) -> str:
    p = result.phase
    lost = f", {result.lost} lost" if result.lost else ""
    lost += f", websocket dropped {result.drops}x" if result.drops else ""
    return (
        f"  {p.name:<22} poll {p.interval_ms:>4} ms  forward {p.forward_every_s:>5.2f} s  "
        f"{stats_cells(result.totals)}  target {p.target_ms:>4.0f}  {verdict(result)}{lost}"
    )


PARTS: list[tuple[str, Callable[[Trace], float | None]]] = [
    ("poll wait (write -> gateway read)", lambda t: t.poll),
    ("forward wait (read -> batch posted)", lambda t: t.forward),
    ("ingest (posted -> broadcast)", lambda t: t.ingest),
    ("coalescing hold (consumer, 250 ms)", lambda t: t.hold),
    ("delivery (broadcast -> client)", lambda t: t.deliver),
]


def breakdown(result: PhaseResult) -> Iterator[str]:
    full = [t for t in result.traces if t.deliver is not None]
    yield (
        f"  {result.phase.name}: {len(full)} of {len(result.traces)} markers traced through "
        "every tap (ms)"
    )
    yield f"    {'part':<38} {'mean':>6} {'p50':>6} {'p99':>6} {'max':>6}"
    for label, part in PARTS:
        values = [v for t in full if (v := part(t)) is not None]
        mean = statistics.fmean(values) if values else float("nan")
        yield (
            f"    {label:<38} {ms(mean):>6} {ms(percentile(values, 0.5)):>6} "
            f"{ms(percentile(values, 0.99)):>6} {ms(max(values) if values else float('nan')):>6}"
        )
    totals = [t.total for t in full]
    mean = statistics.fmean(totals) if totals else float("nan")
    yield (
        f"    {'total':<38} {ms(mean):>6} {ms(percentile(totals, 0.5)):>6} "
        f"{ms(percentile(totals, 0.99)):>6} {ms(max(totals) if totals else float('nan')):>6}"
    )
    answered = [t.answered for t in full if t.answered is not None]
    yield (
        f"    (the gateway's POST took p50 {ms(percentile(answered, 0.5))} / p99 "
        f"{ms(percentile(answered, 0.99))} ms; {result.batches} batches over "
        f"{result.connections} new TCP connections; gateway CPU {result.gateway_cpu:.0%})"
    )


def report(results: list[PhaseResult]) -> str:
    lines = ["", "floors on the same marker writes (ms)", f"  {'':<36}    n    p50    p99    max"]
    for result in results:
        label = f"OPC UA poll @ {result.phase.interval_ms} ms"
        lines.append(f"  {label:<36}{stats_cells(result.poll_floor)}   ({result.phase.name})")
    every = [v for r in results for v in r.subscription_floor]
    hops = [v for r in results for v in r.hops]
    holds = results[-1].proxy_holds if results else []
    lines.append(f"  {'OPC UA subscription (10 ms publish)':<36}" + stats_cells(every))
    lines.append(f"  {'channel layer hop (Redis)':<36}" + stats_cells(hops))
    lines.append(f"  {'proxy hold (this tap, added)':<36}" + stats_cells(holds))
    lines += ["", "where the time goes"]
    for result in results:
        lines += list(breakdown(result))
    return "\n".join(lines)


# --- Main ------------------------------------------------------------------------------------


def plan(args: argparse.Namespace) -> list[Phase]:
    seconds = args.seconds if args.seconds is not None else (8.0 if args.quick else 60.0)
    sweep_s = args.sweep_seconds if args.sweep_seconds is not None else (6.0 if args.quick else 20)
    interval = args.interval_ms
    phases = [Phase("as configured", interval, args.forward_every_s, seconds)]
    if args.no_sweep:
        return phases
    if not args.quick:
        phases.append(
            Phase("small steps", interval, args.forward_every_s, sweep_s, small_steps=True)
        )
    forwards = [0.05] if args.quick else [0.25, 0.1, 0.05]
    phases += [
        Phase(f"forward {f:g} s", interval, f, sweep_s)
        for f in forwards
        if f != args.forward_every_s
    ]
    if args.quick:
        return phases
    if interval != 100:
        phases.append(Phase("poll 100", 100, args.forward_every_s, sweep_s))
    if not args.no_what_if:  # the consumer without its 250 ms coalescing (daphne restarted)
        phases += [
            Phase("what-if: no coalescing", interval, 0.05, sweep_s, coalesce_s=0.0),
            Phase("  same, forward 0.01 s", interval, 0.01, sweep_s, coalesce_s=0.0),
            Phase("  same, poll 100 ms", 100, 0.01, sweep_s, coalesce_s=0.0),
        ]
    return phases


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench.live_latency",
        description="OPC UA value change -> edge gateway -> daphne -> websocket client latency.",
    )
    parser.add_argument(
        "--seconds", type=float, default=None, help="measured seconds of the main phase (60)"
    )
    parser.add_argument(
        "--interval-ms", type=int, default=250, help="the gateway's poll interval (250)"
    )
    parser.add_argument(
        "--forward-every-s",
        type=float,
        default=DEFAULT_FORWARD_EVERY_S,
        help="the gateway's forward interval of batched points (1.0, its default)",
    )
    parser.add_argument(
        "--sweep-seconds", type=float, default=None, help="measured seconds per sweep phase (20)"
    )
    parser.add_argument("--no-sweep", action="store_true", help="only the main phase")
    parser.add_argument(
        "--no-what-if", action="store_true", help="skip the phases without coalescing"
    )
    parser.add_argument(
        "--quick", action="store_true", help="8 s main phase and one 6 s sweep phase"
    )
    parser.add_argument("--keep-db", action="store_true", help="keep imewe_bench_live afterwards")
    args = parser.parse_args(argv)
    if not 100 <= args.interval_ms <= 60_000:
        parser.error("--interval-ms must be 100-60000 (the gateway's own limits)")
    if args.forward_every_s <= 0:
        parser.error("--forward-every-s must be positive")
    return args


def _interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt  # SIGTERM while setting up: unwind, so the database is dropped


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    phases = plan(args)
    signal.signal(signal.SIGTERM, _interrupt)  # during the run: `run` cancels instead
    logging.basicConfig(level=logging.WARNING)
    logging.getLogger("asyncua").setLevel(logging.ERROR)  # the server's per-session chatter
    work = Path(tempfile.mkdtemp(prefix="live_latency-"))
    env = server_env(work / "var")
    os.environ.update(env, DB_POOL="0")  # the seeding below runs Django in this process
    load = os.getloadavg()
    print(
        f"live_latency: {os.cpu_count()} CPUs, load {load[0]:.1f} at start "
        f"(other benchmarks may share the machine); logs and record.json in {work}",
        flush=True,
    )
    try:
        began = time.perf_counter()
        redis_keys_delete()
        DATABASE.recreate()
        harness.migrate(env)
        seeded = seed()
        print(
            f"  set up database, node {seeded.node_id} and users in "
            f"{time.perf_counter() - began:.1f} s",
            flush=True,
        )
        print(
            f"  markers every {MARKER_GAP_S[0]}-{MARKER_GAP_S[1]} s; latency = websocket "
            "receive - OPC UA write, of the marker or a newer one (ms)\n"
            f"  {'phase':<22} {'':>38}    n    p50    p99    max",
            flush=True,
        )
        try:
            results = asyncio.run(run(seeded, env, work, phases))
        except (asyncio.CancelledError, KeyboardInterrupt):
            print("interrupted: every process this run started is stopped", flush=True)
            raise SystemExit(130) from None
        print(report(results))
        print(
            f"\nload {os.getloadavg()[0]:.1f} at the end; total {time.perf_counter() - began:.0f} s"
        )
    finally:
        with contextlib.suppress(Exception):
            redis_keys_delete()
        if not args.keep_db:
            with contextlib.suppress(Exception):
                DATABASE.drop()


if __name__ == "__main__":
    main()
