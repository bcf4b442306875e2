"""Consumption is recorded when a part finishes, through the real path: the node starts and
completes the part (apps.jobs.services), its telemetry was ingested, and the part_finished
signal after commit records kWh, source, cost and carbon."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from apps.energy import conf
from apps.energy.calc import hour_floor
from apps.energy.models import Consumption, EmissionFactor
from apps.energy.services import consumption_reconcile, consumption_record
from apps.jobs.services import work_complete, work_fail
from tests.energy.conftest import submit_and_start
from tests.energy.factories import EnergySourceFactory, HourlyRateFactory
from tests.fixtures.fleet import Fleet

pytestmark = pytest.mark.django_db


def test_telemetry_power_is_integrated_over_the_run(
    fleet: Fleet, printer, ingest, django_capture_on_commit_callbacks
):
    # given a part that has run for an hour, the printer reporting 1.2 kW every 5 minutes
    part = submit_and_start(fleet, ran_for=timedelta(hours=1))
    assert part.started_at is not None
    site = fleet.site
    for hour in {hour_floor(part.started_at), hour_floor(timezone.now())}:
        HourlyRateFactory.create(site=site, hour=hour, price_per_kwh=Decimal("0.30"))
    now = timezone.now()
    times = [part.started_at - timedelta(minutes=2) + timedelta(minutes=5 * i) for i in range(13)]
    ingest(printer, [(t, 1.2) for t in times if t < now])
    # when the node completes it
    with django_capture_on_commit_callbacks(execute=True):
        work_complete(node_id=printer.pk, part_id=part.pk, quality_score=0.95)
    # then its consumption is the power curve's area: 1.2 kW for the hour the points cover
    row = Consumption.objects.get(part=part)
    covered_h = (min(times[-1], now) - part.started_at).total_seconds() / 3600
    assert row.method == Consumption.Method.TELEMETRY
    assert row.kwh == pytest.approx(1.2 * covered_h, rel=1e-3)
    assert row.kwh == pytest.approx(1.2, abs=0.12)
    assert row.coverage is not None and row.coverage >= 0.8
    assert row.job_id == part.job_id and row.node_id == printer.pk and row.site_id == site.pk
    # no sources at the site: the grid, its factor and the stored price
    assert row.source_kind == "grid" and row.source is None
    assert row.reason == "Grid: no other source online."
    assert row.emission_factor == 0.475
    assert row.co2e_kg == pytest.approx(row.kwh * 0.475)
    assert row.price_per_kwh == Decimal("0.30000")
    assert row.cost == (Decimal(str(row.kwh)) * Decimal("0.30")).quantize(Decimal("0.0001"))
    # and it is recorded once
    assert consumption_record(part_id=part.pk) == row
    assert Consumption.objects.filter(part=part).count() == 1


def test_without_telemetry_the_estimate_is_used(
    fleet: Fleet, printer, django_capture_on_commit_callbacks
):
    part = submit_and_start(fleet, ran_for=timedelta(minutes=40))
    estimate = part.estimates["energy_kwh"]
    assert estimate > 0
    with django_capture_on_commit_callbacks(execute=True):
        work_complete(node_id=printer.pk, part_id=part.pk, quality_score=0.9)
    row = Consumption.objects.get(part=part)
    assert row.method == Consumption.Method.ESTIMATE
    assert row.kwh == pytest.approx(estimate)
    assert row.coverage == 0.0
    # no rate stored: the default grid price
    assert row.price_per_kwh == conf.default_grid_price().quantize(Decimal("0.00001"))


def test_sparse_telemetry_falls_back_to_what_the_node_reported(
    fleet: Fleet, printer, ingest, django_capture_on_commit_callbacks
):
    part = submit_and_start(fleet, ran_for=timedelta(hours=1))
    assert part.started_at is not None
    # readings every 2 minutes from minute 10 to 20 cover a sixth of the run: not trusted
    ingest(printer, [(part.started_at + timedelta(minutes=m), 5.0) for m in range(10, 21, 2)])
    with django_capture_on_commit_callbacks(execute=True):
        work_complete(
            node_id=printer.pk, part_id=part.pk, quality_score=0.9, report={"energy_kwh": 0.8}
        )
    row = Consumption.objects.get(part=part)
    assert row.method == Consumption.Method.REPORTED
    assert row.kwh == pytest.approx(0.8)
    assert row.coverage == pytest.approx(1 / 6, abs=0.01)


def test_the_source_is_chosen_and_its_carbon_used(
    fleet: Fleet, printer, django_capture_on_commit_callbacks
):
    # a site battery well above its reserve, a grid connection; at night or by day the
    # printer's small load fits the battery (no renewables at the site)
    battery = EnergySourceFactory.create(
        site=fleet.site, kind="battery", capacity_kw=5, capacity_kwh=20, soc_pct=80
    )
    EnergySourceFactory.create(site=fleet.site, kind="grid", capacity_kw=100)
    EmissionFactor.objects.filter(kind="battery").update(kg_co2e_per_kwh=0.12)
    part = submit_and_start(fleet, ran_for=timedelta(minutes=30))
    with django_capture_on_commit_callbacks(execute=True):
        work_complete(node_id=printer.pk, part_id=part.pk, quality_score=0.9)
    row = Consumption.objects.get(part=part)
    assert row.source_kind == "battery" and row.source == battery
    assert "reserve" in row.reason
    assert row.emission_factor == 0.12  # the admin's factor, not the default
    assert row.co2e_kg == pytest.approx(row.kwh * 0.12)
    # own generation costs the site's own price: none set, so 0
    assert row.cost == Decimal("0")


def test_a_failed_part_records_the_share_of_its_estimate_it_ran(
    fleet: Fleet, printer, django_capture_on_commit_callbacks
):
    part = submit_and_start(fleet)
    duration = part.estimates["duration_h"]
    part.started_at = timezone.now() - timedelta(hours=duration / 2)
    part.save(update_fields=["started_at"])
    with django_capture_on_commit_callbacks(execute=True):
        work_fail(node_id=printer.pk, part_id=part.pk, reason="Warped", machine_fault=False)
    row = Consumption.objects.get(part=part)
    assert row.method == Consumption.Method.ESTIMATE
    assert row.kwh == pytest.approx(part.estimates["energy_kwh"] / 2, rel=0.01)


def test_reconciliation_records_parts_the_signal_missed(fleet: Fleet, printer):
    # given a part completed without its on-commit signal running (a worker was down)
    part = submit_and_start(fleet, ran_for=timedelta(minutes=20))
    work_complete(node_id=printer.pk, part_id=part.pk, quality_score=0.9)
    assert not Consumption.objects.filter(part=part).exists()
    # when the daily reconciliation runs, it is recorded, once
    assert consumption_reconcile() == 1
    assert Consumption.objects.filter(part=part).count() == 1
    assert consumption_reconcile() == 0


def test_a_part_that_never_started_records_nothing(fleet: Fleet, printer):
    from apps.jobs.services import job_submit, parts_schedule
    from tests.energy.conftest import PLA

    job = job_submit(by=fleet.designer, title="Idle", parts=[{**PLA, "name": "x"}])
    parts_schedule()
    assert consumption_record(part_id=job.parts.get().pk) is None
    assert not Consumption.objects.exists()
