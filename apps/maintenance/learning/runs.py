"""Seeded run-to-failure histories of machine tools, for the RUL benchmark, the tests and demo
data. Each unit is simulated independently (its own random stream from (seed, kind, index), so
unit 3 is the same whatever `n_units`), sampled every 10 minutes from its start until the
failure.

Load cycle: jobs of 1-8 h at one spindle speed and a cutting torque drawn per job (mill
4,000-12,000 rpm and 3-9 N m; lathe 800-3,500 rpm and 15-50 N m), the torque varying +/-12%
within a job, separated by 10-90 min of setup with the spindle stopped. Around the clock, no
shifts. Ambient temperature: a unit's own level (18-24 C) plus a daily swing of +/-3 C.

Health: a rolling-element bearing whose vibration (ISO 10816 velocity RMS, mm/s, at full speed)
is a unit's base level (mill 0.8-1.5, lathe 1.0-1.8 mm/s: zone A/B) until a defect appears at a
random onset (40-250 h), then grows exponentially: excess = a (exp(g (t - onset)) - 1), a 0.05-0.2
mm/s, g 0.015-0.05 per hour. The unit fails when base + excess reaches its own limit, drawn in
4.5-7.1 mm/s (ISO 10816-1 zone D for small machines starts at 4.5 mm/s; 7.1 is the C/D boundary
of larger ones), so lifetimes span about 110-500 h and units differ in onset, growth and limit.

Signals (the platform's telemetry columns plus `bearing_temp_c`, as found in a point's `extra`):
- spindle_rpm: the job's speed (+/-0.2%), 0 in setup.
- torque_nm: cutting torque plus bearing friction (3% of the kind's top torque per mm/s of
  excess vibration), 0 in setup.
- power_kw: idle draw (coolant, controls; 1.2-1.5 kW) plus torque x speed / 0.9 efficiency, +/-2%.
- vibration_mm_s: (base + excess) x (0.7 + 0.3 speed / top speed) x lognormal noise (8%) when
  cutting; 0.1-0.3 mm/s of background with the spindle stopped (a stopped bearing does not ring).
- bearing_temp_c: first-order lag (40 min) towards ambient + speed heating + 5 C per mm/s of
  excess (friction); 15% of units have no bearing sensor (the column is all NaN).
- temperature_c: spindle housing, lag (60 min) towards ambient + 4 C + 1.8 C per cutting kW.
Each reading is missing (NaN) with probability 0.5% (dropouts).

Cycle-indexed histories (`simulate_cycle_runs`), as public turbofan and bearing benchmarks are
published: one row per CYCLE, a cycle being one hour of a unit's operation in which it cut; the
row holds the means under load of that hour (setup time excluded), the job's spindle speed as
the operating setting `setting_rpm`, and the sensors `vibration_mm_s`, `power_kw`,
`torque_nm`, `temperature_c` and `bearing_temp_c`. Failure is at the cycle after the last.
Units live about 90-420 cycles.

`to_csv_rows` writes the histories in the run_to_failure import format (see its docstring).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import numpy as np
from scipy.signal import lfilter

from apps.maintenance.learning.anomaly import Array
from apps.maintenance.learning.rul import CYCLES, Run

SIGNALS = [
    "temperature_c",
    "vibration_mm_s",
    "power_kw",
    "spindle_rpm",
    "torque_nm",
    "bearing_temp_c",
]
STEP_S = 600.0
EPOCH = datetime(2026, 1, 5, tzinfo=UTC)  # every simulated unit starts here in to_csv_rows
FAILURE_VIBRATION_MM_S = (4.5, 7.1)
ONSET_H = (40.0, 250.0)
GROWTH_PER_H = (0.015, 0.05)
INITIAL_DEFECT_MM_S = (0.05, 0.2)
DROPOUT = 0.005
NO_BEARING_SENSOR = 0.15


@dataclass(frozen=True)
class MachineKind:
    rpm: tuple[float, float]
    torque_nm: tuple[float, float]
    idle_kw: float
    base_vibration_mm_s: tuple[float, float]
    bearing_heat_c_per_krpm: float


KINDS = {
    "cnc_mill": MachineKind((4000, 12000), (3, 9), 1.2, (0.8, 1.5), 2.5),
    "cnc_lathe": MachineKind((800, 3500), (15, 50), 1.5, (1.0, 1.8), 8.0),
}


def _load_cycle(
    rng: np.random.Generator, steps: int, kind: MachineKind
) -> tuple[Array, Array, Array]:
    """Per step: cutting (0/1), the job's spindle speed and cutting torque."""
    cutting, rpm, torque = np.zeros(steps), np.zeros(steps), np.zeros(steps)
    at = 0
    while at < steps:
        at += max(1, round(rng.uniform(10, 90) * 60 / STEP_S))
        job = max(1, round(rng.uniform(1, 8) * 3600 / STEP_S))
        cutting[at : at + job] = 1.0
        rpm[at : at + job] = rng.uniform(*kind.rpm)
        torque[at : at + job] = rng.uniform(*kind.torque_nm)
        at += job
    return cutting, rpm, torque


