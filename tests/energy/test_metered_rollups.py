"""Metered energy at scale (apps.telemetry.selectors.power_kwh_by_day_rolled): whole hours from
the hourly rollup, raw points only for the partial hours at each end and the hours a node did
not report steadily. It must agree with the raw computation (power_kwh_by_day) on the backend
the suite runs on (PostgreSQL with DATABASE_URL, SQLite without), and through TimescaleDB's
continuous aggregates (their stand-ins, on PostgreSQL)."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from apps.energy.selectors import metered_energy
from apps.telemetry.selectors import power_kwh_by_day, power_kwh_by_day_rolled
from tests.telemetry import rollup_standin

pytestmark = pytest.mark.django_db

GAP_S = 300.0


def _steady(start: datetime, minutes: float, kw, every_s: int = 30):
    return [(start + timedelta(seconds=s), kw(s)) for s in range(0, int(minutes * 60) + 1, every_s)]


@pytest.fixture
def history(printer, rival, ingest):
    """Two days of two machines' power, none of it aligned to hours: the printer steady every
    30 s with a varying load across midnight; the mill on and off (a 40-minute silence, a
    20-minute silence), each run at its own load."""
    midnight = datetime.now(tz=UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    begin = midnight - timedelta(days=1, hours=3, minutes=17, seconds=11)
    ingest(printer, _steady(begin, 9 * 60, lambda s: 0.3 + 0.2 * math.sin(s / 900)))
    mill = begin + timedelta(minutes=43)
    ingest(rival, _steady(mill, 150, lambda s: 2.0, every_s=20))
    ingest(rival, _steady(mill + timedelta(minutes=190), 95, lambda s: 6.5 + (s % 600) / 300))
    ingest(rival, _steady(mill + timedelta(minutes=305), 61, lambda s: 1.2, every_s=20))
    return {
        "nodes": [printer.pk, rival.pk],
        "start": begin - timedelta(minutes=29),
        "end": mill + timedelta(minutes=420, seconds=7),
        "steady_mill_hour": (mill + timedelta(minutes=215)).replace(minute=0, second=0),
    }


def _agree(history) -> dict:
    kwargs = {
        "node_ids": history["nodes"],
        "start": history["start"],
        "end": history["end"],
        "max_gap_s": GAP_S,
    }
    raw = power_kwh_by_day(**kwargs)
    rolled = power_kwh_by_day_rolled(**kwargs)
    assert set(rolled) == set(raw) == set(history["nodes"])
    for node_id, per_day in raw.items():
        assert set(rolled[node_id]) == set(per_day)  # the same days, split at midnight
        for day, kwh in per_day.items():
            assert rolled[node_id][day] == pytest.approx(kwh, rel=2e-3), (node_id, day)
    return rolled


def test_the_rolled_up_reading_agrees_with_the_raw_computation(history):
    rolled = _agree(history)
    total = sum(v for per_day in rolled.values() for v in per_day.values())
    assert total > 15  # the machines' runs, not a trivial zero


def test_it_agrees_through_the_continuous_aggregates(history, rival, ingest):
    if connection.vendor != "postgresql":
        pytest.skip("the continuous aggregates (and their stand-ins) exist on PostgreSQL only")
    rollup_standin.install()
    try:
        with CaptureQueriesContext(connection) as queries:
            _agree(history)
        assert any("telemetry_hourly" in q["sql"] for q in queries.captured_queries)
        # the steady hours are read from the aggregate, not the raw rows: once materialized,
        # a reading stored late into one of them is invisible to it until it is refreshed
        rollup_standin.materialize("telemetry_hourly", history["start"], history["end"])
        hour = history["steady_mill_hour"]
        args = {"node_ids": [rival.pk], "start": history["start"], "end": history["end"]}
        before = power_kwh_by_day_rolled(**args, max_gap_s=GAP_S)[rival.pk][hour.date()]
        ingest(rival, [(hour + timedelta(minutes=30, seconds=5), 30.0)])
        raw = power_kwh_by_day(**args, max_gap_s=GAP_S)[rival.pk][hour.date()]
        hidden = power_kwh_by_day_rolled(**args, max_gap_s=GAP_S)[rival.pk][hour.date()]
        assert hidden == before and raw > before + 0.05  # a 30 kW reading between 7 kW ones
        rollup_standin.materialize("telemetry_hourly", hour, hour + timedelta(hours=1))
        seen = power_kwh_by_day_rolled(**args, max_gap_s=GAP_S)[rival.pk][hour.date()]
        # refreshed, the aggregate counts it (as one reading of the hour's average: an odd
        # reading between the steady ones weighs a full interval there, half of two here)
        assert seen > before + 0.05
    finally:
        rollup_standin.uninstall()


def test_short_or_empty_periods(history, printer):
    end = history["start"] + timedelta(minutes=50)  # within one hour: raw only
    for start, stop in ((history["start"], end), (end, end), (end, history["start"])):
        raw = power_kwh_by_day(node_ids=[printer.pk], start=start, end=stop, max_gap_s=GAP_S)
        assert (
            power_kwh_by_day_rolled(node_ids=[printer.pk], start=start, end=stop, max_gap_s=GAP_S)
            == raw
        )
    assert (
        power_kwh_by_day_rolled(
            node_ids=[], start=end, end=end + timedelta(days=1), max_gap_s=GAP_S
        )
        == {}
    )


def test_the_energy_pages_figure_is_the_rolled_up_one(history):
    metered = metered_energy(node_ids=history["nodes"], start=history["start"], end=history["end"])
    raw = power_kwh_by_day(
        node_ids=history["nodes"], start=history["start"], end=history["end"], max_gap_s=GAP_S
    )
    assert metered.kwh == pytest.approx(
        sum(v for per_day in raw.values() for v in per_day.values()), rel=2e-3
    )
