"""Each node's reporting cadence, and the agent's time limits in samples of it.

A sensor that reports every 5 minutes is not offline after 6 minutes of silence, and an anomaly
seen on a 1-hour sensor for 10 minutes is one reading, not a sustained one. The cadence is the
node's configured one (NodeHealth.expected_cadence_s, set by an administrator) or, failing
that, the one learned from its telemetry (the median gap between its newest points, kept in
NodeHealth.cadence_s by the fleet monitor). The limits:

- offline: silent for longer than MAINTENANCE_OFFLINE_SAMPLES samples, and never less than
  MAINTENANCE_OFFLINE_MINUTES;
- sustained anomaly: flagged over MAINTENANCE_ANOMALY_SUSTAIN_SAMPLES samples (the first and
  the last included, so N - 1 cadences), and never less than
  MAINTENANCE_ANOMALY_SUSTAIN_MINUTES;
- the anomaly detector's window: MAINTENANCE_ANOMALY_WINDOW_SAMPLES samples, and never less
  than ANOMALY_WINDOW_MIN_S; windows one sample apart, and never closer than
  ANOMALY_STEP_MIN_S; its training history: the last ANOMALY_HISTORY_SAMPLES samples, and
  never less than ANOMALY_HISTORY_MIN_DAYS. Training and scoring take the window from the same
  function, so a detector reads a slow sensor as it learned it (an hourly sensor's 12-hour
  window holds its 12 readings, as a fast sensor's 10 minutes hold a few hundred).

A node whose cadence is unknown keeps the minute limits."""

from __future__ import annotations

import statistics
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings

from apps.telemetry.models import TelemetryPoint

LEARN_FROM_POINTS = 21  # the newest points; 20 gaps
MIN_GAPS = 3  # fewer gaps say nothing about a cadence
# The anomaly detector's floors: what a fast (sub-second to 1-minute) sensor has always had.
ANOMALY_WINDOW_MIN_S = 600.0
ANOMALY_STEP_MIN_S = 300.0
ANOMALY_HISTORY_MIN_DAYS = 7
# A week of a 5-minute sensor: an hourly sensor's week (168 readings) is too few windows to fit
# a detector on and to see its false-alarm rate on the held-out part.
ANOMALY_HISTORY_SAMPLES = 2016


def cadence_learn(*, node_id: int, now: datetime) -> float | None:
    """The median gap in seconds between the node's newest points up to `now`, or None."""
    times = list(
        TelemetryPoint.objects.filter(node_id=node_id, time__lte=now)
        .order_by("-time")
        .values_list("time", flat=True)[:LEARN_FROM_POINTS]
    )
    gaps = [(a - b).total_seconds() for a, b in zip(times, times[1:], strict=False)]
    gaps = [g for g in gaps if g > 0]
    if len(gaps) < MIN_GAPS:
        return None
    return round(statistics.median(gaps), 3)


def cadences_learn(*, node_ids: Iterable[int], now: datetime) -> dict[int, float]:
    out = {}
    for node_id in node_ids:
        cadence = cadence_learn(node_id=node_id, now=now)
        if cadence is not None:
            out[node_id] = cadence
    return out


def cadence_of(*, expected_s: float | None, learned_s: float | None) -> float | None:
    return expected_s if expected_s else learned_s


def offline_after(cadence_s: float | None) -> timedelta:
    floor = timedelta(minutes=settings.MAINTENANCE_OFFLINE_MINUTES)
    if not cadence_s:
        return floor
    return max(floor, timedelta(seconds=settings.MAINTENANCE_OFFLINE_SAMPLES * cadence_s))


def sustain_for(cadence_s: float | None) -> timedelta:
    floor = timedelta(minutes=settings.MAINTENANCE_ANOMALY_SUSTAIN_MINUTES)
    if not cadence_s:
        return floor
    samples = max(1, settings.MAINTENANCE_ANOMALY_SUSTAIN_SAMPLES)
    return max(floor, timedelta(seconds=(samples - 1) * cadence_s))


@dataclass(frozen=True)
class AnomalyWindow:
    width_s: float  # a window holds the readings in (end - width_s, end]
    step_s: float  # training's windows end this far apart
    history_s: float  # training reads this far back


def anomaly_window(cadence_s: float | None) -> AnomalyWindow:
    """The detector's window for a node of this cadence (None: unknown, the floors)."""
    floor = AnomalyWindow(
        ANOMALY_WINDOW_MIN_S, ANOMALY_STEP_MIN_S, ANOMALY_HISTORY_MIN_DAYS * 86400.0
    )
    if not cadence_s or cadence_s <= 0:
        return floor
    samples = max(2, settings.MAINTENANCE_ANOMALY_WINDOW_SAMPLES)
    return AnomalyWindow(
        width_s=max(floor.width_s, samples * cadence_s),
        step_s=max(floor.step_s, cadence_s),
        history_s=max(floor.history_s, ANOMALY_HISTORY_SAMPLES * cadence_s),
    )
