"""Telemetry ingest benchmark: the batch API served by a real daphne, the MQTT bridge against the
local Mosquitto, and, in the same run, raw binary COPY of equivalent rows as the baseline.

    .venv/bin/python -m bench.ingest [--points N] [--quick] [--profile DIR] [--keep-db]

Everything runs against a database of its own (imewe_bench_ingest, dropped and created anew)
and Redis DB 7. The table is truncated before every phase, and every generated point has an
instant of its own, so no phase meets another's rows or duplicates. A missed target is printed
as MISS; the exit status stays 0 (only a broken run fails).
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import gzip
import http.client
import math
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import paho.mqtt.client as mqtt
import psycopg
import redis
from psycopg.types.json import Jsonb

from bench import harness

ROOT = harness.ROOT
BIN = Path(sys.executable).parent  # the virtualenv's bin/: daphne and py-spy live there
DATABASE = harness.BenchDatabase("imewe_bench_ingest")
REDIS_URL = "redis://127.0.0.1:6379/7"
MQTT_HOST, MQTT_PORT = "127.0.0.1", 1883
BATCH_PATH = "/api/v1/telemetry/batch/"
# Mosquitto queues at most 1,000 QoS 1 messages per subscriber (max_queued_messages) and drops
# the rest, so the publishers never run further ahead of the stored rows than this.
MAX_BACKLOG_MESSAGES = 600

API_MIN_RATIO = 0.5
API_MIN_RATE = 100_000
BRIDGE_MIN_RATE = 60_000  # per bridge process
SCALING_MIN = 0.8  # N bridge processes on N free cores: at least 0.8 x N times one
P95_MAX_MS = 10.0


# --- Points ----------------------------------------------------------------------------------


class Clock:
    """Hands out instants 1 ms apart, never the same one twice in a run."""

    def __init__(self) -> None:
        self.next = datetime.now(UTC) - timedelta(days=2)

    def take(self, n: int) -> list[datetime]:
        start, step = self.next, timedelta(milliseconds=1)
        self.next = start + n * step
        return [start + i * step for i in range(n)]


def server_env(var_dir: Path) -> dict[str, str]:
    return harness.server_env(
        database=DATABASE,
        redis_url=REDIS_URL,
        key_prefix="imewe-bench",
        var_dir=var_dir,
        API_THROTTLE_DEVICE="1000000/second",
        LOG_LEVEL="WARNING",
    )


def signals(i: int) -> dict[str, float]:
    """What a CNC mill's gateway reports (edge/simulators/machines.py), varied a little."""
    return {
        "spindle_rpm": 9000.0 + (i % 500),
        "torque_nm": 12.0 + (i % 37) * 0.25,
        "power_kw": 5.5 + (i % 11) * 0.1,
        "temperature_c": 41.0 + (i % 97) * 0.05,
        "vibration_mm_s": 1.2 + (i % 13) * 0.05,
    }


def points(node_id: int, times: list[datetime]) -> list[dict[str, Any]]:
    return [{"node": node_id, "time": t.isoformat(), **signals(i)} for i, t in enumerate(times)]


def copy_rows(node_id: int, times: list[datetime], columns: tuple[str, ...]) -> list[tuple]:
    """The rows telemetry_ingest would COPY for `points(node_id, times)`."""
    rows = []
    for i, t in enumerate(times):
        values = {"node_id": node_id, "time": t, "extra": Jsonb({}), **signals(i)}
        rows.append(tuple(values.get(c) for c in columns))
    return rows


def rounded(total: int, unit: int) -> int:
    return max(unit, math.ceil(total / unit) * unit)


# --- Database --------------------------------------------------------------------------------


def table_reset(db: psycopg.Connection) -> None:
    """An empty table for the next phase, and no checkpoint pending from the previous one."""
    db.execute("TRUNCATE telemetry_point")
    db.execute("CHECKPOINT")


def row_count(db: psycopg.Connection) -> int:
    row = db.execute("SELECT count(*) FROM telemetry_point").fetchone()
    assert row is not None
    return int(row[0])


def storage_layout(db: psycopg.Connection) -> str:
    sql = "SELECT indexdef FROM pg_indexes WHERE tablename = 'telemetry_point' ORDER BY 1"
    indexes = [r[0] for r in db.execute(sql)]
    version = db.execute("SHOW server_version").fetchone()
    kinds = ", ".join(i.split(" USING ")[1] for i in indexes if " USING " in i)
    return f"PostgreSQL {version[0] if version else '?'}; telemetry_point indexes: {kinds}"


# --- Fixtures through the app's own services -------------------------------------------------


@dataclass(frozen=True)
class Device:
    node_id: int
    token: str


