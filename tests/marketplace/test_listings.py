"""Listing services and selectors: create, version, publish and retire each kind with precise
errors; who may see and change what; browse filters and sorts; images checked by opening
them; the seller's service figures from real finished and failed parts."""

from __future__ import annotations

import io
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.files.uploadedfile import SimpleUploadedFile
from django.http import Http404
from django.utils import timezone
from PIL import Image

from apps.core.models import AuditLog
from apps.jobs.models import Job, Part
from apps.jobs.services import (
    job_submit,
    parts_schedule,
    template_create,
    work_complete,
    work_fail,
    work_start,
)
from apps.marketplace.models import Listing, ListingImage
from apps.marketplace.selectors.listings import (
    listing_browse,
    listing_get_for_user,
    listing_manage_get,
    listing_manageable,
    listing_stats,
    seller_sla,
)
from apps.marketplace.services.listing_images import (
    listing_image_add,
    listing_image_delete,
    listing_image_move,
)
from apps.marketplace.services.listings import (
    listing_create,
    listing_new_version,
    listing_publish,
    listing_retire,
    listing_update,
)
from apps.marketplace.services.uses import purchase_instantiate
from apps.users.models import Organization
from apps.vendors.models import FabricationNode
from tests.fixtures.fleet import extended
from tests.fixtures.market import Market, make_listing, paid_purchase
from tests.marketplace.factories import PART, PLAYBOOK_CONTENT, PurchaseUseFactory, ReviewFactory

pytestmark = pytest.mark.django_db
D = Decimal

TEMPLATE_PARTS = [
    {**PART, "name": "Arm", "material": "PLA"},
    {**PART, "name": "Hub", "material": "PETG"},
]
PARAMETERS = {"scale": {"min": 0.5, "max": 2, "default": 1}, "quantity": {"min": 1, "max": 20}}


def job_template(user: Any, name: str = "Drone frame") -> Any:
    return template_create(by=user, name=name, parts=TEMPLATE_PARTS, parameters=PARAMETERS)


def details(exc: pytest.ExceptionInfo[ValidationError]) -> dict[str, list[str]]:
    return exc.value.message_dict


def png(width: int = 32, height: int = 20, name: str = "photo.png", fmt: str = "PNG") -> Any:
    buffer = io.BytesIO()
    Image.new("RGB", (width, height), (200, 40, 40)).save(buffer, format=fmt)
    return SimpleUploadedFile(name, buffer.getvalue(), content_type=f"image/{fmt.lower()}")


@pytest.fixture
def media(settings: Any, tmp_path: Any) -> Any:
    settings.MEDIA_ROOT = tmp_path
    return tmp_path


# --- Create, per kind -----------------------------------------------------------------------


def test_a_template_listing_snapshots_the_job_template_without_cad_files(market: Market):
    designer = market.designer
    template = job_template(designer)
    template.parts[0]["cad_file"] = 99  # a seller's upload never goes to buyers
    template.save(update_fields=["parts"])

    listing = listing_create(
        by=designer,
        kind="template",
        title="  Drone frame kit ",
        price="19.90",
        template=template.pk,
        tags=[" Drone ", "drone", "FPV"],
    )

    assert listing.status == "draft" and listing.seller.name == "Studio"
    assert listing.title == "Drone frame kit" and listing.price == D("19.90")
    assert listing.currency == "USD" and listing.licence == "organization"
    version = listing.versions.get()
    assert version.number == 1
    assert version.content["parameters"] == template.parameters
    assert [p["name"] for p in version.content["parts"]] == ["Arm", "Hub"]
    assert all("cad_file" not in p for p in version.content["parts"])
    facets = {(f.facet, f.value) for f in listing.facets.all()}
    assert facets == {
        ("tag", "drone"),
        ("tag", "fpv"),
        ("material", "pla"),
        ("material", "petg"),
        ("process", "fdm"),
    }
    listing = listing_publish(by=designer, listing=listing)
    assert listing.status == "published" and listing.published_at is not None


def test_a_template_must_belong_to_the_selling_organization(market: Market):
    theirs = job_template(market.designer)
    with pytest.raises(ValidationError) as exc:
        listing_create(by=market.designer2, kind="template", title="Copy", price=5, template=theirs)
    assert details(exc) == {"template": ["Choose a job template of Other Studio."]}
    with pytest.raises(ValidationError) as exc:
        listing_create(by=market.designer, kind="template", title="None", price=5)
    assert details(exc) == {
        "template": [
            "Choose the job template to sell, or give its parts and parameters as content."
        ]
    }


