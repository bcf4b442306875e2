"""Threshold rules as pure functions: which rule applies to a node's signal, which level a value
is at (with hysteresis), and when a level change counts (after a minimum duration). The
services load and store the state; nothing here touches the database.

Modes: `above` (the value above its limits), `baseline_ratio` (above its limits times the
node's rated power), `below` (the value below its limits: the critical limit is the lower one;
failures that show as a drop, such as coolant flow or pressure), `rate` (how fast the value
changes, in its unit per minute, whichever way: the absolute change between two readings at
least RATE_MIN_SPAN_S apart, above its limits; a sudden jump or drop) and `rise` (the same,
rises only: a thermal runaway, which a machine cooling down after work must not look like).
Every mode has the same hysteresis and minimum duration.

A signal may have one rule per mode (a level rule and a rate rule on temperature at once); of
the rules of one signal and mode, the most specific (node, then kind, then default) applies."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol, TypeVar

NORMAL, WARNING, CRITICAL = "normal", "warning", "critical"
RANK = {NORMAL: 0, WARNING: 1, CRITICAL: 2}
ABOVE, BASELINE_RATIO, BELOW, RATE, RISE = "above", "baseline_ratio", "below", "rate", "rise"
RATE_MODES = (RATE, RISE)
# A rate is measured between readings at least this far apart: per-second readings' noise over
# one second, scaled to a minute, would be sixty times the noise.
RATE_MIN_SPAN_S = 60.0


@dataclass(frozen=True)
class DefaultRule:
    signal: str
    node_kind: str  # "" for every kind
    mode: str
    warning: float | None
    critical: float | None
    min_duration_s: float = 10.0


# The platform's defaults, installed by migrations (0002, then 0009 for the rise rules) and
# editable in the ops portal. Printers' hot ends and powder beds run far above a mill's spindle
# housing, so their temperature level rules are overridden per kind.
#
# Thermal runaway (`rise` rules): a heater or a cooling failure that keeps a machine's
# temperature climbing, which on an idle printer would take over an hour to reach its 245 C
# level rule. The limits are set against the heat-up a healthy machine makes when a part starts
# (edge/simulators/machines.py), measured as the rules measure it (rise per minute between
# readings a minute apart) and required to last the rule's minimum duration:
# - FDM printer: the hot end heats 24 -> 210 C with a 20 s time constant, so its per-minute rise
#   is ~177, ~9, ~0.4 C/min: above 1.5 C/min for two minutes at most. Warning 1.5, critical 2.5
#   C/min held for 5 minutes: even a hot end three times slower (95% in 3 minutes) is back under
#   1.5 C/min by its sixth minute. The overheat fault (3 C/min) goes critical ~7 minutes in.
# - CNC mill: the spindle housing warms with a 5-minute time constant by 1.8 C per cutting kW
#   (at most 0.8 x rated), 24 -> 39 C on the demo's 7.5 kW mill: 2.7, 2.2, 1.8, 1.5 ... C/min,
#   0.36 C/min by the eleventh minute. Warning 1.5, critical 2.0 C/min held for 10 minutes: a
#   heat-up from cold would fire only on a mill over 40 kW rated (four times the demo's margin).
#   The overheat fault goes critical ~12 minutes in, against ~19 minutes for the 85 C level rule.
# Other kinds get no default rise rule: an SLS powder bed warms for an hour on purpose.
DEFAULT_RULES: list[DefaultRule] = [
    DefaultRule("temperature_c", "", "above", 75.0, 85.0),
    DefaultRule("vibration_mm_s", "", "above", 2.5, 4.0),
    DefaultRule("power_kw", "", "baseline_ratio", 1.2, 1.5),
    DefaultRule("temperature_c", "fdm_printer", "above", 245.0, 260.0),
    DefaultRule("temperature_c", "sls_printer", "above", 200.0, 215.0),
    DefaultRule("temperature_c", "fdm_printer", "rise", 1.5, 2.5, min_duration_s=300.0),
    DefaultRule("temperature_c", "cnc_mill", "rise", 1.5, 2.0, min_duration_s=600.0),
]


class RuleLike(Protocol):
    signal: str
    node_kind: str
    node_id: int | None
    mode: str
    warning: float | None
    critical: float | None
    hysteresis_pct: float
    min_duration_s: float
    enabled: bool


RuleKey = tuple[str, str]  # (signal, mode)


RuleT = TypeVar("RuleT", bound=RuleLike)


def rules_for(rules: Iterable[RuleT], *, node_id: int, kind: str) -> dict[RuleKey, RuleT]:
    """(signal, mode) -> the most specific rule of that signal and mode for this node (node,
    then kind, then default). A disabled rule still wins: disabling a node's rule switches that
    mode of the signal off for that node, leaving its other modes alone."""
    best: dict[RuleKey, tuple[int, RuleT]] = {}
    for rule in rules:
        if rule.node_id is not None:
            if rule.node_id != node_id:
                continue
            rank = 2
        elif rule.node_kind:
            if rule.node_kind != kind:
                continue
            rank = 1
        else:
            rank = 0
        key = (rule.signal, rule.mode)
        if key not in best or best[key][0] < rank:
            best[key] = (rank, rule)
    return {key: rule for key, (_, rule) in best.items() if rule.enabled}


def limits(rule: RuleLike, *, baseline: float | None) -> tuple[float | None, float | None]:
    """The rule's warning and critical limits in the signal's unit (None: no such level)."""
    if rule.mode == "baseline_ratio":
        if baseline is None or baseline <= 0:
            return None, None
        return (
            None if rule.warning is None else rule.warning * baseline,
            None if rule.critical is None else rule.critical * baseline,
        )
    return rule.warning, rule.critical


def rate_per_min(
    *,
    value: float,
    at: datetime,
    since_value: float | None,
    since: datetime | None,
    signed: bool = False,
) -> float | None:
    """The change from the reading (`since_value` at `since`) to this one, per minute: its
    absolute value, or with `signed` the rise (negative when falling); None until the readings
    are RATE_MIN_SPAN_S apart (or without an earlier reading)."""
    if since_value is None or since is None:
        return None
    span_s = (at - since).total_seconds()
    if span_s < RATE_MIN_SPAN_S:
        return None
    change = value - since_value
    return (change if signed else abs(change)) / (span_s / 60.0)


def breach_words(mode: str, *, value: float, threshold: float) -> str:
    """How a reading stands against a limit, for alerts, tickets and pages."""
    if mode == BELOW:
        return f"{value:.4g}, below its limit of {threshold:.4g}"
    if mode == RATE:
        return f"changing {value:.4g} per minute, faster than its limit of {threshold:.4g}/min"
    if mode == RISE:
        return f"rising {value:.4g} per minute, faster than its limit of {threshold:.4g}/min"
    return f"{value:.4g}, above its limit of {threshold:.4g}"


def worse(mode: str, a: float, b: float) -> float:
    """The worse of two measured values under `mode` (an alert's peak): the lower one below a
    limit, else the higher one."""
    return min(a, b) if mode == BELOW else max(a, b)


def level_of(
    value: float,
    *,
    warning: float | None,
    critical: float | None,
    current: str,
    band: float,
    below: bool = False,
) -> str:
    """The level of `value`; a level is left only once the value falls `band` (a share, 0.05 =
    5%) below its threshold (rises above it, with `below`), so a value hovering at a limit
    stays where it is."""
    if below:
        # mirrored: "below 10" is "-value above -10", with the same band
        return level_of(
            -value,
            warning=None if warning is None else -warning,
            critical=None if critical is None else -critical,
            current=current,
            band=band,
        )
    if critical is not None and value > critical:
        return CRITICAL
    if current == CRITICAL and critical is not None and value > critical - abs(critical) * band:
        return CRITICAL
    if warning is not None and value > warning:
        return WARNING
    if (
        current in (WARNING, CRITICAL)
        and warning is not None
        and value > warning - abs(warning) * band
    ):
        return WARNING
    return NORMAL


@dataclass(frozen=True)
class Step:
    """The outcome of one reading: the level now in force, a pending level (and since when)
    that has not lasted long enough yet, and whether the level in force changed."""

    level: str
    pending: str
    pending_since: datetime | None
    changed: bool


def step(
    *,
    value: float,
    at: datetime,
    warning: float | None,
    critical: float | None,
    current: str,
    pending: str,
    pending_since: datetime | None,
    band: float,
    min_duration: timedelta,
    below: bool = False,
) -> Step:
    """Advance a signal's state by one reading. A new level takes effect once readings have
    stayed at it for `min_duration`: a single spike does not raise an alert, and a value
    hovering at a limit does not flap."""
    target = level_of(
        value, warning=warning, critical=critical, current=current, band=band, below=below
    )
    if target == current:
        return Step(current, "", None, False)
    rising = RANK[target] > RANK[current]
    same_way = bool(pending) and (RANK[pending] > RANK[current]) == rising
    # Out of the current level the same way since `pending_since` (warning, then critical):
    # the time counts toward the new level too.
    if not same_way or pending_since is None or pending_since > at:
        pending_since = at
    if at - pending_since >= min_duration:
        return Step(target, "", None, True)
    return Step(current, target, pending_since, False)
