"""Readings under load: what the maintenance scoring compares (levels, vibration trend)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from apps.telemetry.selectors import point_range_downsampled
from apps.telemetry.services import telemetry_ingest
from tests.fixtures.fleet import Fleet
from tests.fixtures.machines import in_service

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("max_points", [1000, 4])  # raw rows, and slices averaged in the DB
def test_under_load_keeps_readings_taken_cutting_only(fleet: Fleet, max_points):
    node = in_service(fleet)
    start = timezone.now() - timedelta(minutes=10)
    readings = [
        {"power_kw": 0.75, "spindle_rpm": 0.0, "vibration_mm_s": 0.15},  # idle
        {"power_kw": 5.2, "spindle_rpm": 8000.0, "vibration_mm_s": 0.9},  # cutting
        {"power_kw": 0.75, "spindle_rpm": 3000.0, "vibration_mm_s": 0.4},  # coasting down
        {"power_kw": 5.0, "spindle_rpm": 8000.0, "vibration_mm_s": 0.8},  # cutting
    ]
    for i, values in enumerate(readings):
        at = start + timedelta(seconds=60 * i)
        telemetry_ingest(
            points=[{"node": node.pk, "time": at.isoformat(), **values}], node_id=node.pk
        )
    end = start + timedelta(minutes=5)
    every = point_range_downsampled(node_id=node.pk, start=start, end=end, max_points=max_points)
    loaded = point_range_downsampled(
        node_id=node.pk, start=start, end=end, max_points=max_points, under_load_kw=1.9
    )
    assert len(every) == 4
    assert [round(r["vibration_mm_s"], 2) for r in loaded] == [0.9, 0.8]


def test_under_load_of_a_machine_without_a_spindle_is_by_power(fleet: Fleet):
    node = in_service(fleet, kind="fdm_printer", processes=["fdm"], materials=["PLA"])
    start = timezone.now() - timedelta(minutes=10)
    for i, power in enumerate([0.018, 0.19, 0.017]):
        at = start + timedelta(seconds=60 * i)
        telemetry_ingest(
            points=[{"node": node.pk, "time": at.isoformat(), "power_kw": power}], node_id=node.pk
        )
    loaded = point_range_downsampled(
        node_id=node.pk, start=start, end=timezone.now(), max_points=100, under_load_kw=0.0875
    )
    assert [r["power_kw"] for r in loaded] == [0.19]