def _lag(target: Array, *, tau_s: float, start: float) -> Array:
    """First-order thermal lag: each step closes 1 - exp(-step/tau) of the gap to the target."""
    alpha = 1.0 - math.exp(-STEP_S / tau_s)
    out, _ = lfilter([alpha], [1.0, alpha - 1.0], target, zi=[(1.0 - alpha) * start])
    return np.asarray(out, dtype=float)


def _simulate_unit(unit: str, rng: np.random.Generator, kind: MachineKind) -> Run:
    base = rng.uniform(*kind.base_vibration_mm_s)
    limit = rng.uniform(*FAILURE_VIBRATION_MM_S)
    onset_h = rng.uniform(*ONSET_H)
    growth = rng.uniform(*GROWTH_PER_H)
    defect = rng.uniform(*INITIAL_DEFECT_MM_S)
    failure_h = onset_h + math.log((limit - base) / defect + 1.0) / growth
    times = np.arange(0.0, failure_h * 3600.0, STEP_S)
    hours = times / 3600.0
    n = len(times)
    excess = np.where(hours > onset_h, defect * np.expm1(growth * (hours - onset_h)), 0.0)

    cutting, job_rpm, job_torque = _load_cycle(rng, n, kind)
    rpm = cutting * job_rpm * (1 + rng.normal(0, 0.002, n))
    friction = 0.03 * kind.torque_nm[1] * excess
    torque = cutting * (job_torque * np.clip(1 + rng.normal(0, 0.12, n), 0.2, None) + friction)
    cutting_kw = torque * rpm * 2 * math.pi / 60 / 1000 / 0.9
    power = (kind.idle_kw + cutting_kw) * (1 + rng.normal(0, 0.02, n))
    speed = 0.7 + 0.3 * rpm / kind.rpm[1]
    vibration = np.where(
        cutting > 0,
        (base + excess) * speed * np.exp(rng.normal(0, 0.08, n)),
        0.1 + 0.2 * rng.random(n),
    )
    ambient = rng.uniform(18, 24) + 3 * np.sin(2 * math.pi * (hours - 9) / 24)
    bearing_target = ambient + cutting * (kind.bearing_heat_c_per_krpm * rpm / 1000 + 5 * excess)
    bearing = _lag(bearing_target, tau_s=2400, start=ambient[0]) + rng.normal(0, 0.2, n)
    housing_target = ambient + 4 + 1.8 * cutting_kw
    housing = _lag(housing_target, tau_s=3600, start=ambient[0] + 4) + rng.normal(0, 0.2, n)

    by_signal = {
        "temperature_c": housing,
        "vibration_mm_s": vibration,
        "power_kw": power,
        "spindle_rpm": rpm,
        "torque_nm": torque,
        "bearing_temp_c": bearing,
    }
    values = np.column_stack([by_signal[s] for s in SIGNALS])
    values[rng.random(values.shape) < DROPOUT] = np.nan
    if rng.random() < NO_BEARING_SENSOR:
        values[:, SIGNALS.index("bearing_temp_c")] = np.nan
    return Run(
        unit=unit,
        times_s=times,
        values=values,
        signals=list(SIGNALS),
        failure_s=failure_h * 3600.0,
        onset_s=onset_h * 3600.0,
    )


