"""Writes of listings: create (with version 1), update, new versions, publish, retire.

The fields are checked in services/listing_checks.py, the content of each kind in
services/listing_content.py; pictures are services/listing_images.py."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from apps.core.audit import audit_log
from apps.core.models import AuditLog
from apps.jobs.models import JobTemplate
from apps.marketplace.models import Listing, ListingFacet, ListingVersion
from apps.marketplace.services.listing_checks import (
    CATALOGUE_FACETS,
    Errors,
    _add,
    _catalogue_values,
    _currency,
    _facet_values,
    _hours,
    _licence,
    _merge,
    _not_retired,
    _pairing,
    _price,
    _require_manage,
    _seller_org,
    _text,
)
from apps.marketplace.services.listing_content import (
    _capacity_check,
    _node_facets,
    _part_facets,
    _template_of,
    playbook_content_check,
    template_content_check,
    template_snapshot,
)
from apps.users.models import Organization, User
from apps.users.roles import Role

UPDATABLE = (
    "title",
    "summary",
    "description",
    "price",
    "currency",
    "licence",
    "tags",
    "materials",
    "processes",
    "min_hours",
    "max_hours",
)


def _audit(*, by: User, listing: Listing, what: str, **changes: Any) -> None:
    audit_log(
        action=AuditLog.Action.CREATE if what == "created" else AuditLog.Action.UPDATE,
        actor=by,
        obj=listing,
        changes={"listing": what, **changes},
    )


def _set_facets(listing: Listing, **facets: list[str]) -> None:
    names = {
        "tags": ListingFacet.Facet.TAG,
        "materials": ListingFacet.Facet.MATERIAL,
        "processes": ListingFacet.Facet.PROCESS,
    }
    for field, values in facets.items():
        facet = names[field]
        listing.facets.filter(facet=facet).delete()
        ListingFacet.objects.bulk_create(
            [ListingFacet(listing=listing, facet=facet, value=v) for v in values]
        )


@transaction.atomic
def listing_create(
    *,
    by: User,
    kind: str,
    title: str,
    price: Any,
    currency: str | None = None,
    summary: str = "",
    description: str = "",
    licence: str | None = None,
    tags: Iterable[str] | str = (),
    materials: Iterable[str] | str = (),
    processes: Iterable[str] | str = (),
    template: JobTemplate | int | None = None,
    content: dict[str, Any] | None = None,
    node_kind: str = "",
    min_hours: int = 1,
    max_hours: int = 100,
    organization: Organization | None = None,
) -> Listing:
    """A draft listing of the caller's organization (or `organization`) with version 1."""
    org = _seller_org(by=by, organization=organization)
    if kind not in Listing.Kind.values:
        raise ValidationError({"kind": [f"One of {', '.join(Listing.Kind.values)}."]})
    if kind == Listing.Kind.CAPACITY:
        if by.role == Role.DESIGNER:
            raise ValidationError({"kind": ["Designers sell templates and playbooks only."]})
        if org.kind != Organization.Kind.VENDOR:
            raise ValidationError(
                {"kind": ["Only vendor companies sell capacity; choose a template or playbook."]}
            )
    errors: Errors = {}
    title = _text(title, "title", 160, errors, required=True)
    summary = _text(summary, "summary", 300, errors)
    description = _text(description, "description", 20000, errors)
    amount = _price(price, errors)
    currency = _currency(currency, errors)
    licence = _licence(licence, kind, errors)
    facets = {
        "tags": _facet_values(tags, "tags", errors),
        "materials": _catalogue_values(materials, "materials", errors),
        "processes": _catalogue_values(processes, "processes", errors),
    }
    _pairing(facets["processes"], facets["materials"], errors)
    extra: dict[str, Any] = {}
    version: dict[str, Any] = {}
    if kind == Listing.Kind.TEMPLATE:
        if template not in (None, "") and content is not None:
            _add(errors, "content", "Either a job template or the parts and parameters: not both.")
        elif content is not None:
            # a part set typed for the listing (vendors have no job templates of their own)
            try:
                version = template_content_check(content)
            except ValidationError as exc:
                for field, messages in exc.message_dict.items():
                    errors.setdefault(field, []).extend(messages)
        else:
            chosen = _template_of(template, org, errors)
            if chosen is not None:
                try:
                    version = template_content_check(template_snapshot(chosen))
                except ValidationError as exc:
                    _add(
                        errors,
                        "template",
                        "This job template can't be sold as it is: "
                        + "; ".join(f"{k}: {' '.join(v)}" for k, v in exc.message_dict.items()),
                    )
                extra["template"] = chosen
        if version:
            facets["materials"] = facets["materials"] or _part_facets(version, "material")
            facets["processes"] = facets["processes"] or _part_facets(version, "process")
    elif kind == Listing.Kind.PLAYBOOK:
        try:
            version = playbook_content_check(content)
        except ValidationError as exc:
            _merge(errors, exc)
        facets["materials"] = facets["materials"] or version.get("materials", [])
        facets["processes"] = facets["processes"] or version.get("processes", [])
    else:
        nodes = _capacity_check(organization=org, node_kind=node_kind, errors=errors)
        low, high = _hours(min_hours, max_hours, errors)
        extra.update(node_kind=node_kind, min_hours=low, max_hours=high)
        version = {"node_kind": node_kind, "min_hours": low, "max_hours": high}
        facets["materials"] = facets["materials"] or _node_facets(nodes, "materials")
        facets["processes"] = facets["processes"] or _node_facets(nodes, "processes")
    if errors or amount is None:
        raise ValidationError(errors)
    listing = Listing.objects.create(
        seller=org,
        created_by=by,
        kind=kind,
        title=title,
        summary=summary,
        description=description,
        price=amount,
        currency=currency,
        licence=licence,
        **extra,
    )
    ListingVersion.objects.create(listing=listing, number=1, content=version, created_by=by)
    _set_facets(listing, **facets)
    _audit(by=by, listing=listing, what="created", kind=kind, seller=org.pk)
    return listing


