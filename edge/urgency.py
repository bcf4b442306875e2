"""Which points are worth showing at once, and which may wait for the next batch.

A live view needs a change as soon as the gateway reads it, but sending every reading at once
would turn a fleet into one request per poll per machine, most of them carrying sensor noise.
So the gateway forwards a point at once when it tells the platform something new:

- a signal moved beyond its deadband since the value the platform was last sent,
- a signal the node has not reported before (and the node's first point),
- a local safety alert was raised or cleared on it (edge/safety.py),
- nothing was sent for `max_silence_s` (a heartbeat, for long forward intervals);

everything else waits for the periodic batch (`forward_every_s`).

A deadband is `{abs: A, rel: R}`: a change counts when it is larger than both A (in the signal's
unit) and R times the last sent value. `abs` keeps noise around zero quiet, where any relative
change is huge; `rel` scales with the value. Defaults are per signal, in the units of the
platform's signals (apps/telemetry/models.py), sized above the noise of a healthy machine and
below what a person watching a chart would call a change.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

ANY_SIGNAL = "*"  # the deadband of a signal without one of its own


@dataclass(frozen=True)
class Deadband:
    abs: float = 0.0
    rel: float = 0.0

    def exceeded(self, before: float, after: float) -> bool:
        change = abs(after - before)
        return change > self.abs and change > self.rel * abs(before)


DEFAULT_DEADBANDS: dict[str, Deadband] = {
    "temperature_c": Deadband(abs=0.5),
    "vibration_mm_s": Deadband(abs=0.2),
    "power_kw": Deadband(abs=0.05, rel=0.05),
    "spindle_rpm": Deadband(abs=50.0, rel=0.02),
    "torque_nm": Deadband(abs=0.5, rel=0.05),
    "progress_pct": Deadband(abs=1.0),
    "material_remaining": Deadband(rel=0.01),
    ANY_SIGNAL: Deadband(rel=0.05),
}
DEFAULT_MAX_SILENCE_S = 10.0


def deadbands_from(raw: Any, where: str) -> dict[str, Deadband]:
    """Parse `{signal: {abs: A, rel: R}}` from a config; ValueError says what is wrong."""
    if raw is None:
        return {}
    if not isinstance(raw, Mapping):
        raise ValueError(f"{where}: deadband must map signals to {{abs: A, rel: R}}")
    parsed: dict[str, Deadband] = {}
    for signal, spec in raw.items():
        if not isinstance(spec, Mapping) or not spec or set(spec) - {"abs", "rel"}:
            raise ValueError(f"{where}: deadband.{signal} must be {{abs: A, rel: R}} (one or both)")
        values = {}
        for key, value in spec.items():
            try:
                number = float(value)
            except (TypeError, ValueError):
                number = math.nan
            # .inf is allowed: a signal that never makes a point urgent
            if not number >= 0:  # NaN fails too
                raise ValueError(f"{where}: deadband.{signal}.{key} must be a number >= 0")
            values[key] = number
        parsed[str(signal)] = Deadband(**values)
    return parsed


@dataclass
class UrgencyFilter:
    """One node's memory of what the platform was sent, deciding which new points are urgent.
    Used from the gateway's event loop only."""

    deadbands: Mapping[str, Deadband]
    max_silence_s: float = DEFAULT_MAX_SILENCE_S
    sent: dict[str, float] = field(default_factory=dict)  # per signal, the value last sent
    latest: dict[str, float] = field(default_factory=dict)  # per signal, the newest buffered
    sent_at: float | None = None  # monotonic time of the last send (None: nothing sent yet)

    def deadband(self, signal: str) -> Deadband:
        return self.deadbands.get(signal) or self.deadbands.get(ANY_SIGNAL) or Deadband()

    def check(self, now: float, values: Mapping[str, float], *, alert: bool = False) -> str | None:
        """Why the point with `values` must go at once (None: it may wait for the batch).
        An urgent point is as good as sent: later points are compared with it."""
        reason = None
        if alert:
            reason = "local alert"
        elif self.sent_at is None and not self.sent:
            reason = "first point"
        elif self.sent_at is not None and now - self.sent_at >= self.max_silence_s:
            reason = "heartbeat"
        for signal, value in values.items():
            before = self.sent.get(signal)
            if reason is None:
                if before is None:
                    reason = f"new signal {signal}"
                elif self.deadband(signal).exceeded(before, value):
                    reason = f"{signal} changed beyond its deadband"
        self.latest.update(values)
        if reason is not None:
            self.sent.update(values)
        return reason

    def sending(self, now: float) -> None:
        """A send starts with everything buffered: the newest values become the reference."""
        self.sent.update(self.latest)
        self.sent_at = now