def test_a_vendor_lists_a_template_from_parts_typed_for_it_and_a_buyer_makes_a_job(market: Market):
    """Vendors have no job templates of their own (no job_create): they give the parts and
    parameters directly, checked as a job template's would be."""
    vendor = market.vendor
    content = {"parameters": PARAMETERS, "parts": TEMPLATE_PARTS}
    listing = listing_create(
        by=vendor, kind="template", title="Bracket set", price="9.00", content=content
    )
    assert listing.template is None and listing.seller == market.forge
    stored = listing.versions.get().content
    assert stored["parameters"] == {
        "scale": {"min": 0.5, "max": 2.0, "default": 1.0},
        "quantity": {"min": 1.0, "max": 20.0, "default": 1.0},
    }
    assert [p["name"] for p in stored["parts"]] == ["Arm", "Hub"]
    assert all("volume_cm3" not in p for p in stored["parts"])  # only what a job part takes
    assert set(listing.facets.values_list("facet", "value")) == {
        ("material", "pla"),
        ("material", "petg"),
        ("process", "fdm"),
    }
    listing = listing_publish(by=vendor, listing=listing)
    purchase = paid_purchase(listing, market.designer)
    job = purchase_instantiate(by=market.designer, purchase=purchase, values={"quantity": 3})
    assert job.status == "validated" and job.organization == market.designer.organizations.get()
    made: dict[str, int] = {}
    for part in job.parts.all():  # a part may be split into lots
        made[part.name] = made.get(part.name, 0) + part.quantity
    assert made == {"Arm": 6, "Hub": 6}


def test_typed_template_content_is_checked_as_a_job_template_would_be(market: Market):
    vendor = market.vendor
    bad_part = {**PART, "complexity": 40}
    with pytest.raises(ValidationError) as exc:
        listing_create(
            by=vendor,
            kind="template",
            title="Bad",
            price=5,
            content={"parameters": PARAMETERS, "parts": [PART, bad_part]},
        )
    errors = details(exc)
    assert list(errors) == ["parts[1]"] and "complexity" in errors["parts[1]"][0]
    with pytest.raises(ValidationError) as exc:
        listing_create(
            by=vendor,
            kind="template",
            title="Huge",
            price=5,
            content={
                "parameters": {"scale": {"min": 1, "max": 500, "default": 1}},
                "parts": [PART],
            },
        )
    assert details(exc) == {"parameters": ["scale: need 0.01 <= min <= default <= max <= 100.0."]}
    with pytest.raises(ValidationError) as exc:
        listing_create(
            by=vendor,
            kind="template",
            title="Nameless",
            price=5,
            content={"parts": [{**PART, "name": ""}]},
        )
    assert details(exc) == {"parts[0].name": ["Required."]}
    assert not Listing.objects.filter(title__in=["Bad", "Huge", "Nameless"]).exists()


def test_typed_template_content_must_stay_makeable_at_its_largest_scale_and_quantity(
    market: Market,
):
    """A listing may not offer a range a buyer's job could not hold."""
    many = {**PART, "quantity": 500}
    with pytest.raises(ValidationError) as exc:
        listing_create(
            by=market.vendor,
            kind="template",
            title="Too many",
            price=5,
            content={
                "parameters": PARAMETERS | {"quantity": {"min": 1, "max": 100}},
                "parts": [many],
            },
        )
    assert list(details(exc)) == ["parts[0]"]
    assert "500 x the largest quantity multiplier 100 is over 10000" in details(exc)["parts[0]"][0]
    huge = {**PART, "size_x_mm": 6000.0}
    with pytest.raises(ValidationError) as exc:
        listing_create(
            by=market.vendor,
            kind="template",
            title="Too big",
            price=5,
            content={"parameters": PARAMETERS, "parts": [PART, huge]},
        )
    assert details(exc) == {
        "parts[1]": ["size: 6000 mm at the largest scale 2 is over 10000 mm; lower one of them."]
    }
    fits = listing_create(
        by=market.vendor,
        kind="template",
        title="Fits",
        price=5,
        content={"parameters": {"scale": {"min": 0.5, "max": 1.5}}, "parts": [huge]},
    )
    assert fits.versions.get().content["parts"][0]["size_x_mm"] == 6000.0


def test_a_templates_materials_follow_its_parts_unless_the_seller_wrote_them(market: Market):
    vendor = market.vendor
    derived = listing_create(
        by=vendor, kind="template", title="Derived", price=5, content={"parts": [PART]}
    )
    written = listing_create(
        by=vendor,
        kind="template",
        title="Written",
        price=5,
        materials=["PLA", "ABS"],
        content={"parts": [PART]},
    )
    petg = {"parts": [{**PART, "material": "PETG", "process": "sla"}]}
    for listing in (derived, written):
        listing_new_version(by=vendor, listing=listing, content=petg)

    def facets(listing: Listing, facet: str) -> list[str]:
        return sorted(listing.facets.filter(facet=facet).values_list("value", flat=True))

    assert facets(derived, "material") == ["petg"] and facets(derived, "process") == ["sla"]
    assert facets(written, "material") == ["abs", "pla"] and facets(written, "process") == ["sla"]


