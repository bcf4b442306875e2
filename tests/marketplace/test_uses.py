"""Using purchases through the services: a bought template becomes a valid, scheduled job;
a playbook is attached to parts (one per part, fitting material and process); capacity hours
are booked for a job whose parts then run only on the seller's nodes; the job page's panel."""

from __future__ import annotations

import dataclasses
import math
from decimal import Decimal
from typing import Any

import pytest
from django.core.exceptions import PermissionDenied, ValidationError

from apps.core.exceptions import Conflict
from apps.jobs import providers
from apps.jobs.models import Job, Status
from apps.jobs.services import (
    job_cancel,
    job_submit,
    parts_schedule,
    work_complete,
    work_queue,
)
from apps.marketplace.models import Listing, Purchase, PurchaseUse
from apps.marketplace.selectors.uses import capacity_hours_left
from apps.marketplace.services.uses import (
    capacity_book,
    capacity_release,
    playbook_attach,
    playbook_attach_parts,
    playbook_detach,
    purchase_instantiate,
)
from apps.vendors.models import FabricationNode
from apps.vendors.services import node_transition
from tests.fixtures.market import Market, make_listing, paid_purchase
from tests.fixtures.shop import PRINTER, ready_node
from tests.jobs.conftest import start_in_turn
from tests.marketplace.factories import PLAYBOOK_CONTENT, ListingVersionFactory

pytestmark = pytest.mark.django_db

PLA = {"material": "PLA", "process": "fdm", "size_x_mm": 60, "size_y_mm": 40, "size_z_mm": 30}


# --- helpers (also used by the other test modules of this slice) -------------------------------


def submit(market: Market, parts: list[dict[str, Any]] | None = None, **fields: Any) -> Job:
    """A job of Studio by its designer (PLA on the printers unless told otherwise)."""
    return job_submit(
        by=fields.pop("by", market.designer),
        title=fields.pop("title", "Frame"),
        parts=parts or [{**PLA, "name": "arm"}],
        **fields,
    )


def complete(job: Job) -> Job:
    """Schedules the job's parts and has their nodes make them."""
    parts_schedule()
    for part in job.parts.exclude(status__in=[Status.COMPLETED, Status.CANCELLED]):
        assert part.assigned_node_id is not None, part.placement
        start_in_turn(part)
        work_complete(node_id=part.assigned_node_id, part_id=part.pk, quality_score=0.95)
    job.refresh_from_db()
    assert job.status == Status.COMPLETED
    return job


def rival_printer(market: Market, name: str = "Rival-P") -> FabricationNode:
    """An approved, idle printer of the rival vendor (same kind as Forge's)."""
    company = market.rival.organizations.get()  # ("rival" is the vendor user)
    rival = dataclasses.replace(market, vendor=market.rival, forge=company)
    return ready_node(rival, **{**PRINTER, "name": name})


def hours_of(job: Job) -> Decimal:
    total = sum(p.estimates["duration_h"] for p in job.parts.all())
    return Decimal(math.ceil(round(total, 6) * 100)) / 100


# --- templates ---------------------------------------------------------------------------------


def test_a_bought_template_makes_a_valid_job_placed_on_the_shops_printers(market: Market):
    purchase = paid_purchase(market.template, market.designer)
    job = purchase_instantiate(
        by=market.designer, purchase=purchase, values={"scale": 1.5}, priority=7
    )
    assert job.status == Status.VALIDATED
    assert job.organization == market.designer.organizations.get()
    assert job.title == "Drone arm" and job.priority == 7
    assert job.metadata["marketplace"] == {
        "purchase": purchase.pk,
        "listing": market.template.pk,
        "version": 1,
    }
    parts = list(job.parts.all())
    assert {(p.size_x_mm, p.size_y_mm, p.size_z_mm) for p in parts} == {(60, 45, 30)}
    assert sum(p.quantity for p in parts) == 2 and all(p.estimates["duration_h"] for p in parts)
    assert PurchaseUse.objects.get(purchase=purchase).job == job
    # scheduled like any other job: on the shop's printers
    parts_schedule()
    printers = {market.printer_a.pk, market.printer_b.pk}
    for part in job.parts.all():
        assert part.status == Status.SCHEDULED and part.assigned_node_id in printers


