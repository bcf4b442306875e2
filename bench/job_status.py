"""Job status polling benchmark (issue 21 item 11): 100 phone apps or shop-floor screens, each
polling one job's status once a second, against the web process as production runs it.

    .venv/bin/python -m bench.job_status [--clients 100] [--seconds 30] [--quick]
        [--server daphne|uvicorn|granian] [--only PHASE ...]

The server is docker-compose's `web` service: `daphne imewe.asgi:application` with DEBUG=0,
the psycopg pool on (DB_POOL_MIN / DB_POOL_MAX as compose gives them), PROXY_COUNT=1,
TRUST_X_FORWARDED_PROTO=1, SECURE_SSL_REDIRECT=1, JSON logs and the access log on stdout, as many
processes as compose runs by default (WEB_PROCESSES: 2). The
clients send the headers nginx adds (X-Forwarded-For with an address per client,
X-Forwarded-Proto https); nginx and TLS themselves are not in the path. `--server` runs the
same application under uvicorn (uvloop, httptools) or granian instead of compose's server, one
process each, for a comparison on the same seeded job.

Seeding goes through the services, as the platform makes a job: a design team whose job of 14
parts was submitted (validated against the fleet, estimated), placed by the scheduler on six
nodes, and partly made through the work API (parts started, progress reported, completed),
with telemetry from the machines at work; one designer of the team per client, each with an
access token of its own (simplejwt, as the token API issues them). Phases, each `--seconds`
long after a short warm-up, every client sending once a second, staggered over the second:

| phase | what each client asks every second |
| --- | --- |
| healthz | `/healthz` (the server's floor: no authentication, no database) |
| me | `/api/v1/auth/me/` (an authenticated API call: JWT, revocation check, throttle) |
| job full | `/api/v1/jobs/<id>/`: the job with its parts and history |
| job fields | `/api/v1/jobs/<id>/?fields=id,status,parts_total` |
| job 304 | `/api/v1/jobs/<id>/` with If-None-Match: the ETag of its first answer |
| app | the job (fields, If-None-Match), then `/api/v1/nodes/`, then `/api/v1/telemetry/latest/` |

Prints per phase and request kind: requests, p50/p95/p99/max latency, status counts (200, 304,
429, 5xx, other: any 429 or 5xx is a failure), body bytes per answer, the server's CPU, the
bench database's PostgreSQL backends' CPU and this client's CPU and schedule lag (how late a
client sent its request: large means the client, not the server, was the bottleneck). Verdict:
job status p95 <= 50 ms at 100 concurrent clients. Database bench_jobstatus (dropped and created
anew, dropped at the end), Redis DB 9 under the key prefix `benchjob`. A MISS does not fail the
run; only a broken run does. See bench/README.md, section job_status.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import math
import os
import resource
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import psycopg

from bench import harness

ROOT = harness.ROOT
BIN = Path(sys.executable).parent  # the virtualenv's bin/: daphne lives there
DATABASE = harness.BenchDatabase("bench_jobstatus")
REDIS_URL = "redis://127.0.0.1:6379/9"
KEY_PREFIX = "benchjob"  # cache (throttle counts) and channel layer keys; deleted before and after
HOST = harness.HOST

TARGET_P95_MS = 50.0
TARGET_CLIENTS = 100
PERIOD_S = 1.0  # each client polls once a second

FIELDS = "id,status,parts_total"

PRINTER = {
    "kind": "fdm_printer",
    "processes": ["fdm"],
    "materials": ["PLA", "PETG"],
    "build_x_mm": 250,
    "build_y_mm": 210,
    "build_z_mm": 220,
    "precision_mm": 0.1,
    "rated_power_kw": 0.35,
    "latitude": 6.45,
    "longitude": 3.39,
    "software_version": "bench/1",
}
MILL = {
    "kind": "cnc_mill",
    "processes": ["milling", "drilling"],
    "materials": ["aluminium 6061", "steel"],
    "build_x_mm": 600,
    "build_y_mm": 400,
    "build_z_mm": 300,
    "precision_mm": 0.01,
    "rated_power_kw": 7.5,
    "latitude": 6.45,
    "longitude": 3.39,
    "software_version": "bench/1",
}
# A drone frame: printed arms, brackets and covers, milled plates and a motor mount.
PRINTED = [
    ("arm", 4, "PLA", (180, 22, 18)),
    ("motor bracket", 4, "PETG", (40, 40, 25)),
    ("canopy", 1, "PETG", (160, 110, 60)),
    ("battery tray", 1, "PLA", (120, 60, 12)),
    ("gps mast", 1, "PLA", (20, 20, 90)),
]
MILLED = [
    ("top plate", 1, "aluminium 6061", (220, 220, 3)),
    ("bottom plate", 1, "aluminium 6061", (220, 220, 3)),
    ("motor mount", 1, "steel", (60, 60, 8)),
]


def compose_web() -> tuple[int, dict[str, str]]:
    """docker-compose.yml's web service: its default replica count (`${WEB_PROCESSES:-N}`) and
    its pool settings, so that the benchmark runs what compose deploys."""
    import re

    import yaml

    web = yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"]["web"]
    replicas = re.fullmatch(r"\$\{WEB_PROCESSES:-(\d+)\}", str(web["deploy"]["replicas"]))
    assert replicas is not None, web["deploy"]["replicas"]
    pool = {k: str(web["environment"][k]) for k in ("DB_POOL_MIN", "DB_POOL_MAX")}
    return int(replicas.group(1)), pool


def compose_web_server() -> str:
    """The ASGI server docker-compose.yml's web service runs (its command's first word)."""
    import yaml

    web = yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"]["web"]
    return str(web["command"][0])


def server_env(var_dir: Path) -> dict[str, str]:
    """docker-compose's web service, on plain HTTP over loopback behind no nginx: the clients
    send nginx's X-Forwarded-For and X-Forwarded-Proto themselves."""
    return harness.server_env(
        database=DATABASE,
        redis_url=REDIS_URL,
        key_prefix=KEY_PREFIX,
        var_dir=var_dir,
        IMEWE_PROCESS_ROLE="web",
        PROXY_COUNT="1",
        TRUST_X_FORWARDED_PROTO="1",
        SECURE_SSL_REDIRECT="1",
        DB_POOL="1",
        **compose_web()[1],
        LOG_FORMAT="json",
        JWT_ACCESS_MINUTES="60",  # a phone refreshes its token; not what is measured here
    )


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile of sorted `values` (nan when empty)."""
    if not values:
        return float("nan")
    index = min(len(values) - 1, max(0, round(q / 100 * len(values) + 0.5) - 1))
    return values[index]


def step(name: str, detail: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {name}: {detail}", flush=True)


def redis_keys_delete() -> int:
    return harness.redis_keys_delete(REDIS_URL, f"*{KEY_PREFIX}*")


# --- Seeding through the services ------------------------------------------------------------


@dataclass(frozen=True)
class Seeded:
    job_id: int
    parts: int
    history: int
    tokens: list[str]  # one access token per client, each of another designer of the team
    parts_by_status: dict[str, int]


def seed(clients: int) -> Seeded:
    import django

    django.setup()
    from django.db import connections
    from django.utils import timezone

    from apps.jobs.models import Part, StatusChange
    from apps.jobs.services import (
        job_submit,
        parts_schedule,
        work_complete,
        work_progress,
        work_queue,
        work_start,
    )
    from apps.telemetry.services import telemetry_ingest
    from apps.users.models import Organization
    from apps.users.roles import Role
    from apps.users.services import organization_create, user_create
    from apps.users.tokens import tokens_issue
    from apps.vendors.models import FabricationNode
    from apps.vendors.services import (
        node_config_save,
        node_decide,
        node_register,
        node_transition,
    )

    forge = organization_create(name="Bench Forge", kind=Organization.Kind.VENDOR)
    site = organization_create(name="Bench Site", kind=Organization.Kind.OPERATOR_SITE)
    team = organization_create(name="Bench Studio", kind=Organization.Kind.DESIGN_TEAM)
    admin = user_create(email="admin@bench.test", password=None, role=Role.ADMIN)
    seller = user_create(
        email="vendor@bench.test", password=None, role=Role.VENDOR, organization=forge
    )
    designers = [
        user_create(
            email=f"designer{i:03d}@bench.test",
            password=None,
            role=Role.DESIGNER,
            organization=team,
        )
        for i in range(clients)
    ]
    nodes = [(f"Printer-{i:02d}", PRINTER) for i in range(1, 5)]
    nodes += [(f"Mill-{i:02d}", MILL) for i in range(1, 3)]
    for name, fields in nodes:
        node = node_register(by=seller, vendor=forge, site=site, name=name, **fields)
        node = node_decide(node=node, by=admin, approve=True)
        node_config_save(node=node, by=seller, config={"bench": True})
        node_transition(node=node, to=FabricationNode.Status.IDLE, by=seller, reason="bench")

    parts: list[dict[str, Any]] = []
    for base, count, material, (x, y, z) in PRINTED:
        for n in range(1, count + 1):
            name = f"{base} {n}" if count > 1 else base
            parts.append(
                {"name": name, "material": material, "process": "fdm", "quantity": 1}
                | {"size_x_mm": x, "size_y_mm": y, "size_z_mm": z, "complexity": 4}
            )
    for name, quantity, material, (x, y, z) in MILLED:
        parts.append(
            {"name": name, "material": material, "process": "milling", "quantity": quantity}
            | {"size_x_mm": x, "size_y_mm": y, "size_z_mm": z, "complexity": 6}
        )
    job = job_submit(
        by=designers[0],
        title="Survey drone frame",
        parts=parts,
        priority=6,
        metadata={"customer": "bench", "revision": "C"},
    )
    parts_schedule()

    # The machines take work as the work API hands it out: on each node the first part of its
    # queue is made, the second started and under way.
    now = timezone.now()
    running: list[int] = []
    for node in FabricationNode.objects.filter(vendor=forge).order_by("pk"):
        for position, part in enumerate(work_queue(node_id=node.pk)[:2]):
            try:
                work_start(node_id=node.pk, part_id=part.pk)
            except Exception as exc:  # held for energy or a power cap: it waits, as on a floor
                print(f"  {node.name}: {part.name} not started ({exc})")
                break
            for pct in (12.5, 37.0, 64.5):
                work_progress(node_id=node.pk, part_id=part.pk, progress_pct=pct)
            if position == 0:
                work_complete(
                    node_id=node.pk,
                    part_id=part.pk,
                    quality_score=0.96,
                    report={"material_used_g": 41.0, "energy_kwh": 0.3},
                )
            else:
                running.append(node.pk)
    for node_id in running:  # a minute of readings from each machine at work
        points = [
            {
                "node": node_id,
                "time": (now - timedelta(seconds=60 - s)).isoformat(),
                "temperature_c": 41.0 + s / 30,
                "power_kw": 0.3,
                "vibration_mm_s": 1.1,
                "progress_pct": 64.5,
            }
            for s in range(60)
        ]
        telemetry_ingest(points=points, node_id=node_id)

    tokens = [str(tokens_issue(user=u, otp_verified=False).access_token) for u in designers]
    statuses = Counter(Part.objects.filter(job=job).values_list("status", flat=True))
    seeded = Seeded(
        job_id=job.pk,
        parts=sum(statuses.values()),
        history=StatusChange.objects.filter(job=job).count(),
        tokens=tokens,
        parts_by_status=dict(statuses),
    )
    connections.close_all()
    return seeded


# --- The server ------------------------------------------------------------------------------


@dataclass
class Server:
    process: subprocess.Popen[bytes]
    port: int
    log: Path

    def tail(self, lines: int = 30) -> str:
        text = self.log.read_text(errors="replace") if self.log.exists() else ""
        return "\n".join(text.splitlines()[-lines:])

    def stop(self) -> None:
        if self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=10)


SERVERS = ("daphne", "uvicorn", "granian")


def server_command(server: str, port: int) -> list[str]:
    """How each ASGI server runs the web service, one process each (compose scales by replicas).
    daphne is the compose default today; the others are measured against it (`--server`)."""
    app = "imewe.asgi:application"
    if server == "daphne":
        return [str(BIN / "daphne"), "-b", HOST, "-p", str(port), app]
    if server == "uvicorn":
        return [
            str(BIN / "uvicorn"),
            *("--host", HOST, "--port", str(port)),
            *("--loop", "uvloop", "--http", "httptools", "--lifespan", "off"),
            "--no-proxy-headers",  # the client's address is ClientAddressMiddleware's to say
            app,
        ]
    assert server == "granian", server
    return [
        str(BIN / "granian"),
        *("--interface", "asgi", "--host", HOST, "--port", str(port)),
        *("--workers", "1", "--loop", "uvloop", "--access-log"),
        app,
    ]


def server_start(env: dict[str, str], work: Path, index: int, server: str) -> Server:
    """One process of the compose web service, run by `server`."""
    port = harness.free_port()
    log = work / f"web-{index}.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            server_command(server, port),
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    return Server(process, port, log)


async def wait_healthy(server: Server, within_s: float = 90) -> None:
    deadline = time.monotonic() + within_s
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise RuntimeError(f"the server exited ({server.process.returncode}):\n{server.tail()}")
        with contextlib.suppress(OSError, asyncio.IncompleteReadError):
            connection = Connection(HOST, server.port)
            status, _, _ = await connection.request(
                build_request("/healthz", {"X-Forwarded-For": "10.0.0.1"})
            )
            connection.close()
            if status == 200:
                return
        await asyncio.sleep(0.2)
    raise RuntimeError(
        f"the server did not answer /healthz within {within_s:.0f} s:\n{server.tail()}"
    )


# --- A small keep-alive HTTP/1.1 client (no third-party HTTP client in the venv) ------------


def build_request(path: str, headers: dict[str, str]) -> bytes:
    lines = [f"GET {path} HTTP/1.1", f"Host: {HOST}", "Accept: application/json"]
    lines += [f"{k}: {v}" for k, v in headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


class Connection:
    """One client's connection, kept alive across its requests like a phone's HTTP stack; a
    connection the server closed while idle is opened again (counted) and the request sent
    once more."""

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None
        self.reconnects = 0

    async def request(self, raw: bytes) -> tuple[int, dict[str, str], bytes]:
        reused = self.writer is not None
        try:
            return await self._request(raw)
        except (ConnectionError, asyncio.IncompleteReadError):
            self.close()
            if not reused:
                raise
            self.reconnects += 1
            return await self._request(raw)

    async def _request(self, raw: bytes) -> tuple[int, dict[str, str], bytes]:
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
        assert self.reader is not None and self.writer is not None
        self.writer.write(raw)
        await self.writer.drain()
        status = int((await self.reader.readuntil(b"\r\n")).split()[1])
        head: dict[str, str] = {}
        while (line := await self.reader.readuntil(b"\r\n")) != b"\r\n":
            name, _, value = line.decode("latin-1").partition(":")
            head[name.strip().lower()] = value.strip()
        if status == 304 or status < 200:
            body = b""
        elif "content-length" in head:
            body = await self.reader.readexactly(int(head["content-length"]))
        elif head.get("transfer-encoding", "").lower() == "chunked":
            chunks = []
            while size := int((await self.reader.readuntil(b"\r\n")).split(b";")[0], 16):
                chunks.append(await self.reader.readexactly(size))
                await self.reader.readexactly(2)
            await self.reader.readuntil(b"\r\n")
            body = b"".join(chunks)
        else:
            body = await self.reader.read()
            self.close()
        if head.get("connection", "").lower() == "close":
            self.close()
        return status, head, body

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
        self.reader = self.writer = None


# --- Phases ----------------------------------------------------------------------------------


@dataclass
class Client:
    index: int
    token: str
    connection: Connection
    etag: str = ""

    def headers(self, **extra: str) -> dict[str, str]:
        # what nginx adds: the phone's address and the scheme it came in on
        address = f"10.{self.index // 250 % 250}.{self.index % 250}.{1 + self.index // 62500}"
        return {
            "Authorization": f"Bearer {self.token}",
            "X-Forwarded-For": address,
            "X-Forwarded-Proto": "https",
            **extra,
        }


@dataclass(frozen=True)
class Ask:
    kind: str  # the request kind the figures are kept under
    build: Callable[[Client], bytes]


@dataclass(frozen=True)
class Phase:
    name: str
    asks: tuple[Ask, ...]  # sent one after the other every second, like an app's refresh
    job: bool = False  # a job status phase: judged against the target


@dataclass
class Kind:
    latencies_ms: list[float] = field(default_factory=list)
    statuses: Counter[str] = field(default_factory=Counter)
    body_bytes: int = 0
    errors: Counter[str] = field(default_factory=Counter)

    @property
    def requests(self) -> int:
        return len(self.latencies_ms) + sum(self.errors.values())

    @property
    def failures(self) -> int:
        return (
            self.statuses["429"]
            + self.statuses["5xx"]
            + self.statuses["other"]
            + sum(self.errors.values())
        )


@dataclass
class Cost:
    wall_s: float
    server_cpu_s: float
    postgres_cpu_s: float
    client_cpu_s: float
    lag_ms: list[float]  # how late each tick began (sorted)
    ticks: int
    overruns: int  # ticks that ended after the next was due
    reconnects: int


@dataclass
class PhaseResult:
    phase: Phase
    kinds: dict[str, Kind]
    cost: Cost


def phases(job_id: int) -> list[Phase]:
    job = f"/api/v1/jobs/{job_id}/"

    def plain(path: str) -> Callable[[Client], bytes]:
        return lambda c: build_request(path, c.headers())

    def conditional(path: str) -> Callable[[Client], bytes]:
        return lambda c: build_request(path, c.headers(**{"If-None-Match": c.etag}))

    return [
        Phase("healthz", (Ask("healthz", lambda c: build_request("/healthz", c.headers())),)),
        Phase("me", (Ask("me", plain("/api/v1/auth/me/")),)),
        Phase("job full", (Ask("job full", plain(job)),), job=True),
        Phase("job fields", (Ask("job fields", plain(f"{job}?fields={FIELDS}")),), job=True),
        Phase("job 304", (Ask("job 304", conditional(job)),), job=True),
        Phase(
            "app",
            (
                Ask("app: job fields 304", conditional(f"{job}?fields={FIELDS}")),
                Ask("app: nodes", plain("/api/v1/nodes/")),
                Ask("app: latest telemetry", plain("/api/v1/telemetry/latest/")),
            ),
        ),
    ]


def classify(status: int) -> str:
    if status in (200, 304, 429):
        return str(status)
    return "5xx" if status >= 500 else "other"


async def learn_etags(clients: list[Client], path: str) -> None:
    """Each client's first answer, whose ETag it sends back from then on."""

    async def one(client: Client) -> None:
        status, head, _ = await client.connection.request(build_request(path, client.headers()))
        if status != 200 or "etag" not in head:
            raise RuntimeError(f"{path} answered {status} without an ETag: {head}")
        client.etag = head["etag"]

    await asyncio.gather(*(one(c) for c in clients))


