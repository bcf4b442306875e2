"""A run: every input checked at once, the time steps of the coupled models, the series, the
health and remaining life at the end, and the series as CSV."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import asdict
from typing import Any

import numpy as np

from apps.twins.physics.explanation import explain, run_notes
from apps.twins.physics.laws import (
    MAX_RUL_H,
    VIBRATION_UNACCEPTABLE_MM_S,
    bearing_life_hours,
    bearing_load_n,
    health_score,
    hours_above,
    l10_hours,
    montsinger_factor,
    vibration_mm_s,
)
from apps.twins.physics.machines import MachineSpec
from apps.twins.physics.scenarios import SCENARIOS, Seed, start_state
from apps.twins.physics.validation import PhysicsError, within

MIN_HOURS = 1.0
MAX_HOURS = 8_760.0
MAX_STEPS = 50_000
MAX_STEP_MINUTES = 1_440.0
MAX_POINTS = 500
SERIES_FIELDS = (
    "time_hours",
    "temperature_c",
    "vibration_mm_s",
    "bearing_wear_percent",
    "insulation_used_percent",
    "load_fraction",
    "power_kw",
    "health_score",
)


def _run_problems(
    spec: MachineSpec, scenario: str, hours: float, seed: Seed, step_minutes: float
) -> list[str]:
    problems = spec.problems()
    if scenario not in SCENARIOS:
        problems.append(f"scenario: one of {', '.join(SCENARIOS)}")
    hours_ok = within(hours, MIN_HOURS, MAX_HOURS, low_inclusive=True)
    if not hours_ok:
        problems.append(f"hours: from {MIN_HOURS:g} to {MAX_HOURS:,g}")
    step_ok = within(step_minutes, 0, MAX_STEP_MINUTES)
    if not step_ok:
        problems.append(f"step_minutes: above 0, at most {MAX_STEP_MINUTES:,g} (a day)")
    if hours_ok and step_ok and _steps(hours, step_minutes) > MAX_STEPS:
        shortest = math.ceil(hours * 60.0 / MAX_STEPS * 100.0) / 100.0
        problems.append(
            f"step_minutes: at least {shortest:g} for {hours:,g} h (at most {MAX_STEPS:,} "
            "steps), raise step_minutes"
        )
    problems += seed.problems()
    return problems


def check(
    spec: MachineSpec,
    scenario: str,
    hours: float,
    seed: Seed | None = None,
    *,
    step_minutes: float = 10.0,
) -> None:
    """Raises PhysicsError naming every bad field of a run, without running it."""
    problems = _run_problems(spec, scenario, hours, seed or Seed(), step_minutes)
    if problems:
        raise PhysicsError("; ".join(problems))


def _steps(hours: float, step_minutes: float) -> int:
    # the step shrinks a little so that a whole number of them ends exactly at `hours`
    return max(1, math.ceil(hours * 60.0 / step_minutes - 1e-9))


def run(
    spec: MachineSpec,
    scenario: str,
    hours: float,
    seed: Seed | None = None,
    *,
    step_minutes: float = 10.0,
    progress: Callable[[float], None] | None = None,
) -> dict[str, Any]:
    """Simulate `hours` of the scenario from the seed; the package docstring states the laws.
    `progress(fraction)` is called at most 100 times, with increasing fractions ending at 1."""
    seed = seed or Seed()
    problems = _run_problems(spec, scenario, hours, seed, step_minutes)
    if problems:
        raise PhysicsError("; ".join(problems))
    sc = SCENARIOS[scenario]
    hours = float(hours)
    n = _steps(hours, step_minutes)
    dt = hours / n
    start = start_state(spec, sc, seed)
    load, duty, limit = start.load_fraction, sc.duty_cycle, spec.temperature_limit_c

    r_th = spec.thermal_resistance_k_per_kw * sc.cooling_factor
    tau = r_th * spec.heat_capacity_kj_per_k / 3600.0
    power = spec.rated_power_kw * (duty * load + (1.0 - duty) * spec.idle_power_share)
    steady = sc.ambient_c + r_th * spec.loss_fraction * power
    decay = math.exp(-dt / tau)
    mean_share = tau / dt * (1.0 - decay)  # mean of exp(-s / tau) over a step
    l10 = l10_hours(spec.bearing_c_dyn_n, bearing_load_n(spec, load), start.rpm)
    winding_rise = spec.winding_rise_k * load**2

    def wear_rate(body_c: float) -> float:  # per hour, running share only
        return duty / bearing_life_hours(spec, load, start.rpm, body_c)

    def insulation_rate(body_c: float) -> float:  # per hour, running and idle shares
        running = montsinger_factor(body_c + winding_rise, spec.insulation_class_c)
        idle = montsinger_factor(body_c, spec.insulation_class_c)
        return (duty * running + (1.0 - duty) * idle) / spec.insulation_life_h

    temperature, wear, insulation, health = (np.empty(n + 1) for _ in range(4))
    t, w, i, o = start.temperature_c, start.wear, 0.0, 0.0  # o: hours above the limit so far
    temperature[0], wear[0], insulation[0] = t, w, i
    health[0] = health_score(w, i, 1.0 if t > limit else 0.0)
    first_over: float | None = 0.0 if t > limit else None
    for k in range(1, n + 1):
        mean_c = steady + (t - steady) * mean_share
        above = hours_above(t, steady, dt, tau, limit)
        if first_over is None and above > 0:
            first_over = (k - 1) * dt + dt - above  # heating through the limit in this step
        o += above
        t = steady + (t - steady) * decay  # thermal_step, with exp(-dt/tau) computed once
        w = min(1.0, w + dt * wear_rate(mean_c))
        i = min(1.0, i + dt * insulation_rate(mean_c))
        temperature[k], wear[k], insulation[k] = t, w, i
        health[k] = health_score(w, i, o / (k * dt))
        if progress is not None and k * 100 // n != (k - 1) * 100 // n:
            progress(k / n)

    time = np.arange(n + 1) * dt
    time[-1] = hours
    vibration = spec.vibration_base_mm_s + spec.vibration_wear_mm_s * wear**2

    if wear[-1] >= 1.0 or insulation[-1] >= 1.0:
        left = 0.0
    else:
        rates = [(1.0 - wear[-1], wear_rate(t)), (1.0 - insulation[-1], insulation_rate(t))]
        left = min(math.inf if rate <= 0 else float(rest) / rate for rest, rate in rates)

    points = np.unique(np.linspace(0, n, min(n + 1, MAX_POINTS)).round().astype(int))
    series = [
        {
            "time_hours": round(float(time[j]), 4),
            "temperature_c": round(float(temperature[j]), 3),
            "vibration_mm_s": round(float(vibration[j]), 4),
            "bearing_wear_percent": round(100.0 * float(wear[j]), 4),
            "insulation_used_percent": round(100.0 * float(insulation[j]), 6),
            "load_fraction": round(load, 4),
            "power_kw": round(power, 4),
            "health_score": round(float(health[j]), 3),
        }
        for j in points
    ]
    defaults = {
        "temperature_c": sc.ambient_c,
        "vibration_mm_s": vibration_mm_s(spec, sc.initial_wear),
        "power_kw": sc.load_fraction * spec.rated_power_kw,
        "spindle_rpm": spec.rated_rpm,
    }
    return {
        "scenario": scenario,
        "label": sc.label,
        "description": sc.description,
        "hours": hours,
        "step_minutes": round(dt * 60.0, 6),
        "steps": n,
        "spec": {**asdict(spec), "time_constant_h": round(spec.time_constant_h, 4)},
        "seed": {
            **{name: round(start.seed_values.get(name, v), 4) for name, v in defaults.items()},
            "source": seed.source,
            "from_seed": [name for name in defaults if name in start.seed_values],
            "from_defaults": [name for name in defaults if name not in start.seed_values],
        },
        "conditions": {
            "ambient_c": sc.ambient_c,
            "duty_cycle": duty,
            "load_fraction": round(load, 4),
            "spindle_rpm": round(start.rpm, 2),
            "thermal_resistance_k_per_kw": round(r_th, 4),
            "time_constant_h": round(tau, 4),
            "steady_temperature_c": round(steady, 3),
            "mean_power_kw": round(power, 4),
            "l10_hours": None if math.isinf(l10) else round(l10, 1),
            "initial_bearing_wear_percent": round(100.0 * start.wear, 4),
        },
        "series": series,
        "health_score_end": round(float(health[-1]), 3),
        "rul_hours": None if left > MAX_RUL_H else round(left, 1),
        "events": {
            "vibration_unacceptable_hours": _first_crossing(
                time, vibration, VIBRATION_UNACCEPTABLE_MM_S
            ),
            "over_temperature_hours": None if first_over is None else round(first_over, 3),
        },
        "notes": start.notes + run_notes(spec, sc, start, r_th, tau, l10),
        "health_factors": {
            "bearings": round(1.0 - float(wear[-1]), 4),
            "insulation": round(1.0 - float(insulation[-1]), 4),
            "temperature": round(1.0 - o / hours / 2.0, 4),
        },
        "explanation": explain(
            spec,
            sc,
            health=float(health[-1]),
            wear=float(wear[-1]),
            insulation=float(insulation[-1]),
            over_share=o / hours,
            steady_c=steady,
            end_c=t,
            load=load,
            rpm=start.rpm,
            winding_rise_k=winding_rise,
            lives={
                "bearings": (1.0 - wear[-1], wear_rate(t)),
                "insulation": (
                    1.0 - insulation[-1],
                    insulation_rate(t),
                ),
            },
        ),
    }


def _first_crossing(time: np.ndarray, values: np.ndarray, level: float) -> float | None:
    """When `values` first reaches `level`, interpolated between samples."""
    crossed = np.nonzero(values >= level)[0]
    if not crossed.size:
        return None
    j = int(crossed[0])
    if j == 0:
        return 0.0
    v0, v1 = float(values[j - 1]), float(values[j])
    return round(float(time[j - 1] + (time[j] - time[j - 1]) * (level - v0) / (v1 - v0)), 3)


def series_csv(result: dict[str, Any]) -> str:
    lines = [",".join(SERIES_FIELDS)]
    lines += [",".join(str(p[name]) for name in SERIES_FIELDS) for p in result["series"]]
    return "\n".join(lines) + "\n"