def test_buyers_get_the_latest_version(market: Market):
    listing = market.template
    purchase = paid_purchase(listing, market.designer)
    content = {**listing.versions.get().content}
    content["parts"] = [{**content["parts"][0], "name": "Arm v2", "quantity": 1}]
    ListingVersionFactory.create(listing=listing, number=2, content=content)
    job = purchase_instantiate(by=market.designer, purchase=purchase, values={}, title="  My arms ")
    assert job.parts.get().name == "Arm v2"
    assert job.title == "My arms" and job.metadata["marketplace"]["version"] == 2


def test_template_parameters_are_checked(market: Market):
    purchase = paid_purchase(market.template, market.designer)
    with pytest.raises(ValidationError) as too_big:
        purchase_instantiate(by=market.designer, purchase=purchase, values={"scale": 5})
    assert too_big.value.message_dict == {"parameters.scale": ["Between 0.5 and 2."]}
    with pytest.raises(ValidationError) as unknown:
        purchase_instantiate(by=market.designer, purchase=purchase, values={"colour": 1})
    assert "no parameter colour" in unknown.value.message_dict["parameters"][0]
    assert not PurchaseUse.objects.exists() and not Job.objects.exists()


def test_a_vendor_buyer_cannot_create_jobs_and_is_told_who_can(market: Market):
    purchase = paid_purchase(market.template, market.rival)
    with pytest.raises(PermissionDenied, match="does not allow creating jobs: a designer"):
        purchase_instantiate(by=market.rival, purchase=purchase, values={})


def test_only_members_who_may_buy_use_a_usable_purchase_of_the_right_kind(market: Market):
    purchase = paid_purchase(market.template, market.designer)
    with pytest.raises(PermissionDenied, match="Only members of Studio"):
        purchase_instantiate(by=market.designer2, purchase=purchase, values={})
    with pytest.raises(PermissionDenied, match="not use them"):
        purchase_instantiate(by=market.viewer, purchase=purchase, values={})
    # a colleague who may create jobs uses the organization's purchase
    job = purchase_instantiate(by=market.engineer, purchase=purchase, values={})
    assert job.owner == market.engineer

    playbook = paid_purchase(market.playbook, market.designer)
    with pytest.raises(ValidationError, match="is a playbook: you can attach it"):
        purchase_instantiate(by=market.designer, purchase=playbook, values={})

    Purchase.objects.filter(pk=purchase.pk).update(status=Purchase.Status.REFUNDED)
    purchase.refresh_from_db()
    with pytest.raises(Conflict, match="refunded: only a paid purchase"):
        purchase_instantiate(by=market.designer, purchase=purchase, values={})
    # partly refunded still works
    Purchase.objects.filter(pk=purchase.pk).update(status=Purchase.Status.PARTIALLY_REFUNDED)
    purchase.refresh_from_db()
    assert purchase_instantiate(by=market.designer, purchase=purchase, values={})


# --- playbooks ---------------------------------------------------------------------------------


def test_a_playbook_is_attached_once_per_part_and_can_be_swapped(market: Market):
    purchase = paid_purchase(market.playbook, market.designer)
    job = submit(market)
    part = job.parts.get()
    use = playbook_attach(by=market.designer, purchase=purchase, part=part)
    assert (use.job, use.part, use.hours) == (job, part, Decimal("0.00"))

    other_listing = make_listing(
        market.forge, market.vendor, kind=Listing.Kind.PLAYBOOK, title="Fast PLA"
    )
    other = paid_purchase(other_listing, market.designer)
    with pytest.raises(Conflict, match="already follows the playbook “PLA recipe”; detach"):
        playbook_attach(by=market.designer, purchase=other, part=part)
    with pytest.raises(Conflict, match="already follows"):
        playbook_attach(by=market.designer, purchase=purchase, part=part)

    with pytest.raises(PermissionDenied):
        playbook_detach(by=market.designer2, use=use)
    playbook_detach(by=market.engineer, use=use)
    assert playbook_attach(by=market.designer, purchase=other, part=part).part == part


