"""Live telemetry fan-out benchmark: ~1,000 websocket clients on /ws/telemetry/ served by a real
daphne process (channels-redis), while 100 nodes stream 100 points/s each through the real batch
API with device tokens; then, in the same run, the same clients on a bare `websockets` broadcast
server doing the same 250 ms per-node coalescing (the baseline).

    .venv/bin/python -m bench.ws_fanout [--clients N] [--seconds S] [--quick] [--profile]

Delay = client receive time - time of the newest point in the message (the consumer coalesces
to one message per node per 250 ms carrying the newest values). A subscription is lost when the
node's newest stored point never reached that client; a message is late past 1 s. Everything
runs against a database of its own (imewe_bench_ws, dropped and created anew) and Redis DB 6
under the key prefix `benchws`. A missed target prints MISS; the exit status stays 0 (only a
broken run fails). See bench/README.md, section ws_fanout.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gzip
import os
import resource
import signal
import sys
import tempfile
import time
from collections import Counter, defaultdict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import orjson

from bench import harness

ROOT = harness.ROOT
BIN = Path(sys.executable).parent  # the virtualenv's bin/: daphne and py-spy live there
DATABASE = harness.BenchDatabase("imewe_bench_ws")
REDIS_URL = "redis://127.0.0.1:6379/6"
KEY_PREFIX = "benchws"  # channel layer and cache keys; deleted before and after the run
HOST = harness.HOST
BATCH_PATH = "/api/v1/telemetry/batch/"

SAMPLE_US = 10_000  # 100 points/s per node
COALESCE_S = 0.25  # the consumer's MIN_INTERVAL_S; the baseline does the same
LATE_S = 1.0
TARGET_P99_MS = 100.0
DRAIN_S = 2.0  # after the last batch: 250 ms coalescing plus slack
WARMUP_S = 2.0  # streamed before the measured window: first requests, lazy imports, pools
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

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
    "software_version": "bench/1",
}


# --- Time and points -------------------------------------------------------------------------


def server_env(var_dir: Path) -> dict[str, str]:
    return harness.server_env(
        database=DATABASE,
        redis_url=REDIS_URL,
        key_prefix=KEY_PREFIX,
        var_dir=var_dir,
        JWT_ACCESS_MINUTES="60",
        LOG_LEVEL="INFO",  # channels-redis reports dropped messages ("over capacity") at INFO
    )


def now_us() -> int:
    return time.time_ns() // 1000


def iso(us: int) -> str:
    return (EPOCH + timedelta(microseconds=us)).isoformat()


def parse_us(text: str) -> int:
    return (datetime.fromisoformat(text) - EPOCH) // timedelta(microseconds=1)


def make_point(node: int, us: int) -> dict[str, Any]:
    tick = us // SAMPLE_US
    return {
        "node": node,
        "time": iso(us),
        "temperature_c": 40.0 + (tick % 600) / 60,
        "spindle_rpm": 8000.0 + tick % 500,
        "power_kw": 5.5,
        "vibration_mm_s": 1.2,
    }


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile of sorted `values` (nan when empty)."""
    if not values:
        return float("nan")
    index = min(len(values) - 1, max(0, round(q / 100 * len(values) + 0.5) - 1))
    return values[index]


def raise_open_files_limit() -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or soft < hard:
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


# --- Plan ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Plan:
    nodes: int
    clients: int  # single-node clients, spread evenly over the nodes
    watchers: int  # clients that watch every node
    seconds: float
    batch_ms: int  # how often each node's gateway posts a batch (the edge default: 1 s)
    producer: str  # "api": batch API with device tokens; "groupsend": channel layer directly
    ingest: str  # "same": the batch API on the websocket daphne; "separate": a second daphne
    asgi: str = "imewe.asgi:application"  # what daphne serves (another one: what-if experiments)

    @property
    def total_clients(self) -> int:
        return self.clients + self.watchers

    @property
    def stall_us(self) -> int:
        """A gap between two messages of one subscription this long means one went missing."""
        return int((2 * max(self.batch_ms / 1000, COALESCE_S) + 0.5) * 1_000_000)


# --- Database, users, nodes ------------------------------------------------------------------


def redis_keys_delete() -> int:
    return harness.redis_keys_delete(REDIS_URL, f"{KEY_PREFIX}*")