def test_a_template_listing_takes_a_job_template_or_content_not_both(market: Market):
    designer = market.designer
    with pytest.raises(ValidationError) as exc:
        listing_create(
            by=designer,
            kind="template",
            title="Both",
            price=5,
            template=job_template(designer),
            content={"parts": [PART]},
        )
    assert details(exc) == {
        "content": ["Either a job template or the parts and parameters: not both."]
    }


def test_a_typed_template_gets_new_versions_from_content_only(market: Market):
    vendor = market.vendor
    listing = listing_create(
        by=vendor, kind="template", title="Set", price=5, content={"parts": [PART]}
    )
    listing_publish(by=vendor, listing=listing)
    with pytest.raises(ValidationError) as exc:
        listing_new_version(by=vendor, listing=listing, changelog="Again")
    assert details(exc) == {
        "content": ["This listing has no job template (any more): give the parts and parameters."]
    }
    version = listing_new_version(
        by=vendor,
        listing=listing,
        changelog="Thicker walls",
        content={"parts": [{**PART, "size_z_mm": 25.0}]},
    )
    assert version.number == 2 and version.content["parts"][0]["size_z_mm"] == 25.0


def test_playbook_errors_name_the_step_by_index(market: Market):
    steps = [
        {"title": "Dry", "instructions": "4 h", "settings": {"dryer_c": 45}, "checks": ["dry"]},
        {"title": " ", "instructions": "Print it"},
        {"title": "Cool", "settings": {"fan": True, "bed_c": "x" * 61}, "checks": "not a list"},
    ]
    with pytest.raises(ValidationError) as exc:
        listing_create(
            by=market.designer,
            kind="playbook",
            title="PETG recipe",
            price="9.00",
            content={"steps": steps},
        )
    assert details(exc) == {
        "steps[1].title": ["Give the step a title."],
        "steps[2].settings.fan": ["A number or a short text."],
        "steps[2].settings.bed_c": ["Text of at most 60 characters."],
        "steps[2].checks": ["A list of texts."],
    }
    with pytest.raises(ValidationError) as exc:
        listing_create(
            by=market.designer, kind="playbook", title="Empty", price=9, content={"steps": []}
        )
    assert details(exc) == {"steps": ["A playbook needs at least one step."]}


def test_a_playbook_is_drafted_rewritten_published_and_versioned(market: Market):
    designer = market.designer
    listing = listing_create(
        by=designer, kind="playbook", title="PLA recipe", price="25", content=PLAYBOOK_CONTENT
    )
    assert {(f.facet, f.value) for f in listing.facets.all()} == {
        ("material", "pla"),
        ("process", "fdm"),
    }
    # a draft's content is rewritten in place: nobody has bought it
    shorter = {**PLAYBOOK_CONTENT, "steps": PLAYBOOK_CONTENT["steps"][:1]}
    version = listing_new_version(by=designer, listing=listing, content=shorter)
    assert version.number == 1 and listing.versions.count() == 1
    assert [s["title"] for s in version.content["steps"]] == ["Dry the filament"]

    listing_publish(by=designer, listing=listing)
    with pytest.raises(ValidationError) as exc:
        listing_new_version(by=designer, listing=listing, content=PLAYBOOK_CONTENT)
    assert details(exc) == {"changelog": ["Say what changed: buyers see it with the version."]}
    v2 = listing_new_version(
        by=designer, listing=listing, content=PLAYBOOK_CONTENT, changelog="Added the print step"
    )
    assert v2.number == 2 and v2.changelog == "Added the print step"
    assert list(listing.versions.values_list("number", flat=True)) == [2, 1]
    with pytest.raises(ValidationError):
        listing_publish(by=designer, listing=listing)  # only drafts are published


def test_capacity_is_sold_by_vendors_on_approved_nodes(market: Market):
    vendor = market.vendor
    listing = listing_create(
        by=vendor,
        kind="capacity",
        title="FDM hours",
        price="12.50",
        node_kind="fdm_printer",
        min_hours=2,
        max_hours=40,
    )
    assert listing.licence == "service" and (listing.min_hours, listing.max_hours) == (2, 40)
    assert listing.versions.get().content == {
        "node_kind": "fdm_printer",
        "min_hours": 2,
        "max_hours": 40,
    }
    assert {(f.facet, f.value) for f in listing.facets.all()} == {
        ("material", "pla"),
        ("material", "petg"),
        ("process", "fdm"),
    }

    with pytest.raises(ValidationError) as exc:
        listing_create(
            by=vendor, kind="capacity", title="Laser", price=30, node_kind="laser_cutter"
        )
    assert details(exc) == {
        "node_kind": [
            "Forge has no approved Laser cutter node: capacity is sold only on approved nodes."
        ]
    }
    with pytest.raises(ValidationError) as exc:
        listing_create(by=market.rival, kind="capacity", title="X", price=5, node_kind="cnc_mill")
    assert "Rival has no approved CNC mill node" in details(exc)["node_kind"][0]
    with pytest.raises(ValidationError) as exc:
        listing_create(
            by=market.designer, kind="capacity", title="X", price=5, node_kind="fdm_printer"
        )
    assert details(exc) == {"kind": ["Designers sell templates and playbooks only."]}
    with pytest.raises(ValidationError) as exc:
        listing_create(
            by=market.engineer, kind="capacity", title="X", price=5, node_kind="fdm_printer"
        )
    assert details(exc) == {
        "kind": ["Only vendor companies sell capacity; choose a template or playbook."]
    }


