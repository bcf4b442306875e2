"""The simulated machines' physics: idle means idle, load only while a part runs, power within
the rating, and only an injected fault takes a signal past the platform's default rules."""

from __future__ import annotations

import math
import random

import pytest

from apps.maintenance.rules import DEFAULT_RULES, RATE_MODES
from edge.simulators.machines import (
    IDLE_SHARE,
    MAX_SHARE,
    Fault,
    MachineModel,
    apply_control,
)

MACHINES = [("cnc_mill", 7.5), ("fdm_printer", 0.35)]


def default_limits(kind: str, rated_power_kw: float) -> dict[str, tuple[float, float]]:
    """signal -> (warning, critical) of the platform's default level rules for this kind (the
    rise rules judge a change per minute: tests/maintenance/test_runaway.py)."""
    chosen: dict[str, tuple[int, tuple[float, float]]] = {}
    for rule in DEFAULT_RULES:
        signal, rule_kind, mode, warning, critical = (
            rule.signal,
            rule.node_kind,
            rule.mode,
            rule.warning,
            rule.critical,
        )
        if rule_kind not in ("", kind) or warning is None or critical is None:
            continue
        if mode in RATE_MODES:
            continue
        scale = rated_power_kw if mode == "baseline_ratio" else 1.0
        rank = 1 if rule_kind else 0
        if signal not in chosen or chosen[signal][0] < rank:
            chosen[signal] = (rank, (warning * scale, critical * scale))
    return {signal: limits for signal, (_, limits) in chosen.items()}


def run(model: MachineModel, start: float, seconds: float, step: float = 0.1) -> list[dict]:
    out = []
    steps = round(seconds / step)
    for i in range(1, steps + 1):
        out.append(model.sample(start + i * step))
    return out


@pytest.mark.parametrize(("kind", "rated"), MACHINES)
def test_power_stays_within_the_rating_over_a_long_run_with_random_load(kind, rated):
    # given: parts of random length and load, hostile loads included, with idle gaps, for
    # four simulated hours
    model = MachineModel(kind=kind, rated_power_kw=rated, seed=7)
    rng = random.Random(7)
    limits = default_limits(kind, rated)
    t, samples = 0.0, []
    while t < 4 * 3600:
        load = rng.choice([None, 0.0, rated * rng.uniform(0, 3), 1e9])
        model.part_start(t, load_kw=load, seconds=rng.uniform(5, 600))
        samples += run(model, t, rng.uniform(5, 600), step=0.5)
        t = model._last_t or t
        model.part_stop(t)
        samples += run(model, t, rng.uniform(0, 300), step=0.5)
        t = model._last_t or t
    # then: never above the rating, never below zero, and no default rule reaches warning
    powers = [s["power_kw"] for s in samples]
    assert max(powers) <= rated * MAX_SHARE
    assert min(powers) > 0
    for signal, (warning, _) in limits.items():
        assert max(s[signal] for s in samples) < warning, signal


@pytest.mark.parametrize(("kind", "rated"), MACHINES)
def test_an_idle_machine_draws_idle_power_with_nothing_turning_or_heating(kind, rated):
    model = MachineModel(kind=kind, rated_power_kw=rated, seed=1)
    samples = run(model, 0.0, 1800, step=1.0)
    idle_kw = rated * IDLE_SHARE[kind]
    assert all(abs(s["power_kw"] - idle_kw) < 0.05 * idle_kw for s in samples)
    assert all(s["vibration_mm_s"] < 0.3 for s in samples)
    if kind == "cnc_mill":
        assert all(s["spindle_rpm"] == 0 and s["torque_nm"] == 0 for s in samples)
        assert max(s["temperature_c"] for s in samples) < 30  # the housing near ambient
    else:
        assert max(s["temperature_c"] for s in samples) < 26  # heaters off
        assert all(s["progress_pct"] == 0 for s in samples)