def seed(plan: Plan) -> tuple[dict[int, str], list[dict[str, Any]]]:
    """Nodes of one vendor at one operator site, streaming (approved, configured, idle), with a
    device token each. Single-node clients are vendor members (scope: own nodes); the watchers
    of every node are operators of the site (scope: operated). One access token per user."""
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
    admin = user_create(email="admin@bench.test", password=None, role=Role.ADMIN)
    vendors = [
        user_create(
            email=f"vendor{i}@bench.test", password=None, role=Role.VENDOR, organization=forge
        )
        for i in range(10)
    ]
    operators = [
        user_create(
            email=f"operator{i}@bench.test", password=None, role=Role.OPERATOR, organization=site
        )
        for i in range(plan.watchers)
    ]
    device_tokens: dict[int, str] = {}
    for i in range(plan.nodes):
        node = node_register(
            by=vendors[0], vendor=forge, site=site, name=f"Bench-{i:03d}", **NODE_FIELDS
        )
        node = node_decide(node=node, by=admin, approve=True)
        node_config_save(node=node, by=vendors[0], config={"bench": True})
        node_transition(node=node, to=FabricationNode.Status.IDLE, by=vendors[0], reason="bench")
        _, token = device_credential_issue(node=node, by=vendors[0], label="bench")
        device_tokens[node.pk] = token

    def access(user: Any) -> str:
        return str(tokens_issue(user=user, otp_verified=True).access_token)

    vendor_tokens = [access(u) for u in vendors]
    node_ids = sorted(device_tokens)
    spec = [
        {
            "nodes": [node_ids[j % plan.nodes]],
            "token": vendor_tokens[(j // plan.nodes) % len(vendor_tokens)],
        }
        for j in range(plan.clients)
    ]
    spec += [{"nodes": node_ids, "token": access(u)} for u in operators]
    connections.close_all()
    return device_tokens, spec


# --- Minimal keep-alive HTTP/1.1 client (no third-party HTTP client in the venv) ------------


class HttpConnection:
    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def post(self, path: str, body: bytes, headers: dict[str, str]) -> tuple[int, bytes]:
        try:
            return await self._post(path, body, headers)
        except (ConnectionError, asyncio.IncompleteReadError):
            self.close()
            raise

    async def _post(self, path: str, body: bytes, headers: dict[str, str]) -> tuple[int, bytes]:
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
        assert self.reader is not None
        lines = [f"POST {path} HTTP/1.1", f"Host: {self.host}:{self.port}"]
        lines += [f"{k}: {v}" for k, v in {**headers, "Content-Length": len(body)}.items()]
        self.writer.write(("\r\n".join(lines) + "\r\n\r\n").encode() + body)
        await self.writer.drain()
        status = int((await self.reader.readuntil(b"\r\n")).split()[1])
        head: dict[str, str] = {}
        while (line := await self.reader.readuntil(b"\r\n")) != b"\r\n":
            name, _, value = line.decode("latin-1").partition(":")
            head[name.strip().lower()] = value.strip()
        if "content-length" in head:
            data = await self.reader.readexactly(int(head["content-length"]))
        elif head.get("transfer-encoding", "").lower() == "chunked":
            data = b""
            while size := int((await self.reader.readuntil(b"\r\n")).split(b";")[0], 16):
                data += await self.reader.readexactly(size)
                await self.reader.readexactly(2)
            await self.reader.readuntil(b"\r\n")
        else:
            data = await self.reader.read()
            self.close()
        if head.get("connection", "").lower() == "close":
            self.close()
        return status, data

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
        self.reader = self.writer = None


# --- Role: producer (the gateways) ----------------------------------------------------------


async def producer_main(args: argparse.Namespace) -> None:
    """Every node posts, every `batch_ms`, all its 100 Hz samples taken since the last batch
    (like edge.gateway's forwarder), staggered over the interval. Writes the newest point of each
    node that the platform accepted, and request statistics."""
    job = orjson.loads(Path(args.spec).read_bytes())
    tokens = {int(k): v for k, v in job["device_tokens"].items()}
    batch_us = job["batch_ms"] * 1000
    mode = job["mode"]
    start_us = now_us() + 200_000
    end_us = start_us + int((job["warmup_s"] + job["seconds"]) * 1_000_000)
    newest: dict[int, int] = {}
    latencies: list[float] = []
    errors: Counter[str] = Counter()
    sent = {"requests": 0, "points": 0}

    send_factory: Callable[[int, str], Awaitable[Callable[[list[dict[str, Any]]], Any]]]
    if mode == "groupsend":
        import django

        django.setup()
        from channels.layers import get_channel_layer

        from apps.telemetry.services import telemetry_group

        layer = get_channel_layer()

        async def groupsend_factory(node: int, token: str) -> Any:
            async def send(points: list[dict[str, Any]]) -> bool:
                # The payload of apps.telemetry.services._announce, sent the way broadcast()
                # sends it, without the HTTP request, validation and COPY before it.
                payload = {"type": "telemetry", **points[-1], "extra": {}}
                await layer.group_send(
                    telemetry_group(node), {"type": "broadcast", "payload": payload}
                )
                return True

            return send

        send_factory = groupsend_factory
    elif mode == "baseline":
        from websockets.asyncio.client import connect

        async def baseline_factory(node: int, token: str) -> Any:
            ws = await connect(f"ws://{HOST}:{job['port']}/publish", compression=None, proxy=None)

            async def send(points: list[dict[str, Any]]) -> bool:
                await ws.send(orjson.dumps(points).decode())
                return True

            return send

        send_factory = baseline_factory
    else:

        async def api_factory(node: int, token: str) -> Any:
            http = HttpConnection(HOST, job["port"])
            headers = {
                "Authorization": f"Device {token}",
                "Content-Type": "application/json",
                "Content-Encoding": "gzip",
            }

            async def send(points: list[dict[str, Any]]) -> bool:
                status, body = await http.post(
                    BATCH_PATH, gzip.compress(orjson.dumps(points)), headers
                )
                if status != 200:
                    errors[f"HTTP {status}: {body[:120].decode(errors='replace')}"] += 1
                    return False
                accepted = orjson.loads(body)["accepted"]
                if accepted != len(points):
                    errors[f"accepted {accepted} of {len(points)}"] += 1
                    return False
                return True

            return send

        send_factory = api_factory

    async def node_loop(index: int, node: int, token: str) -> None:
        send = await send_factory(node, token)
        tick_us = start_us + batch_us * index // len(tokens)  # gateways are not in step
        sample_us = tick_us - batch_us  # the first batch carries one interval of samples
        while True:
            delay = (tick_us - now_us()) / 1e6
            if delay > 0:
                await asyncio.sleep(delay)
            if now_us() >= end_us:
                return
            current = now_us()
            points = []
            while sample_us + SAMPLE_US <= current:
                sample_us += SAMPLE_US
                points.append(make_point(node, sample_us))
            began = time.perf_counter()
            try:
                ok = await send(points)
            except Exception as exc:  # a broken connection: count it, carry on
                errors[f"{type(exc).__name__}: {exc}"[:160]] += 1
                ok = False
            latencies.append((time.perf_counter() - began) * 1000)
            sent["requests"] += 1
            sent["points"] += len(points)
            if ok:
                newest[node] = sample_us
            tick_us = max(tick_us + batch_us, now_us())  # behind: send the backlog next, no burst

    began = time.perf_counter()
    await asyncio.gather(*(node_loop(i, n, t) for i, (n, t) in enumerate(sorted(tokens.items()))))
    elapsed = time.perf_counter() - began
    latencies.sort()
    Path(args.out).write_bytes(
        orjson.dumps(
            {
                "newest": {str(k): v for k, v in newest.items()},
                "requests": sent["requests"],
                "points": sent["points"],
                "elapsed_s": elapsed,
                "stream_s": (end_us - start_us) / 1e6,
                "measure_from_us": start_us + int(job["warmup_s"] * 1_000_000),
                "latency_p50_ms": percentile(latencies, 50),
                "latency_p99_ms": percentile(latencies, 99),
                "errors": dict(errors.most_common(5)),
                "error_count": sum(errors.values()),
            }
        )
    )


# --- Role: clients (the browsers) -----------------------------------------------------------


@dataclass
class Subscription:
    nodes: list[int]
    url: str
    newest: dict[int, int] = field(default_factory=dict)
    last_seen: dict[int, int] = field(default_factory=dict)
    max_gap_us: int = 0
    stalls: int = 0
    error: str = ""
    subscribed: bool = False
    closed_early: bool = False


async def clients_main(args: argparse.Namespace) -> None:
    """Open every subscription (at most 50 handshakes at a time), say READY, record every
    telemetry message until told to stop on stdin, then write what arrived."""
    from websockets.asyncio.client import connect
    from websockets.exceptions import ConnectionClosed, InvalidStatus
    from websockets.typing import Origin

    raise_open_files_limit()
    job = orjson.loads(Path(args.spec).read_bytes())
    base, stall_us = job["url"], job["stall_us"]
    subs = [
        Subscription(
            nodes=s["nodes"],
            url=f"{base}?nodes={','.join(map(str, s['nodes']))}&token={s['token']}",
        )
        for s in job["subscriptions"]
    ]
    point_times: list[int] = []  # of each telemetry message received, with its delay
    delays: list[int] = []
    to_watcher: list[bool] = []  # whether it went to a client of several nodes
    stopping = asyncio.Event()
    handshakes = asyncio.Semaphore(50)
    settled = 0
    all_settled = asyncio.Event()

    def settle() -> None:
        nonlocal settled
        settled += 1
        if settled == len(subs):
            all_settled.set()

    async def run(sub: Subscription) -> None:
        try:
            async with handshakes:
                ws = await connect(
                    sub.url,
                    origin=Origin(f"http://{HOST}"),
                    compression=None,
                    proxy=None,
                    open_timeout=60,
                    ping_interval=None,  # daphne pings; answering is automatic
                    max_size=2**22,
                    max_queue=None,  # never apply back-pressure: we measure the server
                )
                first = orjson.loads(await ws.recv())
                if first.get("type") != "subscribed":
                    raise RuntimeError(f"first message {first!r:.80}")
        except ConnectionClosed as exc:
            sub.error = f"closed {exc.rcvd.code if exc.rcvd else '?'}"
        except InvalidStatus as exc:
            sub.error = f"HTTP {exc.response.status_code}"
        except Exception as exc:
            sub.error = f"{type(exc).__name__}: {exc}"[:120]
        settle()
        if sub.error:
            return
        sub.subscribed = True
        try:
            async for raw in ws:
                received = now_us()
                message = orjson.loads(raw)
                if message.get("type") != "telemetry":
                    continue
                node, point_us = message["node"], parse_us(message["time"])
                delay = received - point_us
                point_times.append(point_us)
                delays.append(delay)
                to_watcher.append(len(sub.nodes) > 1)
                previous = sub.last_seen.get(node)
                if previous is not None:
                    gap = received - previous
                    sub.max_gap_us = max(sub.max_gap_us, gap)
                    sub.stalls += gap > stall_us
                sub.last_seen[node] = received
                sub.newest[node] = max(sub.newest.get(node, 0), point_us)
        except ConnectionClosed:
            pass
        if not stopping.is_set():
            sub.closed_early = True

    began = time.perf_counter()
    tasks = [asyncio.create_task(run(sub)) for sub in subs]
    await all_settled.wait()
    errors = Counter(s.error for s in subs if s.error)
    ready = {
        "connected": sum(not s.error for s in subs),
        "failed": sum(bool(s.error) for s in subs),
        "errors": dict(errors.most_common(5)),
        "connect_s": time.perf_counter() - began,
    }
    print(orjson.dumps(ready).decode(), flush=True)

    loop = asyncio.get_running_loop()
    await loop.run_in_executor(None, sys.stdin.readline)  # "stop"
    stopping.set()
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    Path(args.out).write_bytes(
        orjson.dumps(
            {
                **ready,
                "point_times_us": point_times,
                "to_watcher": to_watcher,
                "delays_us": delays,
                "subscriptions": [
                    {
                        "nodes": s.nodes,
                        "newest": {str(k): v for k, v in s.newest.items()},
                        "max_gap_us": s.max_gap_us,
                        "stalls": s.stalls,
                        "subscribed": s.subscribed,
                        "closed_early": s.closed_early,
                    }
                    for s in subs
                ],
            }
        )
    )


# --- Role: the baseline server ----------------------------------------------------------------


async def baseline_main(args: argparse.Namespace) -> None:
    """Bare asyncio + websockets: /publish takes batches (a JSON array of points);
    /ws/telemetry/?nodes=... subscribes. At most one message per node per 250 ms carrying the
    newest point, serialised once and written to every subscriber of the node."""
    from websockets.asyncio.server import ServerConnection, broadcast, serve

    raise_open_files_limit()
    loop = asyncio.get_running_loop()
    subscribers: dict[int, set[ServerConnection]] = defaultdict(set)
    pending: dict[int, dict[str, Any]] = {}
    last_sent: dict[int, float] = {}
    scheduled: set[int] = set()

    def flush(node: int) -> None:
        scheduled.discard(node)
        payload = pending.pop(node, None)
        if payload is not None:
            last_sent[node] = loop.time()
            broadcast(subscribers[node], orjson.dumps(payload).decode())

    def offer(node: int, payload: dict[str, Any]) -> None:
        current = pending.get(node)
        if current is None or parse_us(payload["time"]) >= parse_us(current["time"]):
            pending[node] = payload
        if node in scheduled:
            return
        wait = last_sent.get(node, float("-inf")) + COALESCE_S - loop.time()
        if wait <= 0:
            flush(node)
        else:
            scheduled.add(node)
            loop.call_later(wait, flush, node)

    async def handler(ws: ServerConnection) -> None:
        assert ws.request is not None
        url = urlsplit(ws.request.path)
        if url.path == "/publish":
            async for raw in ws:
                points = orjson.loads(raw)
                newest = max(points, key=lambda p: parse_us(p["time"]))
                offer(newest["node"], {"type": "telemetry", **newest, "extra": {}})
            return
        raw_nodes = parse_qs(url.query).get("nodes", [""])[0]
        nodes = sorted({int(v) for v in raw_nodes.split(",") if v.strip()})
        for node in nodes:
            subscribers[node].add(ws)
        try:
            await ws.send(orjson.dumps({"type": "subscribed", "nodes": nodes}).decode())
            await ws.wait_closed()
        finally:
            for node in nodes:
                subscribers[node].discard(ws)

    stop = asyncio.Event()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    async with serve(
        handler, HOST, args.port, compression=None, ping_interval=None, max_size=2**24
    ):
        await stop.wait()


# --- Orchestration ---------------------------------------------------------------------------


def machine_busy() -> tuple[float, float]:
    """(busy, total) jiffies of all CPUs since boot."""
    values = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = values[3] + values[4]
    return sum(values) - idle, sum(values)


class Processes:
    """Every subprocess the run starts; `stop_all` ends them (SIGTERM, then SIGKILL)."""

    def __init__(self, logs: Path) -> None:
        self.logs = logs
        self.running: list[asyncio.subprocess.Process] = []

    async def start(
        self, name: str, *argv: str, env: dict[str, str], pipes: bool = False
    ) -> asyncio.subprocess.Process:
        log = (self.logs / f"{name}.log").open("ab")
        pipe = asyncio.subprocess.PIPE if pipes else asyncio.subprocess.DEVNULL
        proc = await asyncio.create_subprocess_exec(
            *argv,
            cwd=ROOT,
            env=env,
            stdin=pipe,
            stdout=pipe if pipes else log,
            stderr=log,
        )
        log.close()
        self.running.append(proc)
        return proc

    async def stop(self, proc: asyncio.subprocess.Process, timeout: float = 10) -> None:
        if proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                proc.terminate()
            try:
                await asyncio.wait_for(proc.wait(), timeout)
            except TimeoutError:
                with contextlib.suppress(ProcessLookupError):
                    proc.kill()
                await proc.wait()
        if proc in self.running:
            self.running.remove(proc)

    async def stop_all(self) -> None:
        for proc in reversed(list(self.running)):
            await self.stop(proc)


async def wait_port(port: int, proc: asyncio.subprocess.Process, what: str) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.returncode is not None:
            raise RuntimeError(f"{what} exited with {proc.returncode} before listening")
        try:
            _, writer = await asyncio.open_connection(HOST, port)
        except OSError:
            await asyncio.sleep(0.2)
            continue
        writer.close()
        return
    raise RuntimeError(f"{what} did not listen on {port} within 60 s")


async def server_sampler(result: dict[str, int], stop: asyncio.Event) -> None:
    """Deepest channel-layer queue (a Redis sorted set per daphne process) and most database
    connections of the bench database, sampled every 250 ms while running."""
    import psycopg
    import redis.asyncio as aioredis

    client = aioredis.Redis.from_url(REDIS_URL)
    db = await psycopg.AsyncConnection.connect(f"{harness.PG_URL}/postgres", autocommit=True)
    try:
        while not stop.is_set():
            async for key in client.scan_iter(match=f"{KEY_PREFIX}specific.*", count=1000):
                if not key.endswith(b"$inflight"):
                    depth = await client.zcard(key)
                    result["max_queue"] = max(result.get("max_queue", 0), depth)
            cursor = await db.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = %s", [DATABASE.name]
            )
            row = await cursor.fetchone()
            result["max_db"] = max(result.get("max_db", 0), row[0] if row else 0)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), 0.25)
    finally:
        await client.aclose()
        await db.close()