@pytest.mark.parametrize(
    ("hours", "errors"),
    [
        ((0, 10), {"min_hours": ["From 1 to 10000."]}),
        ((5, 4), {"max_hours": ["At least the minimum hours."]}),
        ((1, 10001), {"max_hours": ["From 1 to 10000."]}),
    ],
)
def test_capacity_hours_are_bounded(market: Market, hours, errors):
    with pytest.raises(ValidationError) as exc:
        listing_create(
            by=market.vendor,
            kind="capacity",
            title="Mill hours",
            price=40,
            node_kind="cnc_mill",
            min_hours=hours[0],
            max_hours=hours[1],
        )
    assert details(exc) == errors


def test_publishing_capacity_checks_the_nodes_are_still_approved(market: Market):
    listing = listing_create(
        by=market.vendor, kind="capacity", title="Mill", price=40, node_kind="cnc_mill"
    )
    FabricationNode.objects.filter(pk=market.mill.pk).update(approval="rejected")
    with pytest.raises(ValidationError) as exc:
        listing_publish(by=market.vendor, listing=listing)
    assert "no approved CNC mill node" in details(exc)["node_kind"][0]
    listing.refresh_from_db()
    assert listing.status == "draft"


@pytest.mark.parametrize(
    ("fields", "errors"),
    [
        ({"price": "0.49"}, {"price": ["At least 0.50."]}),
        ({"price": "1.234"}, {"price": ["At most 2 decimal places."]}),
        ({"price": "cheap"}, {"price": ["A number such as 12.50."]}),
        ({"currency": "XYZ"}, {"currency": ["One of USD, EUR, GBP, NGN, KES."]}),
        (
            {"licence": "service"},
            {"licence": ["Service terms are for capacity; choose a licence."]},
        ),
        ({"title": " "}, {"title": ["Required."]}),
        ({"tags": [f"t{i}" for i in range(11)]}, {"tags": ["At most 10."]}),
        ({"tags": ["x" * 41]}, {"tags": [f"Each at most 40 characters: {'x' * 41}…"]}),
    ],
)
def test_common_fields_are_checked_with_precise_messages(market: Market, fields, errors):
    values = {"title": "Recipe", "price": "10.00", **fields}
    with pytest.raises(ValidationError) as exc:
        listing_create(by=market.designer, kind="playbook", content=PLAYBOOK_CONTENT, **values)
    assert details(exc) == errors


def test_who_may_sell_and_for_which_organization(market: Market):
    with pytest.raises(ValidationError) as exc:
        listing_create(
            by=market.designer,
            kind="playbook",
            title="Not ours",
            price=5,
            content=PLAYBOOK_CONTENT,
            organization=market.forge,
        )
    assert details(exc) == {"organization": ["You are not a member of that organization."]}
    for role in ("viewer", "operator"):
        with pytest.raises(PermissionDenied):
            listing_create(
                by=market.user(role), kind="playbook", title="X", price=5, content=PLAYBOOK_CONTENT
            )
    # an administrator lists for any organization, but must say which
    with pytest.raises(ValidationError) as exc:
        listing_create(
            by=market.admin, kind="playbook", title="X", price=5, content=PLAYBOOK_CONTENT
        )
    assert details(exc) == {"organization": ["Say which organization sells this listing."]}
    listing = listing_create(
        by=market.admin,
        kind="playbook",
        title="Seeded",
        price=5,
        content=PLAYBOOK_CONTENT,
        organization=market.other,
    )
    assert listing.seller == market.other


# --- Update, retire, visibility -------------------------------------------------------------


def test_a_new_price_applies_to_later_purchases_only(market: Market):
    listing = market.playbook
    bought = paid_purchase(listing, market.designer)
    listing_update(
        by=market.vendor, listing=listing, price="30.00", tags="Recipe, PLA", title="PLA v2"
    )
    listing.refresh_from_db()
    bought.refresh_from_db()
    assert listing.price == D("30.00") and listing.title == "PLA v2"
    assert bought.unit_price == D("25.00")
    assert sorted(listing.facets.filter(facet="tag").values_list("value", flat=True)) == [
        "pla",
        "recipe",
    ]
    with pytest.raises(ValidationError) as exc:
        listing_update(by=market.vendor, listing=listing, min_hours=3, seller=1)
    assert details(exc) == {
        "min_hours": ["Only capacity listings have hours."],
        "seller": ["This can't be changed here."],
    }


