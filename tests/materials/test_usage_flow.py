"""Usage recorded as parts really finish (the node's work API and services, the signal after
commit), corrected by the node's report; and stock set by `material_remaining` telemetry
through the real ingest path."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.utils import timezone

from apps.jobs.services import job_submit, parts_schedule, work_complete, work_fail, work_start
from apps.materials.models import MaterialUsage, StockMovement
from apps.materials.services import inventory_update
from apps.telemetry.services import telemetry_ingest
from apps.vendors.services import device_credential_issue
from tests.fixtures.fleet import Fleet
from tests.materials.conftest import PLA_PART, stock_of

pytestmark = pytest.mark.django_db
D = Decimal


def running_part(fleet: Fleet, printer, name="arm"):
    job = job_submit(by=fleet.designer, title="Frame", parts=[{**PLA_PART, "name": name}])
    parts_schedule()
    part = job.parts.get()
    assert part.assigned_node_id == printer.pk
    return work_start(node_id=printer.pk, part_id=part.pk)


def test_a_completed_part_over_the_work_api_records_the_reported_usage(
    fleet: Fleet, printer, catalog, api, django_capture_on_commit_callbacks
):
    stock = stock_of(fleet, printer, catalog["pla"], "1")
    part = running_part(fleet, printer)
    _, token = device_credential_issue(node=printer, by=fleet.vendor)
    api.credentials(HTTP_AUTHORIZATION=f"Device {token}")

    with django_capture_on_commit_callbacks(execute=True):
        done = api.post(
            f"/api/v1/work/parts/{part.pk}/complete/",
            {"quality_score": 0.9, "report": {"material_used_g": 30, "waste_g": 4}},
            format="json",
        )

    assert done.status_code == 200, done.json()
    usage = MaterialUsage.objects.get(part=part)
    assert usage.source == "reported" and (usage.used_g, usage.waste_g) == (30.0, 4.0)
    assert usage.node_id == printer.pk and usage.job_id == part.job_id
    stock.refresh_from_db()
    assert stock.quantity == D("0.970")
    assert {m.kind: m.delta for m in stock.movements.exclude(kind="adjustment")} == {
        "usage": D("-0.026"),
        "waste": D("-0.004"),
    }


def test_without_a_report_the_estimate_counts_and_only_used_corrects_it(
    fleet: Fleet, printer, catalog, django_capture_on_commit_callbacks
):
    stock_of(fleet, printer, catalog["pla"], "1")
    part = running_part(fleet, printer)
    estimate = part.estimates["material_g"]
    with django_capture_on_commit_callbacks(execute=True):
        work_complete(node_id=printer.pk, part_id=part.pk, quality_score=1.0)
    usage = MaterialUsage.objects.get(part=part)
    assert usage.source == "estimate" and usage.used_g == pytest.approx(estimate, abs=1e-3)
    assert usage.waste_g == pytest.approx(estimate * (1 - 1 / 1.05), abs=1e-3)

    # a report of the total only: the waste is the process's share of the reported total
    other = running_part(fleet, printer, name="leg")
    with django_capture_on_commit_callbacks(execute=True):
        work_complete(
            node_id=printer.pk,
            part_id=other.pk,
            quality_score=1.0,
            report={"material_used_g": 21.0},
        )
    corrected = MaterialUsage.objects.get(part=other)
    assert corrected.source == "reported" and corrected.used_g == 21.0
    assert corrected.waste_g == pytest.approx(1.0, abs=1e-3)  # 21 x (1 - 1/1.05)


def test_a_failed_part_is_waste_up_to_its_progress(
    fleet: Fleet, printer, catalog, django_capture_on_commit_callbacks
):
    stock = stock_of(fleet, printer, catalog["pla"], "1")
    part = running_part(fleet, printer)
    part.progress_pct = 50.0
    part.save(update_fields=["progress_pct"])
    estimate = part.estimates["material_g"]
    with django_capture_on_commit_callbacks(execute=True):
        work_fail(node_id=printer.pk, part_id=part.pk, reason="warped", machine_fault=False)
    usage = MaterialUsage.objects.get(part=part)
    assert usage.outcome == "failed"
    assert usage.used_g == usage.waste_g == pytest.approx(estimate / 2, abs=1e-3)
    stock.refresh_from_db()
    assert stock.movements.filter(kind="waste").count() == 1
    assert not stock.movements.filter(kind="usage").exists()


def test_material_remaining_telemetry_sets_the_loaded_stock(
    fleet: Fleet, printer, catalog, send, django_capture_on_commit_callbacks
):
    pla = stock_of(fleet, printer, catalog["pla"], "1", loaded=True, reorder_point=D("0.5"))
    petg = stock_of(fleet, printer, catalog["petg"], "2")

    send(printer, 0, temperature_c=200, material_remaining=750.0)
    pla.refresh_from_db()
    assert pla.quantity == D("0.750") and pla.telemetry_at is not None
    move = pla.movements.get(kind=StockMovement.Kind.TELEMETRY)
    assert move.delta == D("-0.250") and "material_remaining 750 g" in move.note
    # the same reading again writes nothing; a point without the signal neither
    send(printer, 5, material_remaining=750.0)
    send(printer, 6, temperature_c=201)
    assert pla.movements.filter(kind="telemetry").count() == 1
    # an older reading that arrives late does not rewind the stock
    send(printer, -60, material_remaining=900.0)
    pla.refresh_from_db()
    assert pla.quantity == D("0.750")
    # falling to the reorder point drafts the order as usage would
    send(printer, 10, material_remaining=480.0)
    pla.refresh_from_db()
    assert pla.quantity == D("0.480") and pla.purchase_orders.count() == 1
    petg.refresh_from_db()
    assert petg.quantity == D("2.000")  # not the loaded one

    # loading another material moves the telemetry to it
    inventory_update(by=fleet.vendor, inventory=petg, loaded=True)
    pla.refresh_from_db()
    assert not pla.loaded
    send(printer, 20, material_remaining=1900.0)
    petg.refresh_from_db()
    assert petg.quantity == D("1.900")


def test_usage_already_counted_by_telemetry_is_not_taken_twice(
    fleet: Fleet, printer, catalog, django_capture_on_commit_callbacks
):
    stock = stock_of(fleet, printer, catalog["pla"], "1", loaded=True)
    part = running_part(fleet, printer)
    with django_capture_on_commit_callbacks(execute=True):
        telemetry_ingest(
            points=[
                {
                    "node": printer.pk,
                    "time": timezone.now().isoformat(),  # during the part
                    "material_remaining": 980.0,
                }
            ],
            node_id=printer.pk,
        )
    with django_capture_on_commit_callbacks(execute=True):
        work_complete(node_id=printer.pk, part_id=part.pk, quality_score=1.0)
    usage = MaterialUsage.objects.get(part=part)
    assert "telemetry" in usage.stock_note and usage.inventory == stock
    stock.refresh_from_db()
    assert stock.quantity == D("0.980")