def test_a_playbook_refuses_parts_it_is_not_written_for(market: Market):
    purchase = paid_purchase(market.playbook, market.designer)
    job = submit(
        market,
        [
            {**PLA, "name": "petg-arm", "material": "PETG"},
            {**PLA, "name": "base", "material": "steel", "process": "milling"},
        ],
    )
    petg, base = job.parts.order_by("id")
    with pytest.raises(
        ValidationError, match="Part petg-arm is PETG; “PLA recipe” is written for pla"
    ):
        playbook_attach(by=market.designer, purchase=purchase, part=petg)
    with pytest.raises(ValidationError, match="made by milling; “PLA recipe” is written for fdm"):
        playbook_attach(by=market.designer, purchase=purchase, part=base)
    # a playbook that names no materials or processes fits any part
    loose = make_listing(
        market.forge,
        market.vendor,
        kind=Listing.Kind.PLAYBOOK,
        content={**PLAYBOOK_CONTENT, "materials": [], "processes": []},
    )
    assert playbook_attach(
        by=market.designer, purchase=paid_purchase(loose, market.designer), part=base
    )


def test_a_playbook_only_goes_on_open_parts_of_the_buyers_organization(market: Market):
    purchase = paid_purchase(market.playbook, market.designer)
    theirs = submit(market, by=market.designer2).parts.get()
    with pytest.raises(ValidationError, match=f"Part {theirs.pk} is not in a job of Studio"):
        playbook_attach(by=market.designer, purchase=purchase, part=theirs)
    job = submit(market)
    job_cancel(job=job, by=market.designer, reason="changed my mind")
    with pytest.raises(ValidationError, match="is cancelled: a playbook is for parts still"):
        playbook_attach(by=market.designer, purchase=purchase, part=job.parts.get())
    # a finished part keeps its playbook on record
    done = submit(market)
    use = playbook_attach(by=market.designer, purchase=purchase, part=done.parts.get())
    complete(done)
    with pytest.raises(Conflict, match="stays on record"):
        playbook_detach(by=market.designer, use=use)


def test_attaching_to_several_parts_keeps_the_good_and_reports_the_bad_by_index(market: Market):
    purchase = paid_purchase(market.playbook, market.designer)
    job = submit(
        market,
        [
            {**PLA, "name": "arm-1"},
            {**PLA, "name": "petg", "material": "PETG"},
            {**PLA, "name": "arm-2"},
        ],
    )
    arm1, petg, arm2 = job.parts.order_by("id")
    attached, errors = playbook_attach_parts(
        by=market.designer, purchase=purchase, parts=[arm1, petg, 999999, arm2.pk, arm1]
    )
    assert [use.part for use in attached] == [arm1, arm2]
    assert set(errors) == {1, 2, 4}
    assert "written for pla" in errors[1][0]
    assert errors[2] == ["No part 999999 in a job of Studio."]
    assert errors[4] == ["Part arm-1 is listed twice."]
    # all bad: nothing stored, every reason given
    attached, errors = playbook_attach_parts(
        by=market.designer, purchase=purchase, parts=[arm1, petg]
    )
    assert attached == [] and "already follows" in errors[0][0]
    assert PurchaseUse.objects.count() == 2
    with pytest.raises(ValidationError, match="Choose at least one part"):
        playbook_attach_parts(by=market.designer, purchase=purchase, parts=[])


# --- capacity ----------------------------------------------------------------------------------