def postgres_backends(db: psycopg.Connection[Any]) -> list[int]:
    rows = db.execute(
        "SELECT pid FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()",
        (DATABASE.name,),
    ).fetchall()
    return [int(r[0]) for r in rows]


class Profiler:
    """py-spy on the web process(es) for each phase's measured window (--profile DIR): which
    code holds the GIL, i.e. where the process's Python CPU goes (one GIL: one core at most)."""

    RATE = 200

    def __init__(self, directory: Path | None) -> None:
        self.directory = directory
        self.files: list[Path] = []

    async def record(
        self, phase: str, servers: list[Server], *, delay: float, seconds: float
    ) -> None:
        if self.directory is None:
            return
        await asyncio.sleep(max(0.0, delay))
        spies = []
        for server in servers:
            out = self.directory / f"job_status-{phase.replace(' ', '_')}-{server.port}.txt"
            out.unlink(missing_ok=True)  # never report an earlier run's profile
            argv = [str(BIN / "py-spy"), "record", "--pid", str(server.process.pid)]
            argv += ["--rate", str(self.RATE), "--nonblocking", "--gil", "--format", "raw"]
            argv += ["--duration", str(max(1, int(seconds))), "--output", str(out)]
            spies.append(
                await asyncio.create_subprocess_exec(
                    *argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
                )
            )
            self.files.append(out)
        await asyncio.gather(*(spy.wait() for spy in spies))