def devices_create(count: int) -> list[Device]:
    """A vendor with `count` approved, idle nodes, each with a device token."""
    from apps.users.models import Organization
    from apps.users.roles import Role
    from apps.users.services import organization_create, user_create
    from apps.vendors.models import FabricationNode
    from apps.vendors.services import (
        device_credential_issue,
        node_config_save,
        node_decide,
        node_register,
        node_transition,
    )

    vendor = organization_create(name="Bench Forge", kind=Organization.Kind.VENDOR)
    seller = user_create(
        email="vendor@bench.test", password=None, role=Role.VENDOR, organization=vendor
    )
    admin = user_create(email="admin@bench.test", password=None, role=Role.ADMIN)
    devices = []
    for n in range(count):
        node = node_register(
            by=seller,
            vendor=vendor,
            name=f"Bench-Mill-{n:02d}",
            kind=FabricationNode.Kind.CNC_MILL,
            build_x_mm=600,
            build_y_mm=400,
            build_z_mm=300,
            rated_power_kw=7.5,
        )
        node = node_decide(node=node, by=admin, approve=True)
        node_config_save(node=node, by=seller, config={"bench": True})
        node = node_transition(
            node=node, to=FabricationNode.Status.IDLE, by=seller, reason="benchmark"
        )
        _, token = device_credential_issue(node=node, by=seller, label="bench")
        devices.append(Device(node.pk, token))
    return devices


# --- Subprocesses ----------------------------------------------------------------------------


@dataclass
class Service:
    name: str
    process: subprocess.Popen[bytes]
    log: Path
    stop_signal: int

    def stop(self) -> None:
        if self.process.poll() is not None:
            return
        self.process.send_signal(self.stop_signal)
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=10)

    def tail(self, lines: int = 30) -> str:
        text = self.log.read_text(errors="replace") if self.log.exists() else ""
        return "\n".join(text.splitlines()[-lines:])

    def check_alive(self) -> None:
        if self.process.poll() is not None:
            raise RuntimeError(f"{self.name} exited ({self.process.returncode}):\n{self.tail()}")


def service_start(
    name: str, cmd: list[str], env: dict[str, str], logs: Path, stop_signal: int
) -> Service:
    log = logs / f"{name}.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            cmd, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
    return Service(name, process, log, stop_signal)