def test_new_capacity_hours_on_a_published_listing_are_a_new_version(market: Market):
    listing = market.capacity
    listing_update(by=market.vendor, listing=listing, max_hours=200)
    latest = listing.versions.latest("number")
    assert latest.number == 2 and latest.content["max_hours"] == 200
    assert latest.changelog == "Bookable from 1 to 200 hours."


def test_retired_listings_are_final(market: Market, media):
    listing = market.template
    listing_retire(by=market.vendor, listing=listing, reason="superseded")
    listing.refresh_from_db()
    assert listing.status == "retired" and listing.retired_at is not None
    for change in (
        lambda: listing_update(by=market.vendor, listing=listing, title="Again"),
        lambda: listing_new_version(by=market.vendor, listing=listing, changelog="x"),
        lambda: listing_retire(by=market.vendor, listing=listing),
        lambda: listing_publish(by=market.vendor, listing=listing),
        lambda: listing_image_add(by=market.vendor, listing=listing, file=png()),
    ):
        with pytest.raises(ValidationError):
            change()


def test_admins_retire_any_listing_and_other_sellers_none(market: Market):
    theirs = make_listing(market.other, market.designer2, kind="playbook")
    for outsider in ("rival", "designer", "viewer"):
        with pytest.raises(PermissionDenied):
            listing_retire(by=market.user(outsider), listing=theirs)
        with pytest.raises(PermissionDenied):
            listing_update(by=market.user(outsider), listing=theirs, price="1.00")
    listing_retire(by=market.admin, listing=theirs, reason="spam")
    theirs.refresh_from_db()
    assert theirs.status == "retired"
    entry = AuditLog.objects.filter(object_type="marketplace.listing", object_id=str(theirs.pk))
    assert entry.get().changes == {
        "listing": "retired",
        "status": ["published", "retired"],
        "reason": "spam",
    }
    assert entry.get().actor == market.admin


def test_drafts_are_seen_by_their_sellers_only(market: Market):
    draft = make_listing(market.forge, market.vendor, status="draft", title="Secret")
    for user in ("vendor", "admin"):
        assert listing_get_for_user(user=market.user(user), pk=draft.pk) == draft
    for user in ("rival", "designer", "operator"):
        with pytest.raises(Http404):
            listing_get_for_user(user=market.user(user), pk=draft.pk)
    # a viewer of the seller's own organization does not sell, so sees no drafts
    studio_draft = make_listing(
        market.designer.organizations.get(), market.designer, status="draft"
    )
    assert listing_get_for_user(user=market.engineer, pk=studio_draft.pk) == studio_draft
    with pytest.raises(Http404):
        listing_get_for_user(user=market.viewer, pk=studio_draft.pk)
    # published: everyone signed in
    assert listing_get_for_user(user=market.viewer, pk=market.template.pk)


def test_retired_listings_stay_visible_to_their_buyers(market: Market):
    listing = market.playbook
    paid_purchase(listing, market.designer)
    listing_retire(by=market.vendor, listing=listing)
    for user in ("vendor", "admin", "designer", "viewer"):  # viewer: same org as the buyer
        assert listing_get_for_user(user=market.user(user), pk=listing.pk) == listing
    for user in ("designer2", "rival"):
        with pytest.raises(Http404):
            listing_get_for_user(user=market.user(user), pk=listing.pk)


def test_managing_is_404_when_unseen_and_403_when_seen(market: Market):
    draft = make_listing(market.forge, market.vendor, status="draft")
    with pytest.raises(Http404):
        listing_manage_get(user=market.rival, pk=draft.pk)
    with pytest.raises(PermissionDenied):
        listing_manage_get(user=market.rival, pk=market.template.pk)
    assert listing_manage_get(user=market.vendor, pk=draft.pk) == draft
    assert set(listing_manageable(user=market.vendor)) == {
        draft,
        market.template,
        market.playbook,
        market.capacity,
    }
    assert list(listing_manageable(user=market.rival)) == []
    assert list(listing_manageable(user=market.viewer)) == []
    assert listing_manageable(user=market.admin).count() == 4
    assert list(listing_manageable(user=market.vendor, status="draft")) == [draft]


# --- Browse ---------------------------------------------------------------------------------


def ids(qs: Any) -> list[int]:
    return [listing.pk for listing in qs]


@dataclass(frozen=True)
class Shelf(Market):
    studio: Organization
    steel: Listing
    nylon: Listing
    draft: Listing