def test_a_booked_job_runs_only_on_the_sellers_printers(market: Market):
    # given a rival printer, idle and approved, of the same kind as Forge's
    rival = rival_printer(market)
    forge_printers = {market.printer_a.pk, market.printer_b.pk}
    job = submit(market, [{**PLA, "name": f"arm-{i}"} for i in range(3)])
    parts_schedule()
    placed = set(job.parts.values_list("assigned_node_id", flat=True))
    assert rival.pk in placed  # unbooked, the swarm spreads over every printer
    purchase = paid_purchase(market.capacity, market.designer, quantity=50)

    # when the job is booked on Forge's capacity
    use = capacity_book(by=market.designer, purchase=purchase, job=job)

    # then the part on the rival's printer goes back to scheduling, and lands on Forge's
    assert use.hours == hours_of(job) and use.part is None
    moved = job.parts.get(assigned_node__isnull=True)
    assert moved.status == Status.VALIDATED
    change = moved.history.last()
    assert change is not None and "booked on Forge's capacity" in change.reason
    parts_schedule()
    assert set(job.parts.values_list("assigned_node_id", flat=True)) <= forge_printers
    assert set(job.parts.values_list("status", flat=True)) == {Status.SCHEDULED}
    # other jobs still use every printer
    free = submit(market, [{**PLA, "name": f"clip-{i}"} for i in range(3)])
    parts_schedule()
    assert rival.pk in set(free.parts.values_list("assigned_node_id", flat=True))
    assert capacity_hours_left(purchase=purchase) == Decimal(50) - use.hours


def test_booking_needs_enough_hours_and_says_both_numbers(market: Market):
    job = submit(market)
    needed = hours_of(job)
    assert needed > 1
    small = paid_purchase(market.capacity, market.designer, quantity=1)
    with pytest.raises(ValidationError) as refused:
        capacity_book(by=market.designer, purchase=small, job=job)
    assert refused.value.message_dict["job"] == [
        f"Job {job.pk} needs {needed} h; this purchase has 1.00 h of 1 h left."
    ]
    # hours already booked count; those of cancelled jobs come back
    enough = int(needed) + 1
    purchase = paid_purchase(market.capacity, market.designer, quantity=enough)
    capacity_book(by=market.designer, purchase=purchase, job=job)
    second = submit(market)
    with pytest.raises(ValidationError, match=f"has {enough - needed} h of {enough} h left"):
        capacity_book(by=market.designer, purchase=purchase, job=second)
    job_cancel(job=job, by=market.designer, reason="not needed")
    assert capacity_hours_left(purchase=purchase) == enough
    assert capacity_book(by=market.designer, purchase=purchase, job=second).hours == needed


def test_booking_refusals(market: Market):
    purchase = paid_purchase(market.capacity, market.designer, quantity=100)
    theirs = submit(market, by=market.designer2)
    with pytest.raises(ValidationError, match=f"Job {theirs.pk} is not a job of Studio"):
        capacity_book(by=market.designer, purchase=purchase, job=theirs)
    with pytest.raises(PermissionDenied, match="Only members of Studio"):
        capacity_book(by=market.designer2, purchase=purchase, job=theirs)

    milled = submit(market, [{**PLA, "name": "base", "material": "steel", "process": "milling"}])
    with pytest.raises(ValidationError, match="Forge's fdm printer nodes cannot make: base"):
        capacity_book(by=market.designer, purchase=purchase, job=milled)

    job = submit(market)
    capacity_book(by=market.designer, purchase=purchase, job=job)
    with pytest.raises(Conflict, match="already booked on “FDM hours”"):
        capacity_book(by=market.designer, purchase=purchase, job=job)

    started = submit(market)
    parts_schedule()
    start_in_turn(started.parts.get())
    with pytest.raises(Conflict, match="parts already started \\(arm\\)"):
        capacity_book(by=market.designer, purchase=purchase, job=started)

    done = complete(submit(market))
    with pytest.raises(ValidationError, match="is completed: nothing to book"):
        capacity_book(by=market.designer, purchase=purchase, job=done)