def wait_until(
    predicate: Callable[[], bool], timeout: float, what: str, service: Service | None = None
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if service is not None:
            service.check_alive()
        if predicate():
            return
        time.sleep(0.05)
    detail = f"\n{service.tail()}" if service is not None else ""
    raise RuntimeError(f"Timed out after {timeout:.0f} s waiting for {what}.{detail}")


def has_logged(service: Service, text: str) -> bool:
    return text in service.log.read_text(errors="replace")


def port_open(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


class Profiler:
    """py-spy sampling the thread that holds the GIL of a server process during one phase
    (--profile DIR); without DIR, nothing. The samples show where the process's Python CPU goes:
    one GIL means one core at most, whatever the threads."""

    RATE = 200

    def __init__(self, directory: Path | None) -> None:
        self.directory = directory
        self.files: list[tuple[Path, float]] = []  # raw file, seconds sampled

    @contextlib.contextmanager
    def record(self, name: str, service: Service) -> Iterator[None]:
        if self.directory is None:
            yield
            return
        out = self.directory / f"{name}.txt"
        spy = subprocess.Popen(
            [str(BIN / "py-spy"), "record", "--pid", str(service.process.pid), "--gil"]
            + ["--rate", str(self.RATE), "--format", "raw", "--nolineno", "-o", str(out)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        time.sleep(0.5)  # attached before the phase starts
        start = time.perf_counter()
        try:
            yield
        finally:
            seconds = time.perf_counter() - start
            spy.send_signal(signal.SIGINT)
            spy.wait(timeout=30)
            self.files.append((out, seconds))


def profile_summary(path: Path, seconds: float, top: int = 12) -> str:
    """Leaf frames, and project frames inclusive, of a py-spy raw (collapsed) file."""
    own: Counter[str] = Counter()
    project: Counter[str] = Counter()
    total = 0
    for line in path.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        frames = stack.split(";")
        n = int(count)
        total += n
        own[frames[-1]] += n
        for frame in set(frames):
            if "(apps/" in frame:
                project[frame] += n
    if not total:
        return f"{path.name}: no samples"
    held = total / (Profiler.RATE * seconds)
    lines = [
        f"{path.name}: {total} samples; the GIL was held ~{held:.0%} of the phase",
        "  where the GIL holder was (leaf frame):",
    ]
    lines += [f"    {n / total:6.1%}  {f}" for f, n in own.most_common(top)]
    lines.append("  project code, inclusive:")
    lines += [f"    {n / total:6.1%}  {f}" for f, n in project.most_common(top)]
    return "\n".join(lines)


# --- What a phase costs the server ----------------------------------------------------------


@dataclass(frozen=True)
class Usage:
    cpu_s: float  # user + system time of the server process, all threads
    pg_sessions: int  # sessions ever opened on the bench database
    redis_connections: int  # connections the Redis server ever accepted (all clients)


@dataclass
class Load:
    """What one phase cost the server process serving it."""

    label: str
    wall_s: float
    requests: int
    cpu_s: float
    pg_sessions: int
    redis_connections: int


def process_cpu(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class Meter:
    def __init__(self, db: psycopg.Connection) -> None:
        self.db = db
        self.redis = redis.Redis.from_url(REDIS_URL)

    def read(self, pid: int) -> Usage:
        sql = "SELECT sessions FROM pg_stat_database WHERE datname = %s"
        row = self.db.execute(sql, [DATABASE.name]).fetchone()
        stats: Any = self.redis.info("stats")
        return Usage(
            process_cpu(pid), int(row[0]) if row else 0, stats["total_connections_received"]
        )

    def load(self, label: str, pid: int, before: Usage, wall_s: float, requests: int) -> Load:
        cpu = process_cpu(pid)
        time.sleep(1)  # sessions are counted when they end; let the last ones end
        after = self.read(pid)
        return Load(
            label,
            wall_s,
            requests,
            cpu - before.cpu_s,
            after.pg_sessions - before.pg_sessions,
            after.redis_connections - before.redis_connections,
        )

    def close(self) -> None:
        self.redis.close()


# --- Phases ----------------------------------------------------------------------------------


@dataclass
class Figure:
    label: str
    points: int
    seconds: float
    note: str = ""

    @property
    def rate(self) -> float:
        return self.points / self.seconds if self.seconds else 0.0


@dataclass
class Results:
    figures: dict[str, Figure] = field(default_factory=dict)
    loads: list[Load] = field(default_factory=list)
    latency_ms: list[float] = field(default_factory=list)
    copy_latency_ms: dict[str, list[float]] = field(default_factory=dict)
    synchronous_commit: bool = True
    mqtt_loads: list[MqttLoad] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def copy_baseline(
    db: psycopg.Connection, devices: list[Device], clock: Clock, total: int, chunk: int
) -> Figure:
    """Raw binary COPY over one connection, `chunk` rows per COPY and transaction."""
    from apps.telemetry.services import COLUMNS, COPY_TYPES

    share = total // len(devices)
    per_device = []
    for device in devices:
        rows = copy_rows(device.node_id, clock.take(share), COLUMNS)
        per_device.append([rows[i : i + chunk] for i in range(0, len(rows), chunk)])
    chunks = [c for turn in zip(*per_device, strict=True) for c in turn]  # as two clients would
    sql = f"COPY telemetry_point ({', '.join(COLUMNS)}) FROM STDIN (FORMAT BINARY)"
    table_reset(db)
    start = time.perf_counter()
    with db.cursor() as cursor:
        for rows in chunks:
            with db.transaction(), cursor.copy(sql) as copy:
                copy.set_types(COPY_TYPES)
                for row in rows:
                    copy.write_row(row)
    seconds = time.perf_counter() - start
    stored = row_count(db)
    return Figure(f"raw COPY binary, 1 conn, {chunk:,} rows/txn", stored, seconds)


def settings_flag(env: dict[str, str], name: str, default: bool) -> bool:
    """A boolean setting as the servers started with `env` read it."""
    value = env.get(name, "").lower()
    return default if not value else value in {"1", "true", "yes", "on"}


def copy_latency_baseline(
    db: psycopg.Connection, device: Device, clock: Clock, requests: int, synchronous: bool
) -> list[float]:
    """Milliseconds per raw 100-row binary COPY in its own transaction, sequential, over one
    connection to the same database: the floor under a 100-point request (PostgreSQL taking
    the rows and, with `synchronous`, flushing its WAL at commit), measured in the same run as
    the API."""
    from apps.telemetry.services import ASYNCHRONOUS_COMMIT_SQL, COLUMNS, COPY_TYPES

    sql = f"COPY telemetry_point ({', '.join(COLUMNS)}) FROM STDIN (FORMAT BINARY)"
    batches = [copy_rows(device.node_id, clock.take(100), COLUMNS) for _ in range(requests + 20)]
    timings = []
    with db.cursor() as cursor:
        for n, rows in enumerate(batches):
            start = time.perf_counter()
            with db.transaction():
                if not synchronous:
                    cursor.execute(ASYNCHRONOUS_COMMIT_SQL)
                with cursor.copy(sql) as copy:
                    copy.set_types(COPY_TYPES)
                    for row in rows:
                        copy.write_row(row)
            if n >= 20:  # as the API phase: 20 unmeasured warm-up batches
                timings.append((time.perf_counter() - start) * 1000)
    return timings


def request_body(batch: list[dict[str, Any]], compress: bool) -> bytes:
    body = orjson.dumps(batch)
    return gzip.compress(body, compresslevel=6) if compress else body


class ApiClient:
    """One device posting batches over a kept-alive HTTP/1.1 connection."""

    def __init__(self, port: int, device: Device, compress: bool) -> None:
        self.port = port
        self.headers = {
            "Content-Type": "application/json",
            "Authorization": f"Device {device.token}",
        }
        if compress:
            self.headers["Content-Encoding"] = "gzip"
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)

    def post(self, body: bytes) -> dict[str, Any]:
        try:
            self.conn.request("POST", BATCH_PATH, body, self.headers)
            response = self.conn.getresponse()
        except (ConnectionError, http.client.HTTPException):
            self.conn.close()  # the server closed a kept-alive connection: once more, anew
            self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=120)
            self.conn.request("POST", BATCH_PATH, body, self.headers)
            response = self.conn.getresponse()
        content = response.read()
        if response.status != 200:
            raise RuntimeError(f"HTTP {response.status}: {content[:500]!r}")
        return dict(orjson.loads(content))

    def close(self) -> None:
        self.conn.close()


def api_throughput(
    db: psycopg.Connection,
    meter: Meter,
    server: Service,
    port: int,
    devices: list[Device],
    clock: Clock,
    total: int,
    batch: int,
    compress: bool,
) -> tuple[Figure, Load]:
    """len(devices) clients post `total` points concurrently, `batch` points per request."""
    share = total // len(devices)
    bodies = {
        d.node_id: [
            request_body(points(d.node_id, clock.take(batch)), compress)
            for _ in range(share // batch)
        ]
        for d in devices
    }
    table_reset(db)
    accepted = Counter[int]()
    errors: list[BaseException] = []
    ready = threading.Barrier(len(devices) + 1)

    def work(device: Device) -> None:
        client = ApiClient(port, device, compress)
        try:
            ready.wait()
            for body in bodies[device.node_id]:
                accepted[device.node_id] += int(client.post(body)["accepted"])
        except BaseException as exc:  # reported by the main thread
            errors.append(exc)
        finally:
            client.close()

    workers = [threading.Thread(target=work, args=(d,)) for d in devices]
    for w in workers:
        w.start()
    before = meter.read(server.process.pid)
    ready.wait()
    start = time.perf_counter()
    for w in workers:
        w.join()
    seconds = time.perf_counter() - start
    if errors:
        raise RuntimeError(f"API phase failed: {errors[0]!r}")
    label = f"API batch {batch:,}, {len(devices)} clients"
    load = meter.load(f"daphne: {label}", server.process.pid, before, seconds, total // batch)
    stored = row_count(db)
    note = "" if stored == total == sum(accepted.values()) else f"stored {stored:,} of {total:,}"
    return Figure(label, stored, seconds, note), load


def api_latency(
    meter: Meter,
    server: Service,
    port: int,
    device: Device,
    clock: Clock,
    requests: int,
    compress: bool,
) -> tuple[list[float], Load]:
    """Milliseconds per sequential 100-point request (after 20 unmeasured warm-up requests)."""
    bodies = [
        request_body(points(device.node_id, clock.take(100)), compress)
        for _ in range(requests + 20)
    ]
    client = ApiClient(port, device, compress)
    timings = []
    try:
        for n, body in enumerate(bodies):
            if n == 20:
                before = meter.read(server.process.pid)
                first = time.perf_counter()
            start = time.perf_counter()
            report = client.post(body)
            elapsed = time.perf_counter() - start
            if report["accepted"] != 100:
                raise RuntimeError(f"Latency request stored {report['accepted']} of 100 points")
            if n >= 20:
                timings.append(elapsed * 1000)
        wall = time.perf_counter() - first
    finally:
        client.close()
    load = meter.load("daphne: API batch 100, 1 client", server.process.pid, before, wall, requests)
    return timings, load


def mqtt_client(name: str, *, clean: bool = True) -> mqtt.Client:
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=name, clean_session=clean)
    client.connect(MQTT_HOST, MQTT_PORT, keepalive=60)
    client.loop_start()
    return client


def mqtt_session_forget(client_id: str) -> None:
    """The bridge keeps a persistent session (clean_session=False); end it at the broker."""
    client = mqtt_client(client_id, clean=True)
    time.sleep(0.2)
    client.disconnect()
    client.loop_stop()


@dataclass(frozen=True)
class CpuCensus:
    """CPU seconds so far of everything an MQTT phase runs on, to tell which one is the ceiling."""

    bridges: float
    broker: float
    postgres: float
    publishers: float  # this process: the publishers' network threads and the row counting
    machine_busy: float  # every core, every process (other work on the machine included)
    machine_total: float


def broker_pid() -> int | None:
    found = subprocess.run(["pgrep", "-x", "mosquitto"], capture_output=True, text=True)
    pids = found.stdout.split()
    return int(pids[0]) if pids else None


def postgres_pids(db: psycopg.Connection) -> list[int]:
    """The bench database's backends (not this process's own) and the writers all share."""
    sql = (
        "SELECT pid FROM pg_stat_activity WHERE (datname = %s AND pid <> pg_backend_pid())"
        " OR backend_type IN ('walwriter', 'checkpointer', 'background writer')"
    )
    return [int(r[0]) for r in db.execute(sql, [DATABASE.name])]


def machine_cpu() -> tuple[float, float]:
    """(busy, total) CPU seconds of the whole machine since boot."""
    ticks = [int(x) for x in Path("/proc/stat").read_text().split("\n")[0].split()[1:]]
    hz = os.sysconf("SC_CLK_TCK")
    idle = ticks[3] + ticks[4]  # idle + iowait
    return (sum(ticks[:8]) - idle) / hz, sum(ticks[:8]) / hz


def cpu_census(
    db: psycopg.Connection, bridges: list[Service], since: dict[int, float] | None = None
) -> tuple[CpuCensus, dict[int, float]]:
    """The census, and the per-process figures it was summed from (PostgreSQL backends come and
    go: one absent from `since` counts from zero)."""
    per_pid: dict[int, float] = {}
    for pid in postgres_pids(db):
        per_pid[pid] = harness.cpu_seconds(pid)
    base = since or {}
    postgres = sum(
        v - base.get(pid, 0.0) for pid, v in per_pid.items() if not math.isnan(v) and pid > 0
    )
    broker = broker_pid()
    usage = os.times()
    busy, total = machine_cpu()
    census = CpuCensus(
        bridges=sum(process_cpu(b.process.pid) for b in bridges),
        broker=harness.cpu_seconds(broker) if broker else float("nan"),
        postgres=postgres,
        publishers=usage.user + usage.system,
        machine_busy=busy,
        machine_total=total,
    )
    return census, per_pid


@dataclass(frozen=True)
class MqttLoad:
    """CPU cores (CPU seconds per wall second) each part used during one MQTT phase."""

    bridges: int
    wall_s: float
    points: int
    bridge_cores: float
    broker_cores: float
    postgres_cores: float
    publisher_cores: float
    machine_busy: float  # share of all the machine's cores that were busy


def mqtt_load(
    before: CpuCensus, after: CpuCensus, bridges: int, wall_s: float, points: int
) -> MqttLoad:
    return MqttLoad(
        bridges,
        wall_s,
        points,
        (after.bridges - before.bridges) / wall_s,
        (after.broker - before.broker) / wall_s,
        after.postgres / wall_s,  # already a difference (see cpu_census)
        (after.publishers - before.publishers) / wall_s,
        (after.machine_busy - before.machine_busy)
        / max(1e-9, after.machine_total - before.machine_total),
    )


def mqtt_throughput(
    db: psycopg.Connection,
    bridges: list[Service],
    devices: list[Device],
    clock: Clock,
    site: str,
    topic_root: str,
    total: int,
    per_message: int,
) -> tuple[Figure, MqttLoad, float]:
    """One publisher per node sends `per_message`-point messages with QoS 1 to the bridges'
    shared subscription; the clock stops when the table holds every point. Also returns the
    seconds until the last PUBACK."""
    share = total // len(devices)
    messages = {
        d.node_id: [
            orjson.dumps({"token": d.token, "points": points(d.node_id, clock.take(per_message))})
            for _ in range(share // per_message)
        ]
        for d in devices
    }
    publishers = {d.node_id: mqtt_client(f"bench-pub-{uuid.uuid4().hex[:8]}") for d in devices}
    table_reset(db)
    infos = []
    # Mosquitto queues up to 1,000 messages per member of the group: the backlog may grow with
    # the number of bridges (it round-robins, so each member holds about 1/N of it).
    cap = MAX_BACKLOG_MESSAGES * len(bridges)
    before, pg_before = cpu_census(db, bridges)
    start = time.perf_counter()
    try:
        for sent, batch in enumerate(zip(*messages.values(), strict=True)):
            published = sent * len(devices)
            while published > cap and published - row_count(db) // per_message > cap:
                time.sleep(0.1)
            for node_id, payload in zip(messages, batch, strict=True):
                topic = f"{topic_root}/{site}/machine/{node_id}/telemetry"
                infos.append(publishers[node_id].publish(topic, payload, qos=1))
        acked_at = 0.0
        stored = 0
        deadline = time.monotonic() + max(60.0, total / 2_000)
        while time.monotonic() < deadline:
            for bridge in bridges:
                bridge.check_alive()
            if not acked_at and all(i.is_published() for i in infos):
                acked_at = time.perf_counter() - start
            stored = row_count(db)
            if stored >= total:
                break
            time.sleep(poll_wait(stored, total, time.perf_counter() - start))
        seconds = time.perf_counter() - start
        after, _ = cpu_census(db, bridges, since=pg_before)
    finally:
        for client in publishers.values():
            client.disconnect()
            client.loop_stop()
    note = "" if stored == total else f"TIMED OUT: stored {stored:,} of {total:,}"
    label = f"MQTT, {len(bridges)} bridge{'s' if len(bridges) > 1 else ''}, {len(devices)} nodes"
    load = mqtt_load(before, after, len(bridges), seconds, stored)
    return Figure(label, stored, seconds, note), load, acked_at


def poll_wait(stored: int, total: int, elapsed: float) -> float:
    """Seconds until the next row count: half the time the rest should take at the rate so far,
    between 0.05 and 1 s. A count of 500,000 rows costs PostgreSQL 40-90 ms on this machine;
    counting every 0.1 s took a third of a core from the phase it measured."""
    if not stored:
        return 0.1
    return min(1.0, max(0.05, (total - stored) / (stored / elapsed) / 2))


def mqtt_warm_up(
    db: psycopg.Connection,
    bridges: list[Service],
    devices: list[Device],
    clock: Clock,
    site: str,
    topic_root: str,
) -> None:
    """Wait for every bridge's subscription, then push messages through them (round-robin:
    each bridge gets some, so each has its imports, token cache and connections warm)."""
    for bridge in bridges:
        wait_until(
            functools.partial(has_logged, bridge, "subscribed to"),
            90,
            f"{bridge.name} to subscribe",
            bridge,
        )
    time.sleep(0.3)  # the broker has processed the SUBSCRIBE
    table_reset(db)
    publisher = mqtt_client(f"bench-warm-{uuid.uuid4().hex[:8]}")
    try:
        for _ in range(len(bridges)):
            for d in devices:
                body = {"token": d.token, "points": points(d.node_id, clock.take(100))}
                publisher.publish(
                    f"{topic_root}/{site}/machine/{d.node_id}/telemetry", orjson.dumps(body), qos=1
                ).wait_for_publish(10)
        expected = 100 * len(devices) * len(bridges)
        wait_until(lambda: row_count(db) >= expected, 60, "the warm-up rows", bridges[0])
    finally:
        publisher.disconnect()
        publisher.loop_stop()


@dataclass(frozen=True)
class MqttRun:
    """What one MQTT phase needs besides the bridge count: names unique to this run, so nothing
    else on the broker (tests, other benchmarks) shares its topics or its group."""

    env: dict[str, str]
    work: Path
    devices: list[Device]
    site: str
    topic_root: str
    prefix: str  # client ids and share groups: <prefix>-<bridges>[-<index>]


def mqtt_phase(
    db: psycopg.Connection,
    setup: MqttRun,
    count: int,
    clock: Clock,
    total: int,
    per_message: int,
    profiler: Profiler,
) -> tuple[Figure, MqttLoad, float]:
    """`count` bridge processes (what `mqtt_bridge --processes N` starts: distinct client ids,
    one shared subscription), warmed up, then the throughput phase. Each phase has a group of
    its own: a stopped bridge's persistent session stays a member of its group, and the broker
    would keep handing it messages."""
    group = f"{setup.prefix}-{count}"
    bridges: list[Service] = []
    try:
        for index in range(count):
            bridges.append(
                service_start(
                    f"bridge-{count}-{index}",
                    [sys.executable, "manage.py", "mqtt_bridge", "--client-id", group]
                    + ["--index", str(index), "--share-group", group]
                    + ["--topic-root", setup.topic_root],
                    {**setup.env, "LOG_LEVEL": "INFO"},  # its "subscribed" line: it is ready
                    setup.work,
                    signal.SIGTERM,
                )
            )
        mqtt_warm_up(db, bridges, setup.devices, clock, setup.site, setup.topic_root)
        with profiler.record(f"bridge-{count}x-first", bridges[0]):
            return mqtt_throughput(
                db, bridges, setup.devices, clock, setup.site, setup.topic_root, total, per_message
            )
    finally:
        for bridge in bridges:
            bridge.stop()
        for index in range(count):
            with contextlib.suppress(Exception):
                mqtt_session_forget(f"{group}-{index}")


# --- Report ----------------------------------------------------------------------------------


def verdict(ok: bool) -> str:
    return "PASS" if ok else "MISS"


def mqtt_targets(f: dict[str, Figure], keys: list[str]) -> list[str]:
    """Targets of the MQTT phases: each bridge process >= BRIDGE_MIN_RATE, and N processes near
    N times one, as far as the machine has cores for them."""
    if not keys:
        return []
    out = []
    one = f.get("mqtt1")
    cores = os.cpu_count() or 1
    for key in keys:
        fig, count = f[key], int(key[4:])
        per_process = fig.rate / count
        line = (
            f"  {verdict(per_process >= BRIDGE_MIN_RATE and not fig.note)}  {fig.label}:"
            f" {fig.rate:,.0f} points/s, {per_process:,.0f} per process"
            f" (target >= {BRIDGE_MIN_RATE:,} per process)"
        )
        if one is not None and count > 1 and one.rate:
            speedup = fig.rate / one.rate
            if count <= cores:
                ok = speedup >= SCALING_MIN * count
                line += (
                    f"; {verdict(ok)} {speedup:.2f}x one bridge"
                    f" (target >= {SCALING_MIN * count:.1f}x)"
                )
            else:
                line += f"; {speedup:.2f}x one bridge ({count} processes on {cores} cores)"
        out.append(line)
    return out


def mqtt_cpu_table(loads: list[MqttLoad]) -> list[str]:
    """Which part was busy: bridges, broker, PostgreSQL, the publishers, the machine."""
    cores = os.cpu_count() or 1
    out = []
    if loads:
        out += [
            "",
            f"  {'CPU cores used during the MQTT phase':<44}{'bridges':>9}{'broker':>9}"
            f"{'postgres':>10}{'bench':>8}{'machine':>10}{'points/bridge CPU s':>21}",
        ]
        out += [
            f"  {f'{x.bridges} bridge process(es)':<44}{x.bridge_cores:>9.2f}{x.broker_cores:>9.2f}"
            f"{x.postgres_cores:>10.2f}{x.publisher_cores:>8.2f}{x.machine_busy:>9.0%}"
            f"{x.points / max(1e-9, x.bridge_cores * x.wall_s):>21,.0f}"
            for x in loads
        ]
        out += [
            "  (cores: CPU seconds per wall second; postgres: the bench database's backends and",
            "  the WAL writer, checkpointer and background writer; bench: this process, the",
            f"  publishers and the row counting; machine: busy share of all {cores} cores, other",
            "  work on the machine included; points/bridge CPU s: what one bridge process would",
            "  store per second with a core to itself, PostgreSQL not waited for)",
        ]
    return out


def report(results: Results, total_points: int, compress: bool, layout: str) -> str:
    f = results.figures
    out = [
        "",
        "Imewe telemetry ingest benchmark",
        f"  {os.cpu_count()} CPU cores shared by this client, daphne or the bridge, PostgreSQL and"
        " Mosquitto;",
        "  other work on the machine may run at the same time: treat figures as indicative.",
        f"  {layout}",
        f"  ~{total_points:,} points per phase; request bodies "
        + ("gzip-compressed JSON" if compress else "plain JSON")
        + "; table truncated before each phase.",
        "",
        f"  {'phase':<44}{'points':>10}{'seconds':>10}{'points/s':>12}{'vs COPY':>9}",
    ]
    baselines = {
        "api1k": "copy1k",
        "api10k": "copy10k",
        "copy1k": "copy1k",
        "copy10k": "copy10k",
    }
    mqtt_keys = sorted((k for k in f if k.startswith("mqtt")), key=lambda k: int(k[4:]))
    baselines.update(dict.fromkeys(mqtt_keys, "copy10k"))
    for key in ("copy1k", "api1k", "copy10k", "api10k", *mqtt_keys):
        if key not in f:
            continue
        fig = f[key]
        base = f.get(baselines[key])
        of_copy = f"{fig.rate / base.rate:8.0%}" if base and base.rate else "       -"
        out.append(
            f"  {fig.label:<44}{fig.points:>10,}{fig.seconds:>10.2f}{fig.rate:>12,.0f} {of_copy}"
            + (f"   ({fig.note})" if fig.note else "")
        )
    lat = results.latency_ms
    p50 = p95 = float("nan")
    if lat:
        p50 = statistics.median(lat)
        p95 = statistics.quantiles(lat, n=20, method="inclusive")[18]
        out.append(
            f"  API batch 100, 1 client, sequential: {len(lat)} requests, p50 {p50:.2f} ms,"
            f" p95 {p95:.2f} ms, max {max(lat):.2f} ms"
        )
    if lat:
        out.append(
            "  (the servers commit telemetry "
            + ("durably" if results.synchronous_commit else "asynchronously")
            + ": TELEMETRY_SYNCHRONOUS_COMMIT="
            + ("1)" if results.synchronous_commit else "0)")
        )
    for mode, floor in results.copy_latency_ms.items():
        f50 = statistics.median(floor)
        f95 = statistics.quantiles(floor, n=20, method="inclusive")[18]
        same = (mode == "durable") is results.synchronous_commit
        out.append(
            f"  raw COPY 100 rows/txn, sequential, {mode} commit (floor): p50 {f50:.2f} ms,"
            f" p95 {f95:.2f} ms, max {max(floor):.2f} ms"
            + (f"; the request adds p50 {p50 - f50:+.2f}, p95 {p95 - f95:+.2f} ms" if same else "")
        )
    if results.loads:
        out += [
            "",
            f"  {'server process during the phase':<44}{'requests':>10}{'CPU s/s':>10}"
            f"{'PG sess.':>10}{'Redis conn.*':>14}",
        ]
        out += [
            f"  {x.label:<44}{x.requests:>10,}{x.cpu_s / x.wall_s:>10.2f}"
            f"{x.pg_sessions:>10,}{x.redis_connections:>14,}"
            for x in results.loads
        ]
        out += [
            "  (CPU s/s: the process's CPU seconds per wall second, all threads;",
            "  PG sess.: sessions opened on the bench database;",
            "  *Redis conn.: connections the Redis server accepted, from every client)",
        ]
    out += mqtt_cpu_table(results.mqtt_loads)
    out += ["", "  targets"]
    for key in ("api1k", "api10k"):
        if key in f:
            fig, base = f[key], f[baselines[key]]
            ratio = fig.rate / base.rate
            out.append(
                f"  {verdict(ratio >= API_MIN_RATIO)}  {fig.label}: {ratio:.0%} of raw COPY"
                f" (target >= {API_MIN_RATIO:.0%})"
            )
            out.append(
                f"  {verdict(fig.rate >= API_MIN_RATE)}  {fig.label}: {fig.rate:,.0f} points/s"
                f" (target >= {API_MIN_RATE:,})"
            )
    out += mqtt_targets(f, mqtt_keys)
    if lat:
        out.append(
            f"  {verdict(p95 <= P95_MAX_MS)}  API batch 100 p95: {p95:.2f} ms"
            f" (target <= {P95_MAX_MS:g} ms)"
        )
    out += [f"  note: {n}" for n in results.notes]
    return "\n".join(out)


# --- Orchestration ---------------------------------------------------------------------------


def run(args: argparse.Namespace) -> Results:
    total = args.points
    results = Results()
    clock = Clock()
    site = f"bench{uuid.uuid4().hex[:8]}"
    services: list[Service] = []
    work = Path(tempfile.mkdtemp(prefix="imewe-bench-ingest-"))
    profile_dir = Path(args.profile).resolve() if args.profile else None
    if profile_dir is not None:
        profile_dir.mkdir(parents=True, exist_ok=True)
    profiler = Profiler(profile_dir)
    env = server_env(work)
    os.environ.update({k: v for k, v in env.items() if k != "PYTHONUNBUFFERED"})
    try:
        step("database", f"{DATABASE.name}: drop, create, migrate")
        DATABASE.recreate()
        subprocess.run(
            [sys.executable, "manage.py", "migrate", "--noinput", "-v", "0"],
            cwd=ROOT,
            env=env,
            check=True,
        )
        import django

        django.setup()
        from django.db import connections

        devices = devices_create(5)
        connections.close_all()
        api_devices, latency_device, mqtt_devices = devices[:2], devices[2], devices[3:5]

        port = harness.free_port()
        step("daphne", f"127.0.0.1:{port}")
        daphne = service_start(
            "daphne",
            [str(BIN / "daphne"), "-b", "127.0.0.1", "-p", str(port), "imewe.asgi:application"],
            env,
            work,
            signal.SIGTERM,
        )
        services.append(daphne)
        wait_until(lambda: port_open(port), 60, "daphne to listen", daphne)

        with psycopg.connect(DATABASE.url, autocommit=True) as db:
            meter = Meter(db)
            layout = storage_layout(db)
            for device in [*api_devices, latency_device]:  # imports, connections, token cache
                ApiClient(port, device, args.gzip).post(
                    request_body(points(device.node_id, clock.take(100)), args.gzip)
                )
            for batch, key in ((10_000, "10k"), (1_000, "1k")):
                n = rounded(total, batch * len(api_devices))
                step(f"copy {key}", f"{n:,} rows")
                results.figures[f"copy{key}"] = copy_baseline(db, api_devices, clock, n, batch)
                step(f"api {key}", f"{n:,} points")
                with profiler.record(f"daphne-batch-{key}", daphne):
                    fig, load = api_throughput(
                        db, meter, daphne, port, api_devices, clock, n, batch, args.gzip
                    )
                results.figures[f"api{key}"] = fig
                results.loads.append(load)
            for mode in ("durable", "asynchronous"):
                step(
                    "copy latency",
                    f"{args.latency_requests} sequential raw COPYs of 100 rows, {mode} commit",
                )
                results.copy_latency_ms[mode] = copy_latency_baseline(
                    db, latency_device, clock, args.latency_requests, mode == "durable"
                )
            results.synchronous_commit = settings_flag(env, "TELEMETRY_SYNCHRONOUS_COMMIT", True)
            step("latency", f"{args.latency_requests} sequential requests of 100 points")
            with profiler.record("daphne-batch-100", daphne):
                results.latency_ms, load = api_latency(
                    meter, daphne, port, latency_device, clock, args.latency_requests, args.gzip
                )
            results.loads.append(load)
            daphne.stop()

            meter.close()
            setup = MqttRun(
                env,
                work,
                mqtt_devices,
                site,
                f"bench{uuid.uuid4().hex[:8]}",
                f"bench-bridge-{uuid.uuid4().hex[:8]}",
            )
            for count in args.bridges:
                n = rounded(total, args.message_points * len(mqtt_devices))
                step(
                    "mqtt", f"{count} bridges: {n:,} points in messages of {args.message_points:,}"
                )
                fig, mqtt_cpu, acked = mqtt_phase(
                    db, setup, count, clock, n, args.message_points, profiler
                )
                results.figures[f"mqtt{count}"] = fig
                results.mqtt_loads.append(mqtt_cpu)
                results.notes.append(
                    f"{fig.label}: the broker acknowledged every publish after {acked:.2f} s;"
                    f" the last row was stored after {fig.seconds:.2f} s (rows counted every"
                    " 0.05-1 s, most often near the end)"
                )
        print(report(results, total, args.gzip, layout), flush=True)
        for path, seconds in profiler.files:
            print("\n" + profile_summary(path, seconds), flush=True)
    finally:
        for service in reversed(services):
            service.stop()
        with contextlib.suppress(Exception):
            from django.db import connections

            connections.close_all()
        if not args.keep_db:
            DATABASE.drop()
        shutil.rmtree(work, ignore_errors=True)
    return results


def step(name: str, detail: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {name}: {detail}", flush=True)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.ingest", description=__doc__)
    parser.add_argument("--points", type=int, help="points per phase (default 500,000)")
    parser.add_argument("--quick", action="store_true", help="tiny sizes: a smoke check")
    parser.add_argument("--latency-requests", type=int, help="100-point requests to time")
    parser.add_argument("--message-points", type=int, default=1_000, help="points per MQTT msg")
    parser.add_argument(
        "--bridges",
        help="bridge process counts, one MQTT phase each (default 1,2,4; --quick 1,2)",
    )
    parser.add_argument("--no-gzip", dest="gzip", action="store_false", help="plain JSON bodies")
    parser.add_argument("--profile", metavar="DIR", help="py-spy the servers; summaries printed")
    parser.add_argument("--keep-db", action="store_true", help=f"keep {DATABASE.name} afterwards")
    args = parser.parse_args(argv)
    if args.points is None:
        args.points = 20_000 if args.quick else 500_000
    if args.latency_requests is None:
        args.latency_requests = 40 if args.quick else 300
    try:
        args.bridges = [
            int(n) for n in (args.bridges or ("1,2" if args.quick else "1,2,4")).split(",")
        ]
    except ValueError:
        parser.error("--bridges takes counts separated by commas, e.g. 1,2,4")
    if args.points < 1 or args.latency_requests < 1 or args.message_points < 1:
        parser.error("--points, --latency-requests and --message-points must be positive")
    if min(args.bridges) < 1:
        parser.error("--bridges: each count must be positive")
    # A TERM (from a CI timeout, say) unwinds through the finally that stops the servers.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    run(args)


if __name__ == "__main__":
    main()