@dataclass
class PhaseResult:
    name: str
    connected: int = 0
    failed: int = 0
    connect_errors: dict[str, int] = field(default_factory=dict)
    connect_s: float = float("nan")
    messages: int = 0
    p50_ms: float = float("nan")
    p99_ms: float = float("nan")
    max_ms: float = float("nan")
    p99_single_ms: float = float("nan")  # clients of one node
    p99_watcher_ms: float = float("nan")  # clients of every node
    late: int = 0
    lost_subscriptions: int = 0
    lost_nodes: int = 0
    subscriptions: int = 0
    never_produced: int = 0
    closed_early: int = 0
    stalls: int = 0
    max_gap_s: float = float("nan")
    points_per_s: float = float("nan")
    requests: int = 0
    request_p50_ms: float = float("nan")
    request_p99_ms: float = float("nan")
    producer_errors: int = 0
    producer_error_samples: dict[str, int] = field(default_factory=dict)
    server_cpu_pct: float = float("nan")
    ingest_cpu_pct: float = float("nan")
    clients_cpu_pct: float = float("nan")
    producer_cpu_pct: float = float("nan")
    machine_busy_pct: float = float("nan")
    max_queue: int = -1
    max_db_connections: int = -1
    over_capacity_lines: int = -1
    error_lines: int = -1

    @property
    def passed(self) -> bool:
        return (
            self.failed == 0
            and self.lost_subscriptions == 0
            and self.never_produced == 0
            and self.p99_ms <= TARGET_P99_MS
        )