@transaction.atomic
def listing_update(*, by: User, listing: Listing, **fields: Any) -> Listing:
    """Changes what the listing says and costs. A new price applies to later purchases only
    (each purchase stores its unit price); new capacity hours become a new version."""
    _require_manage(by=by, listing=listing)
    listing = Listing.objects.select_for_update().get(pk=listing.pk)
    _not_retired(listing)
    errors: Errors = {}
    unknown = set(fields) - set(UPDATABLE)
    for field in sorted(unknown):
        _add(errors, field, "This can't be changed here.")
    capacity = listing.kind == Listing.Kind.CAPACITY
    if not capacity:
        for field in ("min_hours", "max_hours"):
            if field in fields:
                _add(errors, field, "Only capacity listings have hours.")
    changes: dict[str, Any] = {}
    values: dict[str, Any] = {}
    limits = {"title": 160, "summary": 300, "description": 20000}
    for field, limit in limits.items():
        if field in fields:
            values[field] = _text(fields[field], field, limit, errors, required=field == "title")
    if "price" in fields:
        values["price"] = _price(fields["price"], errors)
    if "currency" in fields:
        values["currency"] = _currency(fields["currency"], errors)
    if "licence" in fields:
        values["licence"] = _licence(fields["licence"], listing.kind, errors)
    facets = {
        name: (_catalogue_values if name in CATALOGUE_FACETS else _facet_values)(
            fields[name], name, errors
        )
        for name in ("tags", "materials", "processes")
        if name in fields
    }
    if {"materials", "processes"} & set(facets):
        # the side not given is the listing's own
        current = {
            name: list(
                listing.facets.filter(facet=facet).order_by("id").values_list("value", flat=True)
            )
            for name, facet in (
                ("materials", ListingFacet.Facet.MATERIAL),
                ("processes", ListingFacet.Facet.PROCESS),
            )
        }
        _pairing(
            facets.get("processes", current["processes"]),
            facets.get("materials", current["materials"]),
            errors,
        )
    hours_changed = False
    if capacity and ({"min_hours", "max_hours"} & set(fields)):
        low, high = _hours(
            fields.get("min_hours", listing.min_hours),
            fields.get("max_hours", listing.max_hours),
            errors,
        )
        hours_changed = (low, high) != (listing.min_hours, listing.max_hours)
        values.update(min_hours=low, max_hours=high)
    if errors:
        raise ValidationError(errors)
    for field, value in values.items():
        if getattr(listing, field) != value:
            changes[field] = [getattr(listing, field), value]
            setattr(listing, field, value)
    if changes:
        listing.save(update_fields=[*changes, "updated_at"])
    if facets:
        _set_facets(listing, **facets)
        changes.update({str(k): v for k, v in facets.items()})
    if hours_changed:
        terms = {
            "node_kind": listing.node_kind,
            "min_hours": listing.min_hours,
            "max_hours": listing.max_hours,
        }
        _new_version(
            by=by,
            listing=listing,
            content=terms,
            changelog=f"Bookable from {listing.min_hours} to {listing.max_hours} hours.",
        )
    if changes:
        _audit(by=by, listing=listing, what="updated", **changes)
    return listing


def _new_version(
    *, by: User, listing: Listing, content: dict[str, Any], changelog: str
) -> ListingVersion:
    latest = listing.versions.order_by("-number").first()
    if listing.status == Listing.Status.DRAFT and latest is not None:
        # nobody has bought a draft: its one version is rewritten, not stacked
        latest.content = content
        if changelog:
            latest.changelog = changelog
        latest.save(update_fields=["content", "changelog"])
        return latest
    number = (latest.number if latest else 0) + 1
    return ListingVersion.objects.create(
        listing=listing, number=number, content=content, changelog=changelog, created_by=by
    )


NO_TEMPLATE = "This listing has no job template (any more): give the parts and parameters."