def simulate_runs(n_units: int, *, seed: int, kind: str = "cnc_mill") -> list[Run]:
    if kind not in KINDS:
        raise ValueError(f"unknown kind {kind!r}; known: {', '.join(sorted(KINDS))}")
    kind_index = sorted(KINDS).index(kind)
    return [
        _simulate_unit(
            f"{kind}-{i + 1:03d}", np.random.default_rng([seed, kind_index, i]), KINDS[kind]
        )
        for i in range(n_units)
    ]


CYCLE_SIGNALS = [
    "setting_rpm",
    "vibration_mm_s",
    "power_kw",
    "torque_nm",
    "temperature_c",
    "bearing_temp_c",
]
CYCLE_S = 3600.0


def cycle_run(run: Run) -> Run:
    """`run` (10-minute readings) as a cycle history: per hour in which the unit cut, the
    means of the readings taken cutting; cycles numbered 1, 2, ... in order."""
    rpm = run.values[:, run.signals.index("spindle_rpm")]
    cutting = np.nan_to_num(rpm) > 0
    hour = (run.times_s // CYCLE_S).astype(int)
    columns = {
        "setting_rpm": rpm,
        **{s: run.values[:, run.signals.index(s)] for s in CYCLE_SIGNALS[1:]},
    }
    block = np.column_stack([columns[s] for s in CYCLE_SIGNALS])
    rows = []
    for h in np.unique(hour[cutting]):
        mine = block[(hour == h) & cutting]
        with np.errstate(all="ignore"):
            seen = ~np.isnan(mine)
            count = seen.sum(axis=0)
            means = np.where(count > 0, np.where(seen, mine, 0.0).sum(axis=0) / count, np.nan)
        rows.append(means)
    values = np.array(rows).reshape(len(rows), len(CYCLE_SIGNALS))
    cycles = np.arange(1.0, len(rows) + 1.0)
    onset = None
    if run.onset_s is not None:
        before = np.unique(hour[cutting])
        onset = float(np.searchsorted(before, run.onset_s // CYCLE_S) + 1)
    return Run(
        unit=run.unit,
        times_s=cycles,
        values=values,
        signals=list(CYCLE_SIGNALS),
        failure_s=float(len(rows) + 1),
        onset_s=onset,
        time_unit=CYCLES,
    )


def simulate_cycle_runs(n_units: int, *, seed: int, kind: str = "cnc_mill") -> list[Run]:
    """`simulate_runs` as cycle histories (`cycle_run`)."""
    return [cycle_run(run) for run in simulate_runs(n_units, seed=seed, kind=kind)]


def _iso(start: datetime, seconds: float) -> str:
    moment = start + timedelta(seconds=round(seconds))
    return moment.isoformat(timespec="seconds").replace("+00:00", "Z")


def to_csv_rows(runs: list[Run], *, start: datetime = EPOCH) -> list[dict[str, str | float | None]]:
    """The run_to_failure import format, one dict per reading (csv.DictWriter-ready):
    `unit`, `time` (ISO 8601 UTC, `start` + the run's seconds, e.g. 2026-01-05T00:10:00Z) or
    for cycle runs `cycle`, one column per signal (the union of the runs' signals, in order of
    appearance; None, an empty cell, where missing; 4 decimals) and `failure_time` (ISO 8601
    UTC of the failure, or its cycle; the same on every row of a unit)."""
    signals: list[str] = []
    for run in runs:
        signals.extend(s for s in run.signals if s not in signals)
    rows: list[dict[str, str | float | None]] = []
    for run in runs:
        cycles = run.time_unit == CYCLES
        failure_time = f"{run.failure_s:g}" if cycles else _iso(start, run.failure_s)
        columns = [run.signals.index(s) if s in run.signals else None for s in signals]
        for t, values in zip(run.times_s, run.values, strict=True):
            row: dict[str, str | float | None] = {"unit": run.unit}
            row.update({"cycle": f"{t:g}"} if cycles else {"time": _iso(start, t)})
            for signal, column in zip(signals, columns, strict=True):
                value = None if column is None else float(values[column])
                row[signal] = None if value is None or math.isnan(value) else round(value, 4)
            row["failure_time"] = failure_time
            rows.append(row)
    return rows