async def run_phase(
    *,
    name: str,
    plan: Plan,
    procs: Processes,
    env: dict[str, str],
    work: Path,
    server: asyncio.subprocess.Process,
    port: int,
    device_tokens: dict[int, str],
    spec: list[dict[str, Any]],
    producer_mode: str,
    profile: Path | None,
    ingest: tuple[asyncio.subprocess.Process, int] | None = None,
) -> PhaseResult:
    """Connect the clients, stream, drain, collect. `ingest`: a second daphne (and its port)
    that takes the batch API requests instead of `server`."""
    result = PhaseResult(name=name)
    me = [sys.executable, "-m", "bench.ws_fanout"]
    clients_job = work / f"{name}-clients.json"
    clients_job.write_bytes(
        orjson.dumps(
            {
                "url": f"ws://{HOST}:{port}/ws/telemetry/",
                "stall_us": plan.stall_us,
                "subscriptions": spec,
            }
        )
    )
    clients_out = work / f"{name}-clients-out.json"
    clients = await procs.start(
        f"{name}-clients",
        *me,
        "--role=clients",
        f"--spec={clients_job}",
        f"--out={clients_out}",
        env=env,
        pipes=True,
    )
    assert clients.stdout is not None and clients.stdin is not None
    line = await asyncio.wait_for(clients.stdout.readline(), timeout=60 + plan.total_clients)
    if not line:
        raise RuntimeError(f"the clients exited ({clients.returncode}); see {procs.logs}")
    ready = orjson.loads(line)
    result.connected, result.failed = ready["connected"], ready["failed"]
    result.connect_errors, result.connect_s = ready["errors"], ready["connect_s"]
    print(
        f"  {name}: {result.connected}/{plan.total_clients} clients connected in "
        f"{result.connect_s:.1f} s; streaming {WARMUP_S:g} s warm-up + {plan.seconds:g} s",
        flush=True,
    )

    producer_job = work / f"{name}-producer.json"
    producer_job.write_bytes(
        orjson.dumps(
            {
                "mode": producer_mode,
                "port": ingest[1] if ingest else port,
                "seconds": plan.seconds,
                "warmup_s": WARMUP_S,
                "batch_ms": plan.batch_ms,
                "device_tokens": {str(k): v for k, v in device_tokens.items()},
            }
        )
    )
    producer_out = work / f"{name}-producer-out.json"
    depth: dict[str, int] = {}
    sampling = asyncio.Event()
    sampler = asyncio.create_task(server_sampler(depth, sampling)) if name == "channels" else None
    ingest_proc = ingest[0] if ingest else None
    cpu_before = {p.pid: harness.cpu_seconds(p.pid) for p in (server, clients, ingest_proc) if p}
    busy_before = machine_busy()
    began = time.perf_counter()
    producer = await procs.start(
        f"{name}-producer",
        *me,
        "--role=producer",
        f"--spec={producer_job}",
        f"--out={producer_out}",
        env=env,
    )
    spies = []
    if profile is not None:
        targets = [(server, profile)]
        if ingest_proc is not None:
            targets.append((ingest_proc, profile.with_name(profile.stem + "-ingest.txt")))
        for target, output in targets:
            spy_argv = ["record", "--pid", str(target.pid), "--rate", "100", "--nonblocking"]
            spy_argv += ["--duration", str(max(1, int(WARMUP_S + plan.seconds)))]
            spy_argv += ["--format", "raw", "--output", str(output)]
            spies.append(
                await procs.start(f"{name}-py-spy", str(BIN / "py-spy"), *spy_argv, env=env)
            )
    producer_cpu = 0.0
    while producer.returncode is None:  # sample its CPU while it lives
        producer_cpu = harness.cpu_seconds(producer.pid)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(producer.wait(), 0.5)
    if producer.returncode != 0:
        raise RuntimeError(f"the producer failed ({producer.returncode}); see {procs.logs}")
    elapsed = time.perf_counter() - began
    busy_after = machine_busy()
    for proc, attr in (
        (server, "server_cpu_pct"),
        (clients, "clients_cpu_pct"),
        (ingest_proc, "ingest_cpu_pct"),
    ):
        if proc is None:
            continue
        used = harness.cpu_seconds(proc.pid) - cpu_before[proc.pid]
        setattr(result, attr, 100 * used / elapsed)
    result.producer_cpu_pct = 100 * producer_cpu / elapsed
    result.machine_busy_pct = (
        100 * (busy_after[0] - busy_before[0]) / max(1, busy_after[1] - busy_before[1])
    )
    await asyncio.sleep(DRAIN_S)
    sampling.set()
    if sampler is not None:
        await sampler
        result.max_queue = depth.get("max_queue", 0)
        result.max_db_connections = depth.get("max_db", 0)
    for spy in spies:
        await asyncio.wait_for(spy.wait(), timeout=60)
    clients.stdin.write(b"stop\n")
    await clients.stdin.drain()
    await asyncio.wait_for(clients.wait(), timeout=120)
    if clients.returncode != 0:
        raise RuntimeError(f"the clients failed ({clients.returncode}); see {procs.logs}")

    produced = orjson.loads(producer_out.read_bytes())
    received = orjson.loads(clients_out.read_bytes())
    final = {int(k): v for k, v in produced["newest"].items()}
    result.points_per_s = produced["points"] / produced["stream_s"]
    result.requests = produced["requests"]
    result.request_p50_ms = produced["latency_p50_ms"]
    result.request_p99_ms = produced["latency_p99_ms"]
    result.producer_errors = produced["error_count"]
    result.producer_error_samples = produced["errors"]
    result.never_produced = len(set(device_tokens) - set(final))
    measured_from = produced["measure_from_us"]
    measured = [
        (d, w)
        for t, d, w in zip(
            received["point_times_us"], received["delays_us"], received["to_watcher"], strict=True
        )
        if t >= measured_from
    ]
    delays = sorted(d for d, _ in measured)
    single = sorted(d for d, w in measured if not w)
    watcher = sorted(d for d, w in measured if w)
    result.p99_single_ms = percentile(single, 99) / 1000
    result.p99_watcher_ms = percentile(watcher, 99) / 1000
    result.messages = len(delays)
    result.late = sum(d > LATE_S * 1_000_000 for d in delays)
    if delays:
        result.p50_ms = percentile(delays, 50) / 1000
        result.p99_ms = percentile(delays, 99) / 1000
        result.max_ms = delays[-1] / 1000
    lost_nodes: set[int] = set()
    max_gap = 0
    for sub in received["subscriptions"]:
        result.closed_early += sub["closed_early"]
        result.stalls += sub["stalls"]
        max_gap = max(max_gap, sub["max_gap_us"])
        for node in sub["nodes"]:
            result.subscriptions += 1
            if node in final and sub["newest"].get(str(node)) != final[node]:
                result.lost_subscriptions += 1
                lost_nodes.add(node)
    result.lost_nodes = len(lost_nodes)
    result.max_gap_s = max_gap / 1e6
    return result