@pytest.fixture
def shelf(market: Market) -> Shelf:
    """Three more listings by Studio with facets, prices, ratings and sales."""
    studio = market.designer.organizations.get()
    by = market.designer
    steel = listing_create(
        by=by,
        kind="playbook",
        title="Steel drilling guide",
        summary="Feeds and speeds",
        price="5.00",
        content={**PLAYBOOK_CONTENT, "materials": ["steel"], "processes": ["drilling"]},
        tags=["drone", "drone-arm", "cnc"],
    )
    nylon = listing_create(
        by=by,
        kind="playbook",
        title="Nylon annealing",
        description="Makes drone arms tougher.",
        price="45.00",
        content={**PLAYBOOK_CONTENT, "materials": ["nylon_powder"], "processes": ["sls"]},
    )
    draft = listing_create(
        by=by, kind="playbook", title="Drone draft", price="1.00", content=PLAYBOOK_CONTENT
    )
    for listing in (steel, nylon):
        listing_publish(by=by, listing=listing)
    for name in ("playbook", "capacity"):
        listing_update(by=market.vendor, listing=market.listing(name), materials=["PLA", "petg"])
    Listing.objects.filter(pk=steel.pk).update(rating_avg=D("4.50"), rating_count=2, sales_count=7)
    Listing.objects.filter(pk=nylon.pk).update(rating_avg=D("3.00"), rating_count=1, sales_count=2)
    return extended(Shelf, market, studio=studio, steel=steel, nylon=nylon, draft=draft)


def test_browse_filters_each_match_and_exclude(shelf):
    user = shelf.viewer
    steel, nylon = shelf.steel.pk, shelf.nylon.pk
    template, playbook, capacity = (
        shelf.listing(k).pk for k in ("template", "playbook", "capacity")
    )

    def browse(**filters: Any) -> set[int]:
        return set(ids(listing_browse(user=user, **filters)))

    assert browse() == {steel, nylon, template, playbook, capacity}  # drafts never
    assert browse(kind="capacity") == {capacity}
    assert browse(kind="playbook") == {steel, nylon, playbook}
    assert browse(material="STEEL ") == {steel}
    assert browse(material="pla") == {playbook, capacity}
    assert browse(process="sls") == {nylon}
    assert browse(tag="cnc") == {steel}
    assert browse(seller=shelf.studio.pk) == {steel, nylon}
    assert browse(price_min=D("12.50")) == {nylon, playbook, capacity}
    assert browse(price_max=D("10.00")) == {steel, template}
    assert browse(price_min=D("10"), price_max=D("25")) == {template, playbook, capacity}
    assert browse(rating_min=D("4")) == {steel}
    assert browse(rating_min=D("3")) == {steel, nylon}
    # q: title, summary, description and tags; every word must match
    assert browse(q="drone") == {steel, nylon, template}  # template: "Drone arm"
    assert browse(q="feeds") == {steel}
    assert browse(q="tougher drone") == {nylon}
    assert browse(q="drone nothing") == set()
    assert browse(kind="template", q="steel") == set()
    with pytest.raises(ValidationError):
        browse(kind="bogus")
    with pytest.raises(ValidationError):
        browse(sort="cheapest")


def test_price_bounds_compare_prices_in_one_currency(shelf, settings):
    settings.MARKETPLACE_DEFAULT_CURRENCY = "USD"
    user = shelf.viewer
    euro = make_listing(shelf.forge, shelf.vendor, price="8.00", title="Euro kit")
    naira = make_listing(shelf.forge, shelf.vendor, price="9000.00", title="Naira hours")
    Listing.objects.filter(pk=euro.pk).update(currency="EUR")
    Listing.objects.filter(pk=naira.pk).update(currency="NGN")
    dollars = set(
        Listing.objects.filter(status="published", currency="USD").values_list("pk", flat=True)
    )

    def browse(**filters: Any) -> set[int]:
        return set(ids(listing_browse(user=user, **filters)))

    assert {euro.pk, naira.pk} <= browse()  # no price bound: every currency
    cheap_dollars = {pk for pk in dollars if Listing.objects.get(pk=pk).price <= 10}
    assert browse(price_max=D("10")) == cheap_dollars  # 8 EUR is not "up to 10" dollars
    assert browse(price_max=D("10"), currency="eur") == {euro.pk}
    assert browse(currency="NGN") == {naira.pk}
    assert browse(price_min=D("100"), currency="NGN") == {naira.pk}
    assert browse(price_min=D("100")) == set()  # 9,000 NGN is not above 100 dollars
    with pytest.raises(ValidationError) as exc:
        browse(currency="XYZ")
    assert list(details(exc)) == ["currency"]
    # sorting by price never interleaves currencies: dollars first, then each other one
    by_price = list(listing_browse(user=user, sort="price").values_list("currency", "price"))
    assert [c for c, _ in by_price] == ["USD"] * len(dollars) + ["EUR", "NGN"]
    assert [p for c, p in by_price if c == "USD"] == sorted(p for c, p in by_price if c == "USD")
    dearest = list(listing_browse(user=user, sort="-price").values_list("currency", flat=True))
    assert dearest == ["USD"] * len(dollars) + ["EUR", "NGN"]


