"""NAB benchmark: the maintenance agent on three labelled series of the Numenta Anomaly
Benchmark (../shared/data/nab/, MIT licence; windows in windows.json).

    .venv/bin/python -m bench.nab [--series NAME ...] [--keep-db] [--db NAME] [--alerts]

Each series is one node's history: its points go through the admin's bulk ingest path
(telemetry_import_history) in time order, as an extra signal `value`. The node kind's anomaly
detector is trained as the nightly task trains it (anomaly_model_train_and_register) at the end
of NAB's probationary period (the first 15% of the series, before any labelled window): its
windows, their step and its history in samples of the node's cadence, fit on the oldest 60% of
that history's windows, threshold on the next 20%, false alarms checked on the newest 20%;
nothing is chosen on the scored rest. Then the agent is replayed over the rest as it runs in
production (history_replay: rules on every reading, the active models every
two minutes, ticketing). An "alert" is a finding the replay reports (a sustained anomaly, a
threshold crossing, a failure risk, a short remaining life: the start of one episode).

Printed per series: windows detected, the earliest alert relative to each window's start,
alerts outside windows (and per series-week), for the agent and, in the same run over the same
points, a rolling z-score baseline (|z| >= 4 against the previous day's readings for 3 readings
in a row; one alert per excursion). NAB's goal for the issue: every window detected, at most
one alert outside windows per series-week. Its own database (imewe_bench_nab, or --db to run two
at once), dropped at the end.
"""

from __future__ import annotations

import argparse
import csv
import json
import statistics
import time
from collections import deque
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from bench.harness import BenchDatabase

DATA = Path(__file__).resolve().parents[2] / "shared/data/nab"
DEFAULT_DATABASE = "imewe_bench_nab"
SERIES = {
    "ambient_temperature_system_failure": "cnc_mill",
    "cpu_utilization_asg_misconfiguration": "cnc_lathe",
    "ec2_request_latency_system_failure": "laser_cutter",
}
PROBATION = 0.15  # NAB: the first 15% of a series is for learning, not scored
Z_LIMIT = 4.0
Z_RUN = 3
Z_HISTORY = timedelta(days=1)


@dataclass
class Scored:
    detected: int
    windows: int
    earliest: list[str]  # per window: "+1h05m" from its start, or "missed"
    outside: int
    per_week: float


def load(name: str) -> list[tuple[datetime, float]]:
    with (DATA / f"{name}.csv").open(newline="") as handle:
        return [
            (datetime.fromisoformat(row["timestamp"]).replace(tzinfo=UTC), float(row["value"]))
            for row in csv.DictReader(handle)
        ]


def windows_of(name: str) -> list[tuple[datetime, datetime]]:
    raw = json.loads((DATA / "windows.json").read_text())[f"realKnownCause/{name}.csv"]
    return [
        (
            datetime.fromisoformat(a).replace(tzinfo=UTC),
            datetime.fromisoformat(b).replace(tzinfo=UTC),
        )
        for a, b in raw
    ]


