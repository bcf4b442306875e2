"""Threshold rules as pure functions: which rule applies to a node's signal, which level a value
is at (with hysteresis), and when a level change counts (after a minimum duration). The
services load and store the state; nothing here touches the database."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol

NORMAL, WARNING, CRITICAL = "normal", "warning", "critical"
RANK = {NORMAL: 0, WARNING: 1, CRITICAL: 2}

# The platform's defaults, installed by migration 0002 and editable in the ops portal:
# (signal, node kind, mode, warning, critical). Printers' hot ends and powder beds run far
# above a mill's spindle housing, so their temperature rules are overridden per kind.
DEFAULT_RULES: list[tuple[str, str, str, float | None, float | None]] = [
    ("temperature_c", "", "above", 75.0, 85.0),
    ("vibration_mm_s", "", "above", 2.5, 4.0),
    ("power_kw", "", "baseline_ratio", 1.2, 1.5),
    ("temperature_c", "fdm_printer", "above", 245.0, 260.0),
    ("temperature_c", "sls_printer", "above", 200.0, 215.0),
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


def rules_for(rules: Iterable[RuleLike], *, node_id: int, kind: str) -> dict[str, RuleLike]:
    """signal -> the most specific rule for this node (node, then kind, then default). A
    disabled rule still wins: disabling a node's rule switches the signal off for that node."""
    best: dict[str, tuple[int, RuleLike]] = {}
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
        if rule.signal not in best or best[rule.signal][0] < rank:
            best[rule.signal] = (rank, rule)
    return {signal: rule for signal, (_, rule) in best.items() if rule.enabled}


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


def level_of(
    value: float, *, warning: float | None, critical: float | None, current: str, band: float
) -> str:
    """The level of `value`; a level is left only once the value falls `band` (a share, 0.05 =
    5%) below its threshold, so a value hovering at a limit stays where it is."""
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
) -> Step:
    """Advance a signal's state by one reading. A new level takes effect once readings have
    stayed at it for `min_duration`: a single spike does not raise an alert, and a value
    hovering at a limit does not flap."""
    target = level_of(value, warning=warning, critical=critical, current=current, band=band)
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