def test_browse_never_repeats_a_listing_matching_several_facets(shelf):
    # "drone" matches two of the steel guide's tags and its title's neighbours
    found = ids(listing_browse(user=shelf.viewer, q="drone", tag="drone-arm"))
    assert found == [shelf.steel.pk]
    assert ids(listing_browse(user=shelf.viewer, q="dr")).count(shelf.steel.pk) == 1


def test_browse_sorts(shelf):
    user = shelf.viewer
    steel, nylon = shelf.steel.pk, shelf.nylon.pk
    template, playbook, capacity = (
        shelf.listing(k).pk for k in ("template", "playbook", "capacity")
    )
    assert ids(listing_browse(user=user, sort="price")) == [
        steel,
        template,
        capacity,
        playbook,
        nylon,
    ]
    assert ids(listing_browse(user=user, sort="-price")) == [
        nylon,
        playbook,
        capacity,
        template,
        steel,
    ]
    assert ids(listing_browse(user=user, sort="rating"))[:2] == [steel, nylon]  # unrated last
    assert ids(listing_browse(user=user, sort="popular"))[:2] == [steel, nylon]
    titles = [listing.title for listing in listing_browse(user=user, sort="title")]
    assert titles == sorted(titles)
    newest = ids(listing_browse(user=user, sort="newest"))
    assert newest[:2] == [nylon, steel]  # published last, listed first


# --- Images ---------------------------------------------------------------------------------


def test_a_real_png_is_kept_with_its_size(market: Market, media):
    image = listing_image_add(
        by=market.vendor, listing=market.template, file=png(64, 48), alt="The arm"
    )
    assert (image.width, image.height, image.alt, image.position) == (64, 48, "The arm", 1)
    assert (
        image.image.name is not None
        and image.image.name.endswith(".png")
        and (media / image.image.name).exists()
    )
    jpeg = listing_image_add(
        by=market.vendor, listing=market.template, file=png(fmt="JPEG", name="a.png")
    )
    assert (
        jpeg.image.name is not None and jpeg.image.name.endswith(".jpg") and jpeg.position == 2
    )  # named for what it is


def test_files_that_are_not_pictures_are_refused(market: Market, media):
    fake = SimpleUploadedFile("photo.png", b"just some text, honestly", content_type="image/png")
    with pytest.raises(ValidationError) as exc:
        listing_image_add(by=market.vendor, listing=market.template, file=fake)
    assert details(exc) == {"image": ["Not an image: upload a PNG, JPEG or WebP."]}
    with pytest.raises(ValidationError) as exc:
        listing_image_add(
            by=market.vendor, listing=market.template, file=png(fmt="GIF", name="a.gif")
        )
    assert details(exc) == {"image": ["GIF images aren't taken: PNG, JPEG or WebP."]}
    huge = SimpleUploadedFile("big.png", b"\0" * (5 * 1024 * 1024 + 1), content_type="image/png")
    with pytest.raises(ValidationError) as exc:
        listing_image_add(by=market.vendor, listing=market.template, file=huge)
    assert details(exc) == {"image": ["At most 5 MB."]}
    assert not ListingImage.objects.exists()


def test_the_ninth_image_is_refused_and_images_can_be_removed(
    market: Market, media, django_capture_on_commit_callbacks
):
    listing = market.template
    images = [listing_image_add(by=market.vendor, listing=listing, file=png()) for _ in range(8)]
    with pytest.raises(ValidationError) as exc:
        listing_image_add(by=market.vendor, listing=listing, file=png())
    assert details(exc) == {"image": ["At most 8 images per listing."]}
    with pytest.raises(PermissionDenied):
        listing_image_add(by=market.rival, listing=listing, file=png())
    with pytest.raises(PermissionDenied):
        listing_image_delete(by=market.rival, image=images[0])
    path = media / images[0].image.name
    with django_capture_on_commit_callbacks(execute=True):
        listing_image_delete(by=market.vendor, image=images[0])
    assert listing.images.count() == 7 and not path.exists()


