"""Dense ranges keep every signal: point_range_downsampled averages the `extra` signals of each
slice as it averages the built-in ones (text and booleans: the slice's newest reading), on
PostgreSQL (also with the TimescaleDB stand-ins in place) and on SQLite; a model reading a node's
history gets the same inputs from dense points as from sparse ones."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import pytest
from django.db import connection
from django.utils import timezone

from apps.maintenance.learning.rul import rul_features
from apps.maintenance.services.training import node_series
from apps.telemetry.selectors import SIGNALS, point_range_downsampled
from apps.telemetry.services import telemetry_ingest
from tests.fixtures.fleet import Fleet
from tests.fixtures.machines import in_service
from tests.telemetry import rollup_standin

pytestmark = pytest.mark.django_db
SLOT_S = 600


def aligned_start(hours_back: float) -> datetime:
    """A time `hours_back` ago on a slot boundary (slices are cut from the Unix epoch)."""
    moment = timezone.now().timestamp() - hours_back * 3600
    return datetime.fromtimestamp(moment // SLOT_S * SLOT_S, tz=UTC)


def ingest(node_id: int, points: list[dict[str, Any]]) -> None:
    for first in range(0, len(points), 2000):
        report = telemetry_ingest(points=points[first : first + 2000], node_id=node_id)
        assert not report.rejected, report.rejected[:3]


def reading(node_id: int, at: datetime, t_h: float, **extra: Any) -> dict[str, Any]:
    """A steady machine with a slow drift: a built-in temperature, and an extra bearing
    temperature that follows it 5 K higher (so both must come out alike)."""
    temperature = 40.0 + 2.0 * t_h
    return {
        "node": node_id,
        "time": at.isoformat(),
        "temperature_c": temperature,
        "vibration_mm_s": 1.0 + 0.1 * t_h,
        "extra": {"bearing_temp_c": temperature + 5.0, **extra},
    }


def test_dense_slices_average_extra_signals_like_built_in_ones(fleet: Fleet):
    # given: 20 minutes of points every 10 s, an extra numeric, text and boolean signal
    node = in_service(fleet)
    start = aligned_start(1)
    points = []
    for i in range(120):
        at = start + timedelta(seconds=10 * i)
        points.append(
            reading(
                node.pk,
                at,
                i / 360,
                mode="cutting" if i % 60 < 50 else "tool change",
                door_open=i % 60 >= 55,
                counter=i,
            )
        )
    ingest(node.pk, points)

    # when: read as two 10-minute slices
    rows = point_range_downsampled(
        node_id=node.pk, start=start, end=start + timedelta(minutes=20), max_points=2
    )

    # then: every slice has each signal, extras averaged or (text, booleans) the newest
    assert [row["time"] for row in rows] == [start, start + timedelta(minutes=10)]
    for half, row in enumerate(rows):
        assert set(row) == {"time", *SIGNALS, "extra"}
        assert row["extra"]["bearing_temp_c"] == pytest.approx(row["temperature_c"] + 5.0)
        assert row["extra"]["counter"] == pytest.approx(60 * half + 29.5)  # mean of 60 readings
        assert row["extra"]["mode"] == "tool change"  # the slice ends changing tools
        assert row["extra"]["door_open"] is True
        assert row["power_kw"] is None  # never reported: none, as before


def test_a_key_both_numeric_and_text_in_a_slice_averages_its_numbers(fleet: Fleet):
    node = in_service(fleet)
    start = aligned_start(1)
    values: list[Any] = [1.0, "offline", 3.0, "offline"]
    ingest(
        node.pk,
        [
            {
                "node": node.pk,
                "time": (start + timedelta(seconds=60 * i)).isoformat(),
                "extra": {"flow_l_min": value},
            }
            for i, value in enumerate(values)
        ],
    )
    (row,) = point_range_downsampled(
        node_id=node.pk, start=start, end=start + timedelta(minutes=10), max_points=1
    )
    assert row["extra"] == {"flow_l_min": 2.0}


def test_under_load_slices_average_the_extras_of_loaded_readings_only(fleet: Fleet):
    node = in_service(fleet)
    start = aligned_start(1)
    points = []
    for i in range(20):
        cutting = i % 2 == 0
        points.append(
            {
                "node": node.pk,
                "time": (start + timedelta(seconds=30 * i)).isoformat(),
                "power_kw": 5.0 if cutting else 0.7,
                "spindle_rpm": 8000.0 if cutting else 0.0,
                "extra": {"bearing_temp_c": 60.0 if cutting else 30.0},
            }
        )
    ingest(node.pk, points)
    (row,) = point_range_downsampled(
        node_id=node.pk,
        start=start,
        end=start + timedelta(minutes=10),
        max_points=1,
        under_load_kw=1.9,
    )
    assert row["power_kw"] == pytest.approx(5.0)
    assert row["extra"] == {"bearing_temp_c": pytest.approx(60.0)}


def test_a_number_beyond_floating_point_is_kept_not_fatal(fleet: Fleet):
    """A valid JSON integer too large for a double must not break every read of its range."""
    node = in_service(fleet)
    start = aligned_start(1)
    huge = 10**400
    ingest(
        node.pk,
        [
            {
                "node": node.pk,
                "time": (start + timedelta(seconds=60 * i)).isoformat(),
                "temperature_c": 30.0,
                "extra": {"serial": huge, "bearing_temp_c": 50.0},
            }
            for i in range(3)
        ],
    )
    (row,) = point_range_downsampled(
        node_id=node.pk, start=start, end=start + timedelta(minutes=10), max_points=1
    )
    assert row["extra"]["bearing_temp_c"] == pytest.approx(50.0)
    # kept exactly by PostgreSQL (jsonb numbers are exact); SQLite reads it as infinity: none
    assert row["extra"]["serial"] == (huge if connection.vendor == "postgresql" else None)


@pytest.mark.skipif(connection.vendor != "postgresql", reason="the stand-ins need PostgreSQL")
def test_slices_are_the_same_on_the_timescaledb_layout(fleet: Fleet):
    """The same SQL runs where time_bucket() and the continuous aggregates exist (TimescaleDB
    stand-ins on plain PostgreSQL): the slices do not change."""
    node = in_service(fleet)
    start = aligned_start(2)
    ingest(
        node.pk,
        [
            reading(node.pk, start + timedelta(seconds=15 * i), i / 240, mode=f"m{i // 50}")
            for i in range(400)
        ],
    )
    end = start + timedelta(minutes=100)
    plain = point_range_downsampled(node_id=node.pk, start=start, end=end, max_points=10)
    rollup_standin.install()
    try:
        timescale = point_range_downsampled(node_id=node.pk, start=start, end=end, max_points=10)
    finally:
        rollup_standin.uninstall()
    assert len(plain) == 10
    assert timescale == plain
    assert all(row["extra"]["bearing_temp_c"] is not None for row in timescale)


def test_a_model_gets_the_same_inputs_from_dense_points_as_from_sparse_ones(fleet: Fleet):
    # given: the same machine reported sparsely (every 10 min, raw rows) and densely (every 5 s,
    # 2,160 points for 18 slices) over 3 hours
    sparse = in_service(fleet, name="Sparse")
    dense = in_service(fleet, name="Dense")
    start = aligned_start(4)
    hours = 3
    ingest(
        sparse.pk,
        [
            reading(sparse.pk, start + timedelta(seconds=SLOT_S * i), i * SLOT_S / 3600)
            for i in range(hours * 3600 // SLOT_S)
        ],
    )
    ingest(
        dense.pk,
        [
            reading(dense.pk, start + timedelta(seconds=5 * i), i * 5 / 3600)
            for i in range(hours * 720)
        ],
    )
    end = start + timedelta(hours=hours)
    slices = hours * 3600 // SLOT_S

    # when: read as the scoring reads a history (10-minute slices) and turned into features
    series = {
        name: node_series(node_id=node.pk, start=start, end=end, max_points=slices)
        for name, node in (("sparse", sparse), ("dense", dense))
    }
    features = {
        name: rul_features(s.times_s, s.values, s.signals, window_s=3600.0)
        for name, s in series.items()
    }

    # then: the same signals, extras included, and the same feature values (a slice's average
    # sits half a slice later on the drift than a sparse reading: 5 min x 2 K/h = 0.17 K)
    assert series["dense"].signals == series["sparse"].signals
    assert "bearing_temp_c" in series["dense"].signals
    assert len(series["dense"].times_s) == slices
    names, dense_row = features["dense"]
    _, sparse_row = features["sparse"]
    bearing = [i for i, n in enumerate(names) if n.startswith("bearing_temp_c")]
    assert bearing and np.isfinite(dense_row[bearing]).all()
    finite = np.isfinite(sparse_row)
    assert (np.isfinite(dense_row) == finite).all()
    np.testing.assert_allclose(dense_row[finite], sparse_row[finite], rtol=0.05, atol=0.2)


def test_slices_are_cut_from_the_start_of_the_range_and_never_exceed_max_points(fleet: Fleet):
    # given: a point every second over a range starting off any round number
    node = in_service(fleet)
    start = aligned_start(1) + timedelta(seconds=7, microseconds=250_000)
    end = start + timedelta(seconds=100)
    ingest(
        node.pk,
        [
            {"node": node.pk, "time": (start + timedelta(seconds=i)).isoformat(), "power_kw": i}
            for i in range(100)
        ],
    )

    # when: read as 7 slices of 100/7 s
    rows = point_range_downsampled(node_id=node.pk, start=start, end=end, max_points=7)

    # then: 7 slices, slice k starting at start + k * width and averaging its seconds
    width = (end - start) / 7
    assert [row["time"] for row in rows] == [start + k * width for k in range(7)]
    for k, row in enumerate(rows):
        inside = [i for i in range(100) if k * 100 / 7 <= i < (k + 1) * 100 / 7]
        assert row["power_kw"] == pytest.approx(sum(inside) / len(inside))