def daphne_log_counts(log: Path) -> tuple[int, int]:
    text = log.read_text(errors="replace") if log.exists() else ""
    over = sum("over capacity" in line for line in text.splitlines())
    errors = sum(
        " ERROR " in line or "Traceback" in line or " CRITICAL " in line
        for line in text.splitlines()
    )
    return over, errors


def profile_summary(path: Path, top: int = 15) -> str:
    """Share of samples by package (innermost frame) and the hottest functions, from py-spy's
    raw (collapsed) output."""
    by_package: Counter[str] = Counter()
    by_function: Counter[str] = Counter()
    total = 0
    for line in path.read_text(errors="replace").splitlines():
        stack, _, count = line.rpartition(" ")
        if not count.isdigit():
            continue
        samples = int(count)
        total += samples
        leaf = stack.rsplit(";", 1)[-1]
        by_function[leaf] += samples
        location = leaf.rpartition("(")[2]
        if "site-packages/" in location:
            package = location.split("site-packages/", 1)[1].split("/", 1)[0]
        elif "/work/main/" in location or location.startswith(("apps/", "imewe/")):
            package = "imewe"
        elif "python3" in location:
            package = "stdlib:" + location.rsplit("/", 1)[-1].split(":")[0]
        else:
            package = location.split(":")[0] or "?"
        by_package[package] += samples
    if not total:
        return "  (no samples)"
    lines = [f"  {total} samples; by package of the innermost frame:"]
    lines += [f"    {100 * n / total:5.1f}%  {name}" for name, n in by_package.most_common(top)]
    lines.append("  hottest functions (self):")
    lines += [f"    {100 * n / total:5.1f}%  {name}" for name, n in by_function.most_common(top)]
    return "\n".join(lines)