def test_a_running_part_draws_its_load_and_the_machine_idles_again_after():
    # given: an idle mill
    model = MachineModel(kind="cnc_mill", rated_power_kw=7.5, seed=2)
    run(model, 0.0, 60)
    # when: a part of 5.25 kW mean (the estimate's kWh over its hours) runs for 20 s
    model.part_start(60.0, load_kw=5.25, seconds=20)
    during = run(model, 60.0, 20)
    model.part_stop(80.0)
    after = run(model, 80.0, 10)[-1]
    # then: the spindle turns, torque times speed is the cutting power, and the part's energy
    # is its mean power times its duration
    steady = during[-1]
    assert 6000 <= steady["spindle_rpm"] <= 10800
    omega = steady["spindle_rpm"] * 2 * math.pi / 60
    cutting = steady["power_kw"] - model.idle_kw
    assert steady["torque_nm"] * omega / 1000 / 0.9 == pytest.approx(cutting, rel=0.01)
    kwh = sum(s["power_kw"] for s in during) * 0.1 / 3600
    assert kwh == pytest.approx(5.25 * 20 / 3600, rel=0.04)
    assert after["spindle_rpm"] == 0 and after["torque_nm"] == 0
    assert after["power_kw"] == pytest.approx(model.idle_kw, rel=0.05)


def test_a_printer_heats_only_while_printing_and_reports_its_progress():
    model = MachineModel(kind="fdm_printer", rated_power_kw=0.35, seed=4)
    model.part_start(0.0, load_kw=0.175, seconds=300)
    printing = run(model, 0.0, 150)
    assert printing[-1]["temperature_c"] == pytest.approx(210, abs=2)
    assert printing[-1]["progress_pct"] == pytest.approx(50, abs=1)
    assert printing[-1]["material_remaining"] < 1000
    model.part_stop(150.0)
    cooled = run(model, 150.0, 300)[-1]
    assert cooled["temperature_c"] < 30 and cooled["progress_pct"] == 0


@pytest.mark.parametrize(
    ("kind", "rated", "fault", "signal"),
    [
        ("cnc_mill", 7.5, Fault.BEARING_WEAR, "vibration_mm_s"),
        ("cnc_mill", 7.5, Fault.OVERHEAT, "temperature_c"),
        ("cnc_mill", 7.5, Fault.POWER_SPIKE, "power_kw"),
        ("fdm_printer", 0.35, Fault.OVERHEAT, "temperature_c"),
        ("fdm_printer", 0.35, Fault.POWER_SPIKE, "power_kw"),
    ],
)
def test_an_injected_fault_takes_its_signal_past_the_critical_limit(kind, rated, fault, signal):
    # given: a machine that ran healthy for ten minutes, a part running
    model = MachineModel(kind=kind, rated_power_kw=rated, seed=5)
    model.part_start(0.0, seconds=3600)
    healthy = run(model, 0.0, 600, step=1.0)
    _, critical = default_limits(kind, rated)[signal]
    assert max(s[signal] for s in healthy) < critical
    # when: the fault is injected and 25 minutes pass
    model.inject(fault, 600.0)
    faulty = run(model, 600.0, 1500, step=1.0)
    # then: the signal stays past the critical limit long enough for a rule (10 s) to act
    past = [s[signal] > critical for s in faulty]
    longest = max(len(run_) for run_ in "".join("x" if p else " " for p in past).split())
    assert longest >= 12


def test_a_fault_grows_from_its_injection_not_from_power_on():
    model = MachineModel(kind="cnc_mill", rated_power_kw=7.5, seed=6)
    run(model, 0.0, 3600, step=10.0)
    model.inject(Fault.BEARING_WEAR, 3600.0)
    assert model.sample(3601.0)["vibration_mm_s"] < 0.5  # not 36 mm/s at once
    model.inject(Fault.NONE, 3700.0)
    assert model.sample(3701.0)["vibration_mm_s"] < 0.3  # repaired


@pytest.mark.parametrize(
    "control",
    [
        {"fault": "melted"},
        {"running": True, "load_kw": math.nan},
        {"running": True, "load_kw": -1.0},
        {"running": True, "seconds": math.inf},
    ],
)
def test_a_bad_control_write_is_refused_and_changes_nothing(control):
    model = MachineModel(kind="cnc_mill", rated_power_kw=7.5)
    with pytest.raises(ValueError):
        apply_control(model, 1.0, **control)
    assert not model.running and model.fault == Fault.NONE
