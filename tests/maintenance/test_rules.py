"""Threshold levels, hysteresis and minimum duration as pure functions."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from apps.maintenance import rules

T0 = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)


@dataclass
class R:
    signal: str
    node_kind: str = ""
    node_id: int | None = None
    mode: str = "above"
    warning: float | None = 75.0
    critical: float | None = 85.0
    hysteresis_pct: float = 5.0
    min_duration_s: float = 0.0
    enabled: bool = True


def run(values, *, min_s=0.0, band=0.05, every_s=1.0):
    level, pending, since = "normal", "", None
    levels = []
    for i, v in enumerate(values):
        s = rules.step(
            value=v,
            at=T0 + timedelta(seconds=i * every_s),
            warning=75.0,
            critical=85.0,
            current=level,
            pending=pending,
            pending_since=since,
            band=band,
            min_duration=timedelta(seconds=min_s),
        )
        level, pending, since = s.level, s.pending, s.pending_since
        levels.append(level)
    return levels


def test_levels_at_the_default_temperature_limits():
    assert run([70, 76, 86, 90]) == ["normal", "warning", "critical", "critical"]


def test_hysteresis_keeps_a_hovering_value_at_its_level():
    # 75 +- 1: once above, it stays warning until it falls below 75 - 5% = 71.25
    hovering = [76, 74.5, 75.5, 74, 75.2, 73, 76]
    assert run(hovering) == ["warning"] * 7
    assert run([76, 71])[-1] == "normal"
    # without hysteresis the same series flaps
    assert run(hovering, band=0.0) == [
        "warning",
        "normal",
        "warning",
        "normal",
        "warning",
        "normal",
        "warning",
    ]


def test_critical_falls_back_to_warning_past_its_band_only():
    assert run([90, 82, 80.5])[-2:] == ["critical", "warning"]
    assert run([90, 81.5]) == ["critical", "critical"]  # 85 - 5% = 80.75


def test_minimum_duration_ignores_a_short_spike():
    assert run([70, 90, 70, 70], min_s=10) == ["normal"] * 4
    sustained = run([70] + [80] * 12, min_s=10)
    assert sustained[10] == "normal" and sustained[11] == "warning"


def test_time_above_warning_counts_toward_critical():
    # 5 s at warning level then critical: it was out of normal for 10 s by the 11th reading
    levels = run([70] + [80] * 5 + [90] * 10, min_s=10)
    assert levels[10] == "normal"
    assert levels[11] == "critical"


def test_the_most_specific_rule_wins_and_disabled_rules_switch_a_signal_off():
    default = R("temperature_c")
    kind = R("temperature_c", node_kind="fdm_printer", warning=245, critical=260)
    node = R("temperature_c", node_id=7, warning=230, critical=250)
    vib = R("vibration_mm_s", warning=2.5, critical=4.0)
    every = [default, kind, node, vib]
    temperature = ("temperature_c", "above")
    assert rules.rules_for(every, node_id=7, kind="fdm_printer")[temperature] is node
    assert rules.rules_for(every, node_id=8, kind="fdm_printer")[temperature] is kind
    assert rules.rules_for(every, node_id=8, kind="cnc_mill")[temperature] is default
    off = R("vibration_mm_s", node_id=8, enabled=False)
    in_force = rules.rules_for([*every, off], node_id=8, kind="cnc_mill")
    assert ("vibration_mm_s", "above") not in in_force


def test_a_signal_has_a_rule_per_mode_each_the_most_specific_of_its_mode():
    level = R("temperature_c", node_kind="fdm_printer", warning=245, critical=260)
    rise = R("temperature_c", node_kind="fdm_printer", mode="rise", warning=1.5, critical=2.5)
    default_level = R("temperature_c")
    node_rise = R("temperature_c", node_id=7, mode="rise", warning=1.0, critical=2.0)
    every = [default_level, level, rise, node_rise]
    printer = rules.rules_for(every, node_id=8, kind="fdm_printer")
    assert printer == {("temperature_c", "above"): level, ("temperature_c", "rise"): rise}
    # a node's own rise rule replaces its kind's rise rule only, not the level rule
    own = rules.rules_for(every, node_id=7, kind="fdm_printer")
    assert own == {("temperature_c", "above"): level, ("temperature_c", "rise"): node_rise}
    # switched off in one mode, the other mode still applies
    off = R("temperature_c", node_id=8, mode="rise", warning=1.0, enabled=False)
    assert rules.rules_for([*every, off], node_id=8, kind="fdm_printer") == {
        ("temperature_c", "above"): level
    }
    # a mill has no printer rules: only the default level rule
    assert rules.rules_for(every, node_id=9, kind="cnc_mill") == {
        ("temperature_c", "above"): default_level
    }


def test_baseline_ratio_limits_scale_with_the_baseline():
    power = R("power_kw", mode="baseline_ratio", warning=1.2, critical=1.5)
    assert rules.limits(power, baseline=7.5) == (9.0, 11.25)
    assert rules.limits(power, baseline=None) == (None, None)


def run_below(values, *, band=0.05):
    level, pending, since = "normal", "", None
    levels = []
    for i, v in enumerate(values):
        s = rules.step(
            value=v,
            at=T0 + timedelta(seconds=i),
            warning=20.0,
            critical=10.0,
            current=level,
            pending=pending,
            pending_since=since,
            band=band,
            min_duration=timedelta(0),
            below=True,
        )
        level, pending, since = s.level, s.pending, s.pending_since
        levels.append(level)
    return levels


def test_below_fires_on_a_drop_with_the_same_hysteresis():
    # critical below 10, warning below 20; a level is left 5% past its limit (10.5, 21)
    assert run_below([25, 15, 8, 10.3, 10.6, 20.5, 21.5]) == [
        "normal",
        "warning",
        "critical",
        "critical",  # 10.3: above 10 but within its band
        "warning",
        "warning",  # 20.5: within the warning's band
        "normal",
    ]
    # judged as `above` the same limits read the other way
    assert rules.level_of(8, warning=20, critical=10, current="normal", band=0.05) == "normal"
    assert (
        rules.level_of(8, warning=20, critical=10, current="normal", band=0.05, below=True)
        == "critical"
    )
    assert (
        rules.level_of(30, warning=20, critical=10, current="normal", band=0.05, below=True)
        == "normal"
    )


def test_rate_is_the_absolute_change_per_minute_over_at_least_a_minute():
    later = T0 + timedelta(seconds=90)
    assert rules.rate_per_min(value=13.0, at=later, since_value=10.0, since=T0) == 2.0
    assert rules.rate_per_min(value=7.0, at=later, since_value=10.0, since=T0) == 2.0  # a drop
    # under a minute apart, or without an earlier reading: nothing measured yet
    assert (
        rules.rate_per_min(value=99.0, at=T0 + timedelta(seconds=30), since_value=10.0, since=T0)
        is None
    )
    assert rules.rate_per_min(value=13.0, at=later, since_value=None, since=None) is None


def test_a_rise_is_signed_so_a_cooling_machine_never_reaches_a_rise_limit():
    later = T0 + timedelta(seconds=120)
    assert rules.rate_per_min(value=16.0, since_value=10.0, at=later, since=T0, signed=True) == 3.0
    assert rules.rate_per_min(value=4.0, since_value=10.0, at=later, since=T0, signed=True) == -3.0
    moved = rules.step(
        value=-30.0,
        at=later,
        warning=1.5,
        critical=2.5,
        current="normal",
        pending="",
        pending_since=None,
        band=0.05,
        min_duration=timedelta(0),
    )
    assert moved.level == "normal"


def test_breach_words():
    assert rules.breach_words("below", value=3, threshold=5) == "3, below its limit of 5"
    assert rules.breach_words("above", value=92, threshold=85) == "92, above its limit of 85"
    assert (
        rules.breach_words("rate", value=6, threshold=5)
        == "changing 6 per minute, faster than its limit of 5/min"
    )
    assert (
        rules.breach_words("rise", value=3, threshold=2.5)
        == "rising 3 per minute, faster than its limit of 2.5/min"
    )
    assert rules.worse("below", 3, 5) == 3 and rules.worse("above", 3, 5) == 5