def fmt(value: float, digits: int = 1) -> str:
    return "n/a" if value != value else f"{value:,.{digits}f}"  # nan != nan


def report(plan: Plan, results: list[PhaseResult]) -> str:
    how = {
        "api": "the batch API (device tokens, gzip) on "
        + ("the same daphne" if plan.ingest == "same" else "a second daphne process"),
        "groupsend": "channel-layer group_send straight from a producer process (no HTTP/DB)",
    }[plan.producer]
    load = os.getloadavg()
    lines = [
        "",
        f"ws_fanout: {plan.nodes} nodes x 100 points/s = {plan.nodes * 100:,} points/s via "
        f"{how}, one batch per node every {plan.batch_ms} ms; {plan.total_clients} clients "
        f"({plan.clients} on one node, {plan.watchers} on all {plan.nodes}); "
        f"{plan.seconds:g} s measured after {WARMUP_S:g} s of warm-up",
        f"machine: {os.cpu_count()} CPUs, load average {load[0]:.2f} {load[1]:.2f} "
        "(other work may share the machine)",
        "",
    ]
    rows: list[tuple[str, Callable[[PhaseResult], str]]] = [
        ("clients connected", lambda r: f"{r.connected}/{r.connected + r.failed}"),
        ("connect time s", lambda r: fmt(r.connect_s)),
        ("points/s produced", lambda r: fmt(r.points_per_s, 0)),
        ("producer requests", lambda r: f"{r.requests:,}"),
        ("request p50/p99 ms", lambda r: f"{fmt(r.request_p50_ms)}/{fmt(r.request_p99_ms)}"),
        ("producer errors", lambda r: str(r.producer_errors)),
        ("messages received", lambda r: f"{r.messages:,}"),
        ("delay p50 ms", lambda r: fmt(r.p50_ms)),
        ("delay p99 ms", lambda r: fmt(r.p99_ms)),
        ("delay max ms", lambda r: fmt(r.max_ms)),
        ("p99 1-node/all-node ms", lambda r: f"{fmt(r.p99_single_ms)}/{fmt(r.p99_watcher_ms)}"),
        ("late (> 1 s)", lambda r: f"{r.late:,}"),
        ("lost subscriptions", lambda r: f"{r.lost_subscriptions}/{r.subscriptions}"),
        ("lost nodes", lambda r: str(r.lost_nodes)),
        ("stalls / max gap s", lambda r: f"{r.stalls} / {fmt(r.max_gap_s, 2)}"),
        ("dropped connections", lambda r: str(r.closed_early)),
        ("server CPU %", lambda r: fmt(r.server_cpu_pct, 0)),
        ("ingest daphne CPU %", lambda r: fmt(r.ingest_cpu_pct, 0)),
        (
            "clients / producer CPU %",
            lambda r: f"{fmt(r.clients_cpu_pct, 0)} / {fmt(r.producer_cpu_pct, 0)}",
        ),
        ("machine busy %", lambda r: fmt(r.machine_busy_pct, 0)),
        ("layer queue max", lambda r: "-" if r.max_queue < 0 else str(r.max_queue)),
        (
            "DB connections max",
            lambda r: "-" if r.max_db_connections < 0 else str(r.max_db_connections),
        ),
        (
            "over-capacity logs",
            lambda r: "-" if r.over_capacity_lines < 0 else str(r.over_capacity_lines),
        ),
        ("server error logs", lambda r: "-" if r.error_lines < 0 else str(r.error_lines)),
    ]
    titles = {"channels": "channels (daphne)", "baseline": "baseline (websockets)"}
    lines.append(f"{'':26}" + "".join(f"{titles[r.name]:>24}" for r in results))
    for label, cell in rows:
        lines.append(f"{label:26}" + "".join(f"{cell(r):>24}" for r in results))
    lines.append("")
    for r in results:
        if r.connect_errors:
            lines.append(f"{titles[r.name]} connect errors: {r.connect_errors}")
        if r.producer_error_samples:
            lines.append(f"{titles[r.name]} producer errors: {r.producer_error_samples}")
        lost_ok = r.lost_subscriptions == 0 and r.never_produced == 0 and r.failed == 0
        lines.append(
            f"{titles[r.name]}: zero lost {'PASS' if lost_ok else 'MISS'} "
            f"({r.lost_subscriptions} lost, {r.failed} refused, {r.never_produced} nodes never "
            f"accepted a batch); p99 <= {TARGET_P99_MS:g} ms "
            f"{'PASS' if r.p99_ms <= TARGET_P99_MS else 'MISS'} ({fmt(r.p99_ms)} ms) "
            f"=> {'PASS' if r.passed else 'MISS'}"
        )
    return "\n".join(lines)