PROFILED = ("(apps/", "(imewe/", "(django/", "(rest_framework", "(rest_flex_fields")


def profile_summary(path: Path, top: int = 25) -> str:
    """The hottest functions of a py-spy raw file: by their own samples, and inclusive (the
    project's, Django's and DRF's frames: where a request's time goes)."""
    own: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    total = 0
    for line in path.read_text(errors="replace").splitlines():
        stack, _, count = line.rpartition(" ")
        if not count.isdigit():
            continue
        frames = stack.split(";")
        if any(f.startswith(("_worker (", "select (", "wait (")) for f in frames[-1:]):
            continue  # an idle thread or the reactor waiting
        n = int(count)
        total += n
        own[frames[-1]] += n
        for frame in set(frames):
            if any(p in frame for p in PROFILED):
                inclusive[frame] += n
    if not total:
        return f"{path.name}: no samples"
    lines = [f"{path.name}: {total} busy samples", "  self:"]
    lines += [f"    {100 * n / total:5.1f}%  {f}" for f, n in own.most_common(top // 2)]
    lines.append("  inclusive (apps, imewe, Django, DRF):")
    lines += [f"    {100 * n / total:5.1f}%  {f}" for f, n in inclusive.most_common(2 * top)]
    return "\n".join(lines)


def own_cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


async def run_phase(
    phase: Phase,
    clients: list[Client],
    servers: list[Server],
    db: psycopg.Connection[Any],
    *,
    seconds: float,
    warmup_s: float,
    profiler: Profiler,
) -> PhaseResult:
    kinds = {ask.kind: Kind() for ask in phase.asks}
    lags: list[float] = []
    ticks = {"ticks": 0, "overruns": 0}
    loop = asyncio.get_running_loop()
    start = loop.time() + 0.2
    measured_from = start + warmup_s
    end = measured_from + seconds
    reconnects_before = sum(c.connection.reconnects for c in clients)

    async def client_loop(client: Client) -> None:
        due = start + PERIOD_S * client.index / len(clients)  # phones are not in step
        while due < end:
            delay = due - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            measured = due >= measured_from
            if measured:
                lags.append((loop.time() - due) * 1000)
                ticks["ticks"] += 1
            for ask in phase.asks:
                kind = kinds[ask.kind]
                raw = ask.build(client)
                began = time.perf_counter()
                try:
                    status, _, body = await client.connection.request(raw)
                except (OSError, asyncio.IncompleteReadError, ValueError, IndexError) as exc:
                    if measured:
                        kind.errors[f"{type(exc).__name__}: {exc}"[:120]] += 1
                    client.connection.close()
                    continue
                if measured:
                    kind.latencies_ms.append((time.perf_counter() - began) * 1000)
                    kind.statuses[classify(status)] += 1
                    kind.body_bytes += len(body)
            due += PERIOD_S
            if loop.time() > due:
                # the tick ran into the next: skip the ticks missed, never burst, and keep this
                # client's place in the second, as a phone's interval timer does. Starting
                # again at once (the next tick = now) lined the late clients up behind the
                # same slow answer: a moment's overload became a phase of bursts of 100.
                if measured:
                    ticks["overruns"] += 1
                due += PERIOD_S * math.ceil((loop.time() - due) / PERIOD_S)

    # the measured window's costs: sampled when it starts and when it ends
    async def sample_at(when: float) -> tuple[float, float, dict[int, float], float]:
        await asyncio.sleep(max(0.0, when - loop.time()))
        pg = {pid: harness.cpu_seconds(pid) for pid in postgres_backends(db)}
        server = sum(harness.tree_cpu_seconds(s.process.pid) for s in servers)
        return time.perf_counter(), server, pg, own_cpu_s()

    first = asyncio.ensure_future(sample_at(measured_from))
    spying = asyncio.ensure_future(
        profiler.record(phase.name, servers, delay=measured_from - loop.time(), seconds=seconds)
    )
    await asyncio.gather(*(client_loop(c) for c in clients))
    await spying
    t0, server0, pg0, own0 = await first
    t1, server1, pg1, own1 = await sample_at(loop.time())
    postgres = sum(v - pg0.get(pid, 0.0) for pid, v in pg1.items() if v == v)
    for kind in kinds.values():
        kind.latencies_ms.sort()
    lags.sort()
    return PhaseResult(
        phase,
        kinds,
        Cost(
            wall_s=t1 - t0,
            server_cpu_s=server1 - server0,
            postgres_cpu_s=postgres,
            client_cpu_s=own1 - own0,
            lag_ms=lags,
            ticks=ticks["ticks"],
            overruns=ticks["overruns"],
            reconnects=sum(c.connection.reconnects for c in clients) - reconnects_before,
        ),
    )


# --- Report ----------------------------------------------------------------------------------


def verdict(ok: bool) -> str:
    return "PASS" if ok else "MISS"


def report(
    results: list[PhaseResult],
    seeded: Seeded,
    clients: int,
    processes: int,
    seconds: float,
    server: str,
) -> str:
    cores = os.cpu_count() or 1
    by_status = ", ".join(f"{n} {s}" for s, n in sorted(seeded.parts_by_status.items()))
    out = [
        "",
        "Imewe job status benchmark",
        f"  {clients} clients, each sending once a second for {seconds:g} s per phase (after a"
        " warm-up), staggered over the second;",
        f"  {processes} web process(es): {server} imewe.asgi:application, DEBUG=0, psycopg pool"
        f" {'-'.join(compose_web()[1].values())}; nginx and TLS not in the path;",
        f"  job {seeded.job_id}: {seeded.parts} parts ({by_status}), {seeded.history} status"
        f" changes; {cores} CPU cores shared by the clients, {server}, PostgreSQL and Redis.",
        "",
        f"  {'request':<26}{'n':>7}{'p50 ms':>9}{'p95 ms':>9}{'p99 ms':>9}{'max ms':>9}"
        f"{'200':>7}{'304':>7}{'429':>6}{'5xx':>6}{'other':>7}{'bytes/answer':>14}",
    ]
    for result in results:
        for name, kind in result.kinds.items():
            lat = kind.latencies_ms
            answered = len(lat)
            other = kind.statuses["other"] + sum(kind.errors.values())
            out.append(
                f"  {name:<26}{kind.requests:>7,}{percentile(lat, 50):>9.1f}"
                f"{percentile(lat, 95):>9.1f}{percentile(lat, 99):>9.1f}"
                f"{(lat[-1] if lat else float('nan')):>9.1f}"
                f"{kind.statuses['200']:>7,}{kind.statuses['304']:>7,}{kind.statuses['429']:>6,}"
                f"{kind.statuses['5xx']:>6,}{other:>7,}"
                f"{(kind.body_bytes / answered if answered else 0):>14,.0f}"
            )
    out += [
        "",
        f"  {'phase':<26}{'req/s':>7}{'server cores':>14}{'ms CPU/req':>12}{'postgres cores':>16}"
        f"{'client cores':>14}{'lag p99 ms':>12}{'overruns':>10}",
    ]
    for result in results:
        cost = result.cost
        requests = sum(k.requests for k in result.kinds.values())
        wall = max(cost.wall_s, 1e-9)
        out.append(
            f"  {result.phase.name:<26}{requests / wall:>7.0f}{cost.server_cpu_s / wall:>14.2f}"
            f"{1000 * cost.server_cpu_s / max(requests, 1):>12.2f}"
            f"{cost.postgres_cpu_s / wall:>16.2f}{cost.client_cpu_s / wall:>14.2f}"
            f"{percentile(cost.lag_ms, 99):>12.1f}{cost.overruns:>10,}"
        )
    out += [
        "  (cores: CPU seconds per wall second of the measured window; server: the web",
        "  process(es), all threads; postgres: the bench database's backends; client: this",
        "  process, every client; lag: how late a client began its second's requests, large when",
        "  the client itself was short of CPU; overruns: seconds whose requests took longer than",
        "  the second)",
    ]
    errors: Counter[str] = Counter()
    for result in results:
        for name, kind in result.kinds.items():
            for text, n in kind.errors.items():
                errors[f"{name}: {text}"] += n
            for status in ("429", "5xx", "other"):
                if kind.statuses[status]:
                    errors[f"{name}: HTTP {status}"] += kind.statuses[status]
        if result.cost.reconnects:
            errors[f"{result.phase.name}: connections reopened"] += result.cost.reconnects
    if errors:
        out += ["", "  FAILURES (429, 5xx, other statuses, broken connections):"]
        out += [f"    {n:>6,}  {text}" for text, n in errors.most_common()]
    floor = next((r for r in results if r.phase.name == "me"), None)
    out += ["", "  target: job status p95 <= 50 ms at 100 concurrent clients"]
    for result in results:
        if not result.phase.job:
            continue
        kind = next(iter(result.kinds.values()))
        p95 = percentile(kind.latencies_ms, 95)
        ok = p95 <= TARGET_P95_MS and not kind.failures and clients >= TARGET_CLIENTS
        against = ""
        if floor is not None:
            floor_p95 = percentile(next(iter(floor.kinds.values())).latencies_ms, 95)
            against = f"; the authenticated floor (me) p95 {floor_p95:.1f} ms"
        note = "" if clients >= TARGET_CLIENTS else f" (only {clients} clients: no verdict)"
        failed = f", {kind.failures} failed" if kind.failures else ""
        out.append(
            f"  {verdict(ok) if clients >= TARGET_CLIENTS else '----'}  {result.phase.name}:"
            f" p95 {p95:.1f} ms{failed}{against}{note}"
        )
    return "\n".join(out)


# --- Orchestration ---------------------------------------------------------------------------


async def measure(
    seeded: Seeded, servers: list[Server], args: argparse.Namespace, profiler: Profiler
) -> list[PhaseResult]:
    for server in servers:
        await wait_healthy(server)
    clients = [
        Client(i, seeded.tokens[i], Connection(HOST, servers[i % len(servers)].port))
        for i in range(args.clients)
    ]
    job_path = f"/api/v1/jobs/{seeded.job_id}/"
    results = []
    with psycopg.connect(DATABASE.url, autocommit=True) as db:
        for phase in phases(seeded.job_id):
            if args.only and phase.name not in args.only:
                continue
            if any(a.kind.startswith("app: job") for a in phase.asks):
                await learn_etags(clients, f"{job_path}?fields={FIELDS}")
            elif phase.name == "job 304":
                await learn_etags(clients, job_path)
            step("phase", f"{phase.name}: {args.clients} clients, {args.seconds:g} s")
            results.append(
                await run_phase(
                    phase,
                    clients,
                    servers,
                    db,
                    seconds=args.seconds,
                    warmup_s=args.warmup,
                    profiler=profiler,
                )
            )
    for client in clients:
        client.connection.close()
    return results


def run(args: argparse.Namespace) -> None:
    work = Path(tempfile.mkdtemp(prefix="imewe-bench-jobstatus-"))
    env = server_env(work)
    os.environ.update({k: v for k, v in env.items() if k != "PYTHONUNBUFFERED"})
    servers: list[Server] = []
    try:
        step("database", f"{DATABASE.name}: drop, create, migrate")
        DATABASE.recreate()
        redis_keys_delete()
        harness.migrate(env)
        step("seed", f"a job through the services, {args.clients} designers with a token each")
        seeded = seed(args.clients)
        step(
            "seed",
            f"job {seeded.job_id}: {seeded.parts} parts {seeded.parts_by_status},"
            f" {seeded.history} status changes",
        )
        redis_keys_delete()  # the seeding's cache entries; the servers start afresh
        for index in range(args.processes):
            servers.append(server_start(env, work, index, args.server))
        step(args.server, ", ".join(f"{HOST}:{s.port} (pid {s.process.pid})" for s in servers))
        profiler = Profiler(args.profile)
        results = asyncio.run(measure(seeded, servers, args, profiler))
        print(
            report(results, seeded, args.clients, args.processes, args.seconds, args.server),
            flush=True,
        )
        for path in profiler.files:
            if path.exists():
                print("\n" + profile_summary(path), flush=True)
        print(f"\n  server logs: {work}", flush=True)
    except BaseException:
        for server in servers:
            print(f"--- {server.log.name}\n{server.tail()}", file=sys.stderr)
        raise
    finally:
        for server in servers:
            server.stop()
        with contextlib.suppress(Exception):
            from django.db import connections

            connections.close_all()
        if not args.keep_db:
            DATABASE.drop()
        redis_keys_delete()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", type=int, default=TARGET_CLIENTS)
    parser.add_argument("--seconds", type=float, default=30.0, help="measured, per phase")
    parser.add_argument("--warmup", type=float, default=3.0, help="seconds before each phase")
    parser.add_argument(
        "--processes",
        type=int,
        default=int(os.environ.get("WEB_PROCESSES", compose_web()[0])),
        help="web processes (compose's WEB_PROCESSES and its default, 2); client i uses"
        " process i mod N",
    )
    parser.add_argument(
        "--server",
        choices=SERVERS,
        default=compose_web_server(),
        help="the ASGI server running each web process (default: compose's web command)",
    )
    parser.add_argument("--only", nargs="+", metavar="PHASE", help="run only these phases")
    parser.add_argument("--quick", action="store_true", help="10 clients, 3 s phases: a smoke run")
    parser.add_argument(
        "--profile",
        type=Path,
        metavar="DIR",
        help="py-spy the web process(es) during each phase (raw files in DIR; slows them)",
    )
    parser.add_argument("--keep-db", action="store_true")
    args = parser.parse_args()
    if args.profile is not None:
        args.profile = args.profile.resolve()
        args.profile.mkdir(parents=True, exist_ok=True)
    if args.quick:
        args.clients, args.seconds, args.warmup = min(args.clients, 10), 3.0, 1.0
    if args.clients < 1 or args.seconds <= 0 or args.processes < 1:
        parser.error("--clients and --processes must be at least 1, --seconds above 0")
    run(args)


if __name__ == "__main__":
    main()
