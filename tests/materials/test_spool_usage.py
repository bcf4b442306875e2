"""What printed parts take off the spool loaded on their printer: the part's use (the node's
report, else the estimate; the printed share of a failed part), recorded on the part's usage,
never below zero, and the vendor told once when a spool falls to the low mark."""

from __future__ import annotations

import pytest

from apps.core.models import Notification
from apps.jobs.models import Status
from apps.materials.models import MaterialUsage, Spool
from apps.materials.services import usage_record
from apps.notify.models import Event, EventKind
from tests.fixtures.fleet import Fleet
from tests.materials.conftest import finished_part, recorded
from tests.materials.factories import SpoolFactory


def loaded_spool(fleet: Fleet, node, material, grams: float, colour: str = "#e11d48") -> Spool:
    return SpoolFactory.create(node=node, material=material, colour_hex=colour, remaining_g=grams)


@pytest.mark.django_db
def test_a_finished_part_takes_its_grams_off_the_loaded_spool(fleet: Fleet, catalog, printer):
    spool = loaded_spool(fleet, printer, catalog["pla"], 500)
    shelf = SpoolFactory.create(vendor=fleet.forge, material=catalog["pla"], remaining_g=700)
    part = finished_part(fleet, printer, material_g=120.5)
    usage = recorded(part.pk)
    spool.refresh_from_db()
    shelf.refresh_from_db()
    assert spool.remaining_g == pytest.approx(379.5)
    assert shelf.remaining_g == 700  # only the loaded one
    assert (usage.spool, usage.spool_taken_g, usage.spool_note) == (
        spool,
        120.5,
        "taken from the spool",
    )
    # once per part: a repeated call (the daily reconciliation, a retried receiver) takes nothing
    usage_record(part_id=part.pk)
    spool.refresh_from_db()
    assert spool.remaining_g == pytest.approx(379.5)


@pytest.mark.django_db
def test_what_the_printer_reported_counts_over_the_estimate(fleet: Fleet, catalog, printer):
    spool = loaded_spool(fleet, printer, catalog["pla"], 500)
    part = finished_part(fleet, printer, material_g=120, reported={"material_used_g": 97.25})
    usage_record(part_id=part.pk)
    spool.refresh_from_db()
    assert spool.remaining_g == pytest.approx(402.75)


@pytest.mark.django_db
def test_a_failed_part_takes_the_share_it_printed(fleet: Fleet, catalog, printer):
    spool = loaded_spool(fleet, printer, catalog["pla"], 500)
    part = finished_part(fleet, printer, material_g=200, status=Status.FAILED, progress_pct=25.0)
    usage_record(part_id=part.pk)
    spool.refresh_from_db()
    assert spool.remaining_g == pytest.approx(450)


@pytest.mark.django_db
def test_a_spool_never_goes_below_zero_and_the_usage_says_what_was_short(
    fleet: Fleet, catalog, printer
):
    spool = loaded_spool(fleet, printer, catalog["pla"], 40)
    part = finished_part(fleet, printer, material_g=65)
    usage = recorded(part.pk)
    spool.refresh_from_db()
    assert spool.remaining_g == 0
    assert usage.spool_taken_g == 40
    assert usage.spool_note == "the spool had only 40 g of the 65 g"


@pytest.mark.django_db
def test_a_spool_of_another_material_is_left_alone_with_the_reason(fleet: Fleet, catalog, printer):
    spool = loaded_spool(fleet, printer, catalog["petg"], 500)
    part = finished_part(fleet, printer, material_g=50)
    usage = recorded(part.pk)
    spool.refresh_from_db()
    assert spool.remaining_g == 500
    assert usage.spool == spool and usage.spool_taken_g == 0
    assert usage.spool_note == "the loaded spool is PETG, the part PLA"


@pytest.mark.django_db
def test_a_printer_without_a_spool_says_so(fleet: Fleet, catalog, printer):
    usage = recorded(finished_part(fleet, printer, material_g=50).pk)
    assert usage.spool is None and usage.spool_note == "no spool is loaded on the node"


@pytest.mark.django_db
def test_a_spool_falling_to_the_low_mark_tells_the_vendor_once(
    fleet: Fleet, catalog, printer, settings, django_capture_on_commit_callbacks
):
    settings.MATERIALS_SPOOL_LOW_G = 100
    spool = loaded_spool(fleet, printer, catalog["pla"], 180)
    # a print that leaves it above the mark says nothing
    usage_record(part_id=finished_part(fleet, printer, material_g=30).pk)
    assert not Notification.objects.filter(title__contains="running low").exists()
    # the print that takes it to the mark tells the vendor's people, through the alert channels
    with django_capture_on_commit_callbacks(execute=True):
        usage_record(part_id=finished_part(fleet, printer, material_g=60).pk)
    spool.refresh_from_db()
    assert spool.remaining_g == pytest.approx(90)
    told = Notification.objects.filter(title__contains="running low")
    assert [(n.user, n.title) for n in told] == [
        (fleet.vendor, f"Spool PLA #e11d48 on {printer.name} is running low")
    ]
    assert told[0].link == "/materials/spools/" and told[0].body.startswith("90 g left")
    event = Event.objects.get(kind=EventKind.SPOOL_LOW)
    assert list(event.organizations.all()) == [fleet.forge]
    # the next print below the mark does not repeat it
    usage_record(part_id=finished_part(fleet, printer, material_g=20).pk)
    assert told.count() == 1 and Event.objects.filter(kind=EventKind.SPOOL_LOW).count() == 1
    assert MaterialUsage.objects.filter(spool=spool).count() == 3