def test_releasing_a_booking_gives_the_hours_back_and_lifts_the_limit(market: Market):
    rival = rival_printer(market)
    purchase = paid_purchase(market.capacity, market.designer, quantity=100)
    job = submit(market, [{**PLA, "name": f"arm-{i}"} for i in range(3)])
    use = capacity_book(by=market.designer, purchase=purchase, job=job)
    with pytest.raises(PermissionDenied):
        capacity_release(by=market.viewer, use=use)
    capacity_release(by=market.designer, use=use)
    assert capacity_hours_left(purchase=purchase) == 100
    parts_schedule()
    assert rival.pk in set(job.parts.values_list("assigned_node_id", flat=True))

    # once a part started the booking stays
    booked = submit(market)
    use = capacity_book(by=market.designer, purchase=purchase, job=booked)
    parts_schedule()
    start_in_turn(booked.parts.get())
    with pytest.raises(Conflict, match="has started on the booked capacity"):
        capacity_release(by=market.designer, use=use)


def test_booked_parts_wait_while_the_sellers_printers_are_down(market: Market):
    rival_printer(market)
    purchase = paid_purchase(market.capacity, market.designer, quantity=100)
    job = submit(market)
    capacity_book(by=market.designer, purchase=purchase, job=job)
    for printer in ("printer_a", "printer_b"):
        node_transition(
            node=market.node(printer),
            to=FabricationNode.Status.MAINTENANCE,
            by=market.vendor,
            reason="service",
        )
    parts_schedule()
    part = job.parts.get()
    assert part.status == Status.VALIDATED and part.assigned_node is None
    assert "limited to" in part.placement["reason"]
    # a wholly refunded booking no longer limits the job
    Purchase.objects.filter(pk=purchase.pk).update(status=Purchase.Status.REFUNDED)
    parts_schedule()
    part.refresh_from_db()
    assert part.status == Status.SCHEDULED


# --- the job page's panel ----------------------------------------------------------------------


def test_the_job_page_shows_what_the_marketplace_supplied(market: Market, signed_in):
    template = paid_purchase(market.template, market.designer)
    job = purchase_instantiate(by=market.designer, purchase=template, values={})
    playbook = paid_purchase(market.playbook, market.designer)
    part = job.parts.first()
    assert part is not None
    playbook_attach(by=market.designer, purchase=playbook, part=part)
    capacity = paid_purchase(market.capacity, market.designer, quantity=100)
    use = capacity_book(by=market.designer, purchase=capacity, job=job)

    page = signed_in(market.designer).get(f"/jobs/{job.pk}/")
    assert page.status_code == 200
    html = page.content.decode()
    assert "From the marketplace" in html
    assert "Made from the template <strong>Drone arm</strong> by Forge, version 1." in html
    assert f"“FDM hours”, {use.hours} h booked" in html
    assert "follows “PLA recipe” v1 · 2 steps" in html
    assert "Dry the filament" in html and "<td>Nozzle temperature (°C)</td><td>210" in html
    assert "No stringing" in html

    plain = submit(market)
    assert (
        "From the marketplace"
        not in signed_in(market.designer).get(f"/jobs/{plain.pk}/").content.decode()
    )


def test_a_node_agent_is_told_which_playbook_a_part_follows(market: Market):
    purchase = paid_purchase(market.playbook, market.designer)
    job = submit(market, [{**PLA, "name": "arm"}, {**PLA, "name": "clip"}])
    arm, clip = job.parts.order_by("id")
    playbook_attach(by=market.designer, purchase=purchase, part=arm)
    parts_schedule()
    queued = [
        p for node in (market.printer_a, market.printer_b) for p in work_queue(node_id=node.pk)
    ]
    assert {p.pk for p in queued} == {arm.pk, clip.pk}
    details = providers.part_work_details(queued)
    assert set(details) == {arm.pk}
    playbook = details[arm.pk]["playbook"]
    assert playbook["title"] == "PLA recipe" and playbook["version"] == 1
    assert playbook["steps"][1]["settings"]["nozzle_c"] == 210