def _content_for(*, listing: Listing, content: Any) -> dict[str, Any]:
    if listing.kind == Listing.Kind.TEMPLATE:
        if content is None:
            if listing.template is None:
                raise ValidationError({"content": [NO_TEMPLATE]})
            return template_content_check(template_snapshot(listing.template))
        return template_content_check(content)
    if listing.kind == Listing.Kind.PLAYBOOK:
        if content is None:
            raise ValidationError({"content": ["Give the playbook's steps."]})
        return playbook_content_check(content)
    errors: Errors = {}
    terms = content if isinstance(content, dict) else {}
    if content is not None and terms.get("node_kind", listing.node_kind) != listing.node_kind:
        _add(errors, "node_kind", "A capacity listing keeps its node kind; list the other anew.")
    low, high = _hours(
        terms.get("min_hours", listing.min_hours), terms.get("max_hours", listing.max_hours), errors
    )
    if errors:
        raise ValidationError(errors)
    return {"node_kind": listing.node_kind, "min_hours": low, "max_hours": high}


def _refresh_part_facets(listing: Listing, content: dict[str, Any]) -> None:
    """A template's materials and processes follow its parts when they were taken from the
    parts (the seller gave none); ones the seller wrote stay."""
    latest = listing.versions.order_by("-number").first()
    before = latest.content if latest else {}
    for field, facet, argument in (
        ("material", ListingFacet.Facet.MATERIAL, "materials"),
        ("process", ListingFacet.Facet.PROCESS, "processes"),
    ):
        current = list(
            listing.facets.filter(facet=facet).order_by("id").values_list("value", flat=True)
        )
        if current == _part_facets(before, field):
            _set_facets(listing, **{argument: _part_facets(content, field)})


@transaction.atomic
def listing_new_version(
    *, by: User, listing: Listing, changelog: str = "", content: dict[str, Any] | None = None
) -> ListingVersion:
    """A draft's content is rewritten in place; a published listing gets the next version
    number, with a changelog for its buyers (who all get it). A template listing given no
    content takes its job template's parts and parameters again."""
    _require_manage(by=by, listing=listing)
    listing = Listing.objects.select_for_update().get(pk=listing.pk)
    _not_retired(listing)
    changelog = (changelog or "").strip()
    if listing.status == Listing.Status.PUBLISHED and not changelog:
        raise ValidationError({"changelog": ["Say what changed: buyers see it with the version."]})
    if len(changelog) > 500:
        raise ValidationError({"changelog": ["At most 500 characters."]})
    version_content = _content_for(listing=listing, content=content)
    if listing.kind == Listing.Kind.TEMPLATE:
        _refresh_part_facets(listing, version_content)
    if listing.kind == Listing.Kind.CAPACITY:
        low, high = version_content["min_hours"], version_content["max_hours"]
        if (low, high) != (listing.min_hours, listing.max_hours):
            listing.min_hours, listing.max_hours = low, high
            listing.save(update_fields=["min_hours", "max_hours", "updated_at"])
    version = _new_version(by=by, listing=listing, content=version_content, changelog=changelog)
    _audit(by=by, listing=listing, what="versioned", number=version.number, changelog=changelog)
    return version


@transaction.atomic
def listing_publish(*, by: User, listing: Listing) -> Listing:
    """Draft -> published, once its content holds (and, for capacity, the seller still has
    approved nodes of the kind)."""
    _require_manage(by=by, listing=listing)
    listing = Listing.objects.select_for_update().get(pk=listing.pk)
    if listing.status != Listing.Status.DRAFT:
        raise ValidationError(
            f"Only drafts are published; this listing is {listing.get_status_display().lower()}."
        )
    latest = listing.versions.order_by("-number").first()
    if latest is None:
        raise ValidationError({"content": ["The listing has no content yet."]})
    if listing.kind == Listing.Kind.TEMPLATE:
        template_content_check(latest.content)
    elif listing.kind == Listing.Kind.PLAYBOOK:
        playbook_content_check(latest.content)
    else:
        errors: Errors = {}
        _capacity_check(organization=listing.seller, node_kind=listing.node_kind, errors=errors)
        if errors:
            raise ValidationError(errors)
    listing.status = Listing.Status.PUBLISHED
    listing.published_at = timezone.now()
    listing.save(update_fields=["status", "published_at", "updated_at"])
    _audit(by=by, listing=listing, what="published", status=["draft", "published"])
    return listing


@transaction.atomic
def listing_retire(*, by: User, listing: Listing, reason: str = "") -> Listing:
    """Published or draft -> retired, for good: nobody buys it any more; organizations that
    bought it keep using it. Administrators may retire any listing (moderation)."""
    _require_manage(by=by, listing=listing)
    listing = Listing.objects.select_for_update().get(pk=listing.pk)
    if listing.status == Listing.Status.RETIRED:
        raise ValidationError("This listing is already retired.")
    before = listing.status
    listing.status = Listing.Status.RETIRED
    listing.retired_at = timezone.now()
    listing.save(update_fields=["status", "retired_at", "updated_at"])
    _audit(
        by=by,
        listing=listing,
        what="retired",
        status=[before, "retired"],
        reason=reason.strip()[:300],
    )
    return listing