def span(delta: timedelta) -> str:
    minutes = int(delta.total_seconds() // 60)
    sign = "-" if minutes < 0 else "+"
    minutes = abs(minutes)
    days, rest = divmod(minutes, 1440)
    return (
        f"{sign}{days}d{rest // 60:02d}h{rest % 60:02d}m"
        if days
        else f"{sign}{rest // 60}h{rest % 60:02d}m"
    )


def score(alerts: list[datetime], windows: list[tuple[datetime, datetime]], weeks: float) -> Scored:
    earliest, detected = [], 0
    for start, end in windows:
        inside = [a for a in alerts if start <= a <= end]
        if inside:
            detected += 1
            earliest.append(span(min(inside) - start))
        else:
            earliest.append("missed")
    outside = sum(1 for a in alerts if not any(s <= a <= e for s, e in windows))
    return Scored(detected, len(windows), earliest, outside, outside / weeks if weeks else 0.0)


def zscore_alerts(points: list[tuple[datetime, float]], since: datetime) -> list[datetime]:
    """Rolling z-score: each reading against the readings of the previous day."""
    history: deque[tuple[datetime, float]] = deque()
    alerts, run, alerting = [], 0, False
    for at, value in points:
        while history and history[0][0] < at - Z_HISTORY:
            history.popleft()
        values = [v for _, v in history]
        flagged = False
        if len(values) >= 3:
            mean, spread = statistics.fmean(values), statistics.pstdev(values)
            flagged = spread > 0 and abs(value - mean) / spread >= Z_LIMIT
        history.append((at, value))
        run = run + 1 if flagged else 0
        if at < since:
            continue
        if run >= Z_RUN and not alerting:
            alerts.append(at)
            alerting = True
        elif run == 0:
            alerting = False
    return alerts


def line(name: str, s: Scored) -> str:
    return (
        f"  {name:<9} windows {s.detected}/{s.windows}  earliest {', '.join(s.earliest)}  "
        f"outside {s.outside} ({s.per_week:.2f}/week)"
    )


def run(args: argparse.Namespace) -> None:
    import django
    from django.core.management import call_command

    django.setup()
    call_command("migrate", verbosity=0)
    from apps.core.models import TrainedModel
    from apps.maintenance.services.replay import history_replay
    from apps.maintenance.services.training import anomaly_model_train_and_register
    from apps.telemetry.services import MAX_BATCH, telemetry_import_history
    from apps.vendors.models import FabricationNode
    from bench.ingest import devices_create

    names = args.series or list(SERIES)
    devices = devices_create(len(names))
    for name, device in zip(names, devices, strict=True):
        kind = SERIES[name]
        FabricationNode.objects.filter(pk=device.node_id).update(kind=kind, name=name[:40])
        node = FabricationNode.objects.get(pk=device.node_id)
        points = load(name)
        windows = windows_of(name)
        first, last = points[0][0], points[-1][0]
        probation_end = points[int(len(points) * PROBATION)][0]
        weeks = (last - probation_end).total_seconds() / (7 * 86400)
        print(
            f"\n{name}: {len(points):,} readings {first:%Y-%m-%d} .. {last:%Y-%m-%d}, "
            f"{len(windows)} windows, scored after {probation_end:%Y-%m-%d %H:%M} "
            f"({weeks:.1f} weeks)"
        )
        t0 = time.perf_counter()
        stored = 0
        for i in range(0, len(points), MAX_BATCH):
            batch = [
                {"node": node.pk, "time": at.isoformat(), "extra": {"value": value}}
                for at, value in points[i : i + MAX_BATCH]
            ]
            report = telemetry_import_history(points=batch, node_id=node.pk)
            assert not report.rejected, report.rejected[:3]
            stored += report.accepted
        print(f"  imported {stored:,} points in {time.perf_counter() - t0:.1f} s")
        t0 = time.perf_counter()
        model = anomaly_model_train_and_register(kind=kind, now=probation_end)
        if isinstance(model, TrainedModel):
            state = "active" if model.is_active else "registered, not activated"
            print(
                f"  anomaly detector v{model.version} ({state}) trained in "
                f"{time.perf_counter() - t0:.1f} s on {model.training['from'][:16]} .. "
                f"{model.training['to'][:16]}, windows {model.training.get('windows')}: "
                f"{json.dumps(model.metrics)}"
            )
        else:
            print(f"  anomaly detector not trained: {model}")
        t0 = time.perf_counter()
        replay = history_replay(node=node, start=probation_end)
        seconds = time.perf_counter() - t0
        sources: dict[str, int] = {}
        for finding in replay.findings:
            sources[finding.source] = sources.get(finding.source, 0) + 1
        print(
            f"  replay: {replay.points:,} readings, {replay.scorings:,} scoring runs in "
            f"{seconds:.0f} s, cadence {replay.cadence_s} s, findings {sources or 'none'}, "
            f"{len(replay.tickets)} tickets"
        )
        agent = score([f.at for f in replay.findings], windows, weeks)
        baseline = score(zscore_alerts(points, probation_end), windows, weeks)
        print(line("agent", agent))
        print(line("z-score", baseline))
        if args.alerts:
            for finding in replay.findings:
                where = "in " if any(a <= finding.at <= b for a, b in windows) else "out"
                print(f"    {finding.at:%Y-%m-%d %H:%M} {where} {finding.text}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--series", nargs="*", choices=list(SERIES))
    parser.add_argument("--keep-db", action="store_true")
    parser.add_argument("--alerts", action="store_true", help="print each alert of the agent")
    parser.add_argument("--db", default=DEFAULT_DATABASE, help="a database of its own")
    args = parser.parse_args()
    if not args.db.startswith("imewe_bench_"):
        parser.error("--db must start with imewe_bench_ (it is dropped and created)")
    BenchDatabase(args.db).run_in_process(lambda: run(args), keep=args.keep_db)


if __name__ == "__main__":
    main()