async def daphne_start(
    procs: Processes, name: str, port: int, env: dict[str, str], app: str
) -> asyncio.subprocess.Process:
    argv = [str(BIN / "daphne"), "-b", HOST, "-p", str(port), app]
    proc = await procs.start(name, *argv, env=env)
    await wait_port(port, proc, name)
    return proc


async def orchestrate(
    plan: Plan,
    env: dict[str, str],
    work: Path,
    device_tokens: dict[int, str],
    spec: list[dict[str, Any]],
    *,
    baseline: bool,
    profile_dir: Path | None,
) -> list[PhaseResult]:
    main_task = asyncio.current_task()
    assert main_task is not None
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, main_task.cancel)
    procs = Processes(work)
    results = []
    try:
        port = harness.free_port()
        daphne = await daphne_start(procs, "daphne", port, env, plan.asgi)
        ingest = None
        if plan.ingest == "separate" and plan.producer == "api":
            ingest_port = harness.free_port()
            ingest = (
                await daphne_start(procs, "daphne-ingest", ingest_port, env, plan.asgi),
                ingest_port,
            )
        profile = profile_dir / "ws_fanout-daphne.txt" if profile_dir else None
        for path in (profile, profile.with_name(profile.stem + "-ingest.txt")) if profile else ():
            path.unlink(missing_ok=True)  # never report an earlier run's profile
        result = await run_phase(
            name="channels",
            plan=plan,
            procs=procs,
            env=env,
            work=work,
            server=daphne,
            port=port,
            device_tokens=device_tokens,
            spec=spec,
            producer_mode=plan.producer,
            profile=profile,
            ingest=ingest,
        )
        await procs.stop(daphne)
        result.over_capacity_lines, result.error_lines = daphne_log_counts(work / "daphne.log")
        if ingest is not None:
            await procs.stop(ingest[0])
            over, errors = daphne_log_counts(work / "daphne-ingest.log")
            result.over_capacity_lines += over
            result.error_lines += errors
        results.append(result)
        for path in (profile, profile.with_name(profile.stem + "-ingest.txt")) if profile else ():
            if path.exists():
                print(f"\npy-spy profile ({path}):\n{profile_summary(path)}")

        if baseline:
            port = harness.free_port()
            server = await procs.start(
                "baseline",
                sys.executable,
                "-m",
                "bench.ws_fanout",
                "--role=baseline",
                f"--port={port}",
                env=env,
            )
            await wait_port(port, server, "the baseline server")
            results.append(
                await run_phase(
                    name="baseline",
                    plan=plan,
                    procs=procs,
                    env=env,
                    work=work,
                    server=server,
                    port=port,
                    device_tokens=device_tokens,
                    spec=spec,
                    producer_mode="baseline",
                    profile=None,
                )
            )
            await procs.stop(server)
    finally:
        await procs.stop_all()
        loop.remove_signal_handler(signal.SIGTERM)
    return results