def test_images_are_reordered_and_the_first_is_the_cover(market: Market, media):
    listing = market.template
    vendor = market.vendor
    a, b, c = (listing_image_add(by=vendor, listing=listing, file=png()) for _ in range(3))

    def order() -> list[int]:
        return list(listing.images.order_by("position", "id").values_list("pk", flat=True))

    moved = listing_image_move(by=vendor, image=c, position=1)
    assert moved.position == 1 and order() == [c.pk, a.pk, b.pk]
    assert list(listing.images.order_by("position").values_list("position", flat=True)) == [
        1,
        2,
        3,
    ]
    listing_image_move(by=vendor, image=c, position="3")
    assert order() == [a.pk, b.pk, c.pk]
    cover = listing_browse(user=market.viewer, q="Drone arm").get(pk=listing.pk)
    covers = cover.cover_images  # type: ignore[attr-defined]  # a Prefetch to_attr
    assert [i.pk for i in covers] == [a.pk]  # cards show the first
    for bad in (0, 4, "x", None, True):
        with pytest.raises(ValidationError) as exc:
            listing_image_move(by=vendor, image=a, position=bad)
        assert details(exc) == {"position": ["A whole number from 1 to 3."]}
    with pytest.raises(PermissionDenied):
        listing_image_move(by=market.rival, image=a, position=2)
    assert order() == [a.pk, b.pk, c.pk]
    Listing.objects.filter(pk=listing.pk).update(status="retired")
    with pytest.raises(ValidationError):
        listing_image_move(by=vendor, image=b, position=1)


# --- The seller's figures -------------------------------------------------------------------

PLA = {"material": "PLA", "process": "fdm", "size_x_mm": 20, "size_y_mm": 20, "size_z_mm": 10}


def finished(market: Market, name: str, *, deadline: Any = None, fail: bool = False) -> Part:
    job = job_submit(
        by=market.designer, title=name, parts=[{**PLA, "name": name}], deadline=deadline
    )
    parts_schedule()
    part = job.parts.get()
    node = part.assigned_node_id
    assert node in {market.printer_a.pk, market.printer_b.pk}
    work_start(node_id=node, part_id=part.pk)
    if fail:
        return work_fail(node_id=node, part_id=part.pk, reason="warped", machine_fault=False)
    return work_complete(node_id=node, part_id=part.pk, quality_score=0.9)


def test_seller_figures_come_from_finished_parts_and_reviews(market: Market):
    forge = market.forge
    empty = seller_sla(organization=forge)
    assert (empty["on_time_rate"], empty["defect_rate"], empty["avg_rating"]) == (None, None, None)
    assert empty["parts_done"] == 0

    soon = timezone.now() + timedelta(days=30)
    on_time = finished(market, "on time", deadline=soon)
    late = finished(market, "late", deadline=soon)
    finished(market, "no deadline")
    finished(market, "warped", fail=True)
    old = finished(market, "last year", deadline=soon)
    # hand-made history: one job's deadline passed before its part finished; one part finished
    # outside the window
    assert late.finished_at is not None and on_time.finished_at is not None
    Job.objects.filter(pk=late.job_id).update(deadline=late.finished_at - timedelta(hours=1))
    Part.objects.filter(pk=old.pk).update(finished_at=timezone.now() - timedelta(days=400))
    assert on_time.job.deadline is not None and on_time.finished_at <= on_time.job.deadline

    sla = seller_sla(organization=forge)
    assert sla["parts_done"] == 3 and sla["parts_failed"] == 1
    assert sla["parts_with_deadline"] == 2
    assert sla["on_time_rate"] == 0.5  # on time of the two with a deadline
    assert sla["defect_rate"] == 0.25  # one failed of four finished
    assert sla["avg_rating"] is None and sla["rating_count"] == 0
    longer = seller_sla(organization=forge, days=500)
    assert longer["parts_done"] == 4 and longer["on_time_rate"] == pytest.approx(2 / 3, abs=1e-4)

    for listing, stars in ((market.template, 5), (market.playbook, 2)):
        ReviewFactory.create(purchase=paid_purchase(listing, market.designer), stars=stars)
    rated = seller_sla(organization=forge)
    assert rated["avg_rating"] == 3.5 and rated["rating_count"] == 2
    # nothing of the rival's is measured
    rival = seller_sla(organization=market.rival.organizations.get())
    assert (rival["parts_done"], rival["on_time_rate"], rival["rating_count"]) == (0, None, 0)


def test_listing_stats_count_jobs_made_with_it(market: Market):
    listing = market.template
    assert listing_stats(listing=listing)["jobs"] == 0
    purchase = paid_purchase(listing, market.designer)
    done = finished(market, "made")
    other = job_submit(by=market.designer, title="second", parts=[{**PLA, "name": "x"}])
    for job in (done.job, done.job, other):
        PurchaseUseFactory.create(purchase=purchase, job=job)
    Listing.objects.filter(pk=listing.pk).update(sales_count=1)
    listing.refresh_from_db()
    done.job.refresh_from_db()
    assert done.job.status == "completed"
    assert listing_stats(listing=listing) == {
        "sales_count": 1,
        "jobs": 2,
        "jobs_completed": 1,
        "hours": D("0.00"),
    }
