from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from types import SimpleNamespace

import pytest
from django.test import override_settings

from apps.jobs.estimates import PartSpec, job_estimate, lot_sizes, part_feasibility

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)


def node(pk: int, **fields):
    base = {
        "kind": "fdm_printer",
        "processes": ["fdm"],
        "materials": ["PLA"],
        "build_x_mm": 250.0,
        "build_y_mm": 210.0,
        "build_z_mm": 220.0,
        "rated_power_kw": 0.35,
    }
    return SimpleNamespace(pk=pk, **{**base, **fields})


def spec(**fields) -> PartSpec:
    base = {"name": "bracket", "material": "PLA", "process": "fdm", "quantity": 1}
    return PartSpec(**{**base, "size_mm": (100.0, 50.0, 20.0), **fields})


def test_feasibility_names_the_first_missing_capability():
    nodes = [node(1), node(2, processes=["milling"], materials=["steel"])]
    assert part_feasibility(spec(), nodes).candidates == [1]
    assert "process 'sls'" in part_feasibility(spec(process="sls"), nodes).problem
    assert "works 'ABS'" in part_feasibility(spec(material="ABS"), nodes).problem
    too_big = part_feasibility(spec(size_mm=(300.0, 50.0, 20.0)), nodes)
    assert "fits 300 x 50 x 20 mm" in too_big.problem
    # a part longer than x but within the largest axis fits once rotated
    assert part_feasibility(spec(size_mm=(20.0, 221.0, 221.0)), [node(3)]).candidates == []
    assert part_feasibility(spec(size_mm=(205.0, 245.0, 20.0)), [node(3)]).candidates == [3]


@override_settings(JOBS_ENERGY_PRICE_PER_KWH=0.2, JOBS_PLATFORM_FEE_RATE=0.1)
def test_estimate_scales_with_geometry_and_adds_up():
    small = job_estimate([spec(volume_cm3=10.0)], [node(1)], now=NOW)
    large = job_estimate([spec(volume_cm3=100.0)], [node(1)], now=NOW)
    assert small["feasible"] and large["feasible"]
    assert large["duration_h"] > small["duration_h"]
    assert large["material_g"] == pytest.approx(small["material_g"] * 10, abs=0.1)
    cost = {k: Decimal(v) for k, v in large["cost"].items() if k != "currency"}
    subtotal = cost["material"] + cost["energy"] + cost["machine_time"]
    assert cost["platform_fee"] == (subtotal * Decimal("0.1")).quantize(Decimal("0.01"))
    assert cost["total"] == subtotal + cost["platform_fee"]
    # PLA at 1.24 g/cm3: 100 cm3 part, 60% deposited, 5% waste
    assert large["material_g"] == pytest.approx(100 * 0.6 * 1.05 * 1.24, rel=1e-3)


def test_units_spread_over_candidates_and_parts_run_in_parallel():
    one = job_estimate([spec(quantity=4, volume_cm3=20.0)], [node(1)], now=NOW)
    two = job_estimate([spec(quantity=4, volume_cm3=20.0)], [node(1), node(2)], now=NOW)
    assert two["wall_time_h"] == pytest.approx(one["wall_time_h"] / 2)
    assert two["duration_h"] == pytest.approx(one["duration_h"])  # same machine hours
    pair = job_estimate([spec(volume_cm3=20.0), spec(volume_cm3=40.0)], [node(1)], now=NOW)
    assert pair["wall_time_h"] == max(p["wall_time_h"] for p in pair["parts"])


def test_infeasible_parts_are_reported_by_index():
    result = job_estimate([spec(), spec(name="gear", process="sls")], [node(1)], now=NOW)
    assert not result["feasible"]
    assert list(result["problems"]) == ["parts[1]"]
    assert "gear: No approved node offers the process 'sls'" in result["problems"]["parts[1]"][0]
    assert result["earliest_completion"] is None


def test_long_parts_are_split_into_lots_of_nearly_equal_size(settings):
    settings.JOBS_SPLIT_MIN_HOURS = 2
    assert lot_sizes(10, 3, duration_h=30) == [4, 3, 3]
    assert lot_sizes(3, 5, duration_h=30) == [1, 1, 1]  # no more lots than units
    assert lot_sizes(100, 50, duration_h=300) == [13, 13, 13, 13, 12, 12, 12, 12]  # MAX_LOTS
    assert lot_sizes(10, 3, duration_h=1.5) == [10]  # short: one run saves set-ups
    assert lot_sizes(10, 1, duration_h=30) == [10]  # one node: nothing to spread over
    estimate = job_estimate([spec(quantity=10, volume_cm3=20.0)], [node(1), node(2)], now=NOW)
    part = estimate["parts"][0]
    assert part["lots"] == [5, 5]
    assert part["wall_time_h"] == pytest.approx(part["hours_per_unit"] * 5)