def plan_from(args: argparse.Namespace) -> Plan:
    if args.quick:
        return Plan(
            nodes=5,
            clients=50,
            watchers=2,
            seconds=5,
            batch_ms=args.batch_ms,
            producer=args.producer,
            ingest=args.ingest,
            asgi=args.asgi,
        )
    watchers = args.watchers if args.watchers is not None else max(1, args.clients // 50)
    return Plan(
        nodes=args.nodes,
        clients=args.clients,
        watchers=watchers,
        seconds=args.seconds,
        batch_ms=args.batch_ms,
        producer=args.producer,
        ingest=args.ingest,
        asgi=args.asgi,
    )


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.ws_fanout", description=__doc__)
    parser.add_argument(
        "--clients", type=int, default=1000, help="single-node clients, spread over the nodes"
    )
    parser.add_argument(
        "--watchers", type=int, default=None, help="clients watching every node (clients/50)"
    )
    parser.add_argument("--nodes", type=int, default=100)
    parser.add_argument("--seconds", type=float, default=30)
    parser.add_argument(
        "--batch-ms", type=int, default=1000, help="batch interval per node (gateway: 1000)"
    )
    parser.add_argument(
        "--producer",
        choices=["api", "groupsend"],
        default="api",
        help="api: the real batch API; groupsend: channel layer directly, no HTTP/DB",
    )
    parser.add_argument(
        "--ingest",
        choices=["same", "separate"],
        default="separate",
        help="api: serve the batch API from a daphne of its own, as the production topology "
        "does (separate), or from the websocket daphne (same)",
    )
    parser.add_argument(
        "--asgi",
        default="imewe.asgi:application",
        help="the application daphne serves (what-if experiments; extend PYTHONPATH to find it)",
    )
    parser.add_argument("--quick", action="store_true", help="50 clients, 5 nodes, 5 s")
    parser.add_argument("--no-baseline", action="store_true")
    parser.add_argument(
        "--profile", action="store_true", help="py-spy the daphne process (var/bench/)"
    )
    parser.add_argument("--keep-db", action="store_true", help="keep imewe_bench_ws afterwards")
    parser.add_argument(
        "--role", choices=["clients", "producer", "baseline"], help=argparse.SUPPRESS
    )
    parser.add_argument("--spec", help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    if args.role:
        role = {"clients": clients_main, "producer": producer_main, "baseline": baseline_main}
        asyncio.run(role[args.role](args))
        return
    plan = plan_from(args)
    raise_open_files_limit()
    work = Path(tempfile.mkdtemp(prefix="ws_fanout-"))
    env = server_env(work / "var")
    os.environ.update(env)  # the seeding below runs Django in this process
    profile_dir = ROOT / "var" / "bench" if args.profile else None
    if profile_dir is not None:
        profile_dir.mkdir(parents=True, exist_ok=True)
    print(f"ws_fanout: logs and raw results in {work}", flush=True)
    try:
        began = time.perf_counter()
        redis_keys_delete()
        DATABASE.recreate()
        harness.migrate(env)
        device_tokens, spec = seed(plan)
        print(
            f"  set up {plan.nodes} nodes and {plan.total_clients} subscriptions in "
            f"{time.perf_counter() - began:.1f} s",
            flush=True,
        )
        results = asyncio.run(
            orchestrate(
                plan,
                env,
                work,
                device_tokens,
                spec,
                baseline=not args.no_baseline,
                profile_dir=profile_dir,
            )
        )
        print(report(plan, results), flush=True)
    except (KeyboardInterrupt, asyncio.CancelledError):
        print("ws_fanout: interrupted; every server and client it started is stopped", flush=True)
        sys.exit(130)
    finally:
        redis_keys_delete()
        if not args.keep_db:
            DATABASE.drop()


if __name__ == "__main__":
    main()
