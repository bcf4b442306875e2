"""Does telemetry ingest add up across processes? The batch API served by 1, then 2 (then N)
ingest daphnes of the production topology, on this machine, with the CPU each part spent.

    .venv/bin/python -m bench.scale_out [--processes 1,2] [--seconds 20] [--batch 1000]
                                        [--clients-per-process 2] [--quick] [--keep-db]

Each phase starts its ingest daphnes (`imewe.asgi:application`, production settings: DEBUG=0,
the psycopg pool on, Redis channel layer and cache), and client threads post pre-built gzip
batches (`Authorization: Device <token>`, one device per client) round-robin over the processes,
as nginx's upstream does, for `--seconds`. It prints, per phase: points/s stored, CPU seconds
per wall second of the ingest processes, of PostgreSQL (every `postgres` process) and of this
client process, and the points each ingest CPU-second stored. The throughput adds up when the
points per ingest CPU-second stay the same as processes are added: then capacity is a matter of
cores, and the README's scale-out plan divides the load by that figure. On a 2-core machine the
phases share the cores with PostgreSQL and the clients, so the wall-clock rate stops adding up
where the machine's CPU is used up: the run prints how much of the two cores each part took.

Uses its own database (imewe_bench_scale, dropped at the end) and Redis DB 8.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import psycopg

from bench import harness
from bench.ingest import (
    ApiClient,
    Clock,
    Device,
    Service,
    devices_create,
    points,
    port_open,
    process_cpu,
    request_body,
    service_start,
    wait_until,
)

ROOT = harness.ROOT
BIN = Path(sys.executable).parent
DATABASE = harness.BenchDatabase("imewe_bench_scale")
REDIS_URL = "redis://127.0.0.1:6379/8"


def server_env(var_dir: Path) -> dict[str, str]:
    return harness.server_env(
        database=DATABASE,
        redis_url=REDIS_URL,
        key_prefix="imewe-bench-scale",
        var_dir=var_dir,
        API_THROTTLE_DEVICE="1000000/second",
        LOG_LEVEL="WARNING",
        IMEWE_PROCESS_ROLE="ingest",
        DB_POOL_MAX="8",
    )


def postgres_cpu() -> float:
    """User + system CPU seconds of every PostgreSQL process on the machine."""
    total = 0.0
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if (entry / "comm").read_text().strip() != "postgres":
                continue
            total += process_cpu(int(entry.name))
        except (OSError, ValueError):
            continue
    return total


def own_cpu() -> float:
    times = os.times()
    return times.user + times.system


@dataclass
class Phase:
    processes: int
    clients: int
    points: int
    seconds: float
    ingest_cpu: float
    postgres_cpu: float
    client_cpu: float

    @property
    def rate(self) -> float:
        return self.points / self.seconds

    @property
    def per_ingest_cpu(self) -> float:
        return self.points / self.ingest_cpu if self.ingest_cpu else float("nan")


def run_phase(
    count: int,
    devices: list[Device],
    env: dict[str, str],
    work: Path,
    clock: Clock,
    *,
    seconds: float,
    batch: int,
    clients_per_process: int,
) -> Phase:
    services: list[tuple[Service, int]] = []
    try:
        for index in range(count):
            port = harness.free_port()
            service = service_start(
                f"ingest-{count}-{index}",
                [str(BIN / "daphne"), "-b", "127.0.0.1", "-p", str(port)]
                + ["imewe.asgi:application"],
                env,
                work,
                signal.SIGTERM,
            )
            services.append((service, port))
        for service, port in services:
            wait_until(lambda p=port: port_open(p), 60, f"{service.name} to listen", service)
        clients = count * clients_per_process
        chosen = devices[:clients]
        # Enough distinct bodies that no instant repeats within the phase at the rate possible.
        per_client = max(4, int(seconds * 120_000 / batch / clients) + 4)
        bodies = {
            d.node_id: [
                request_body(points(d.node_id, clock.take(batch)), True) for _ in range(per_client)
            ]
            for d in chosen
        }
        for i, device in enumerate(chosen):  # warm: imports, pools, the token cache
            port = services[i % count][1]
            ApiClient(port, device, True).post(
                request_body(points(device.node_id, clock.take(10)), True)
            )
        accepted = [0] * clients
        errors: list[BaseException] = []
        stop = threading.Event()
        ready = threading.Barrier(clients + 1)

        def work_of(i: int, device: Device) -> None:
            client = ApiClient(services[i % count][1], device, True)  # round-robin, as nginx
            try:
                ready.wait()
                for body in bodies[device.node_id]:
                    if stop.is_set():
                        break
                    accepted[i] += int(client.post(body)["accepted"])
                else:
                    errors.append(RuntimeError("a client ran out of bodies; raise per_client"))
            except BaseException as exc:
                errors.append(exc)
            finally:
                client.close()

        threads = [
            threading.Thread(target=work_of, args=(i, d), daemon=True) for i, d in enumerate(chosen)
        ]
        for thread in threads:
            thread.start()
        cpu_before = [process_cpu(s.process.pid) for s, _ in services]
        pg_before, own_before = postgres_cpu(), own_cpu()
        ready.wait()
        start = time.perf_counter()
        time.sleep(seconds)
        stop.set()
        for thread in threads:
            thread.join()
        wall = time.perf_counter() - start
        ingest_cpu = sum(
            process_cpu(s.process.pid) - b for (s, _), b in zip(services, cpu_before, strict=True)
        )
        if errors:
            raise RuntimeError(f"phase with {count} processes failed: {errors[0]!r}")
        return Phase(
            count,
            clients,
            sum(accepted),
            wall,
            ingest_cpu,
            postgres_cpu() - pg_before,
            own_cpu() - own_before,
        )
    finally:
        for service, _ in services:
            service.stop()


def report(phases: list[Phase], cores: int) -> str:
    lines = [
        "",
        f"Ingest scale-out on this machine ({cores} cores), gzip batches of the batch API:",
        "",
        "| ingest processes | clients | points/s | ingest CPU | PostgreSQL CPU | clients CPU "
        "| points per ingest CPU-s |",
        "|---|---|---|---|---|---|---|",
    ]
    for p in phases:
        lines.append(
            f"| {p.processes} | {p.clients} | {p.rate:,.0f} | {p.ingest_cpu / p.seconds:.2f} "
            f"| {p.postgres_cpu / p.seconds:.2f} | {p.client_cpu / p.seconds:.2f} "
            f"| {p.per_ingest_cpu:,.0f} |"
        )
    lines.append("")
    lines.append("(CPU columns: CPU seconds per wall second, i.e. cores busy.)")
    if len(phases) > 1:
        first, last = phases[0], phases[-1]
        lines.append(
            f"{last.processes} processes: {last.rate / first.rate:.2f}x the rate of "
            f"{first.processes}; points per ingest CPU-second "
            f"{last.per_ingest_cpu / first.per_ingest_cpu:.2f}x (1.00x = adds up per core)."
        )
        busy = (last.ingest_cpu + last.postgres_cpu + last.client_cpu) / last.seconds
        lines.append(
            f"The {last.processes}-process phase kept {busy:.2f} of {cores} cores busy "
            "(ingest + PostgreSQL + clients)."
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.scale_out", description=__doc__)
    parser.add_argument("--processes", default="1,2", help="ingest process counts, e.g. 1,2,4")
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--batch", type=int, default=1000)
    parser.add_argument("--clients-per-process", type=int, default=2)
    parser.add_argument("--quick", action="store_true", help="5 s phases (a smoke check)")
    parser.add_argument("--keep-db", action="store_true")
    args = parser.parse_args(argv)
    counts = [int(c) for c in args.processes.split(",")]
    seconds = 5.0 if args.quick else args.seconds
    work = Path(tempfile.mkdtemp(prefix="imewe-bench-scale-"))
    env = server_env(work)
    os.environ.update({k: v for k, v in env.items() if k != "PYTHONUNBUFFERED"})
    print(f"scale_out: logs in {work}", flush=True)
    try:
        DATABASE.recreate()
        harness.migrate(env)
        import django

        django.setup()
        from django.db import connections

        devices = devices_create(max(counts) * args.clients_per_process)
        connections.close_all()
        clock = Clock()
        phases = []
        for count in counts:
            with psycopg.connect(DATABASE.url, autocommit=True) as db:
                db.execute("TRUNCATE telemetry_point")
                db.execute("CHECKPOINT")
            print(f"  phase: {count} ingest process(es), {seconds:.0f} s", flush=True)
            phases.append(
                run_phase(
                    count,
                    devices,
                    env,
                    work,
                    clock,
                    seconds=seconds,
                    batch=args.batch,
                    clients_per_process=args.clients_per_process,
                )
            )
        print(report(phases, os.cpu_count() or 1), flush=True)
    finally:
        if not args.keep_db:
            DATABASE.drop()


if __name__ == "__main__":
    main()
