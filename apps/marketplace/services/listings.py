"""Writes of listings: create (with version 1), update, new versions, publish, retire, images.

Field errors are a ValidationError of field -> [messages] (playbook steps by index:
`steps[2].title`), so forms and the API put each one where it belongs."""

from __future__ import annotations

from collections.abc import Iterable
from decimal import Decimal, InvalidOperation
from typing import Any

from django.conf import settings
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.files.uploadedfile import UploadedFile
from django.db import transaction
from django.db.models import Max
from django.utils import timezone
from PIL import Image, UnidentifiedImageError

from apps.core.audit import audit_log
from apps.core.models import AuditLog
from apps.jobs.models import JobTemplate
from apps.jobs.services import template_spec_check
from apps.marketplace.models import Listing, ListingFacet, ListingImage, ListingVersion
from apps.marketplace.selectors.listings import listing_can_manage
from apps.users.models import Organization, User
from apps.users.roles import Action, Role, Scope, scope_for
from apps.vendors import catalog
from apps.vendors.models import FabricationNode

MIN_PRICE = Decimal("0.50")
MAX_PRICE = Decimal("1000000000")
MAX_FACETS = 10
MAX_FACET_CHARS = 40
MAX_HOURS = 10000
MAX_STEPS = 50
MAX_SETTING_CHARS = 60
MAX_IMAGES = 8
IMAGE_FORMATS = {"PNG": "png", "JPEG": "jpg", "WEBP": "webp"}
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

Errors = dict[str, list[str]]


def _add(errors: Errors, field: str, message: str) -> None:
    errors.setdefault(field, []).append(message)


def _audit(*, by: User, listing: Listing, what: str, **changes: Any) -> None:
    audit_log(
        action=AuditLog.Action.CREATE if what == "created" else AuditLog.Action.UPDATE,
        actor=by,
        obj=listing,
        changes={"listing": what, **changes},
    )


# --- Checks ---------------------------------------------------------------------------------


def _seller_org(*, by: User, organization: Organization | None) -> Organization:
    scope = scope_for(by, Action.MARKET_SELL)
    if scope is None:
        raise PermissionDenied("Your role does not allow selling on the marketplace.")
    mine = Organization.objects.filter(memberships__user=by).order_by("memberships__id")
    if organization is None:
        org = mine.first()
        if org is None:
            raise ValidationError({"organization": ["Say which organization sells this listing."]})
        return org
    if scope != Scope.ALL and not mine.filter(pk=organization.pk).exists():
        raise ValidationError({"organization": ["You are not a member of that organization."]})
    return organization


def _require_manage(*, by: User, listing: Listing) -> None:
    if not listing_can_manage(user=by, listing=listing):
        raise PermissionDenied("Only the seller's team or an administrator may change a listing.")


def _not_retired(listing: Listing) -> None:
    if listing.status == Listing.Status.RETIRED:
        raise ValidationError("This listing is retired: it can no longer be changed.")


def _price(raw: Any, errors: Errors) -> Decimal | None:
    try:
        price = raw if isinstance(raw, Decimal) else Decimal(str(raw).strip())
    except (InvalidOperation, ValueError):
        _add(errors, "price", "A number such as 12.50.")
        return None
    if not price.is_finite():
        _add(errors, "price", "A number such as 12.50.")
        return None
    if price < MIN_PRICE:
        _add(errors, "price", f"At least {MIN_PRICE}.")
    elif price >= MAX_PRICE:
        _add(errors, "price", f"Less than {MAX_PRICE}.")
    elif price != price.quantize(Decimal("0.01")):
        _add(errors, "price", "At most 2 decimal places.")
    else:
        return price.quantize(Decimal("0.01"))
    return None


def _currency(raw: str | None, errors: Errors) -> str:
    currency = (raw or settings.MARKETPLACE_DEFAULT_CURRENCY).strip().upper()
    if currency not in settings.MARKETPLACE_CURRENCIES:
        _add(errors, "currency", f"One of {', '.join(settings.MARKETPLACE_CURRENCIES)}.")
    return currency


def _licence(raw: str | None, kind: str, errors: Errors) -> str:
    capacity = kind == Listing.Kind.CAPACITY
    if not raw:
        return Listing.Licence.SERVICE if capacity else Listing.Licence.ORGANIZATION
    if raw not in Listing.Licence.values:
        _add(errors, "licence", f"One of {', '.join(Listing.Licence.values)}.")
    elif capacity != (raw == Listing.Licence.SERVICE):
        _add(
            errors,
            "licence",
            "Capacity is sold on service terms."
            if capacity
            else "Service terms are for capacity; choose a licence.",
        )
    return raw


def _text(value: Any, field: str, limit: int, errors: Errors, *, required: bool = False) -> str:
    text = str(value or "").strip()
    if required and not text:
        _add(errors, field, "Required.")
    elif len(text) > limit:
        _add(errors, field, f"At most {limit} characters.")
    return text


def _facet_values(raw: Any, field: str, errors: Errors) -> list[str]:
    """Lower case, stripped, de-duplicated (first spelling kept); at most 10 of 40 characters.
    A string is split on commas."""
    if raw is None:
        return []
    items: Iterable[Any] = raw.split(",") if isinstance(raw, str) else raw
    values: list[str] = []
    for item in items:
        if not isinstance(item, str):
            _add(errors, field, "Words, not numbers or objects.")
            return []
        value = " ".join(item.split()).lower()
        if value and value not in values:
            values.append(value)
    too_long = [v for v in values if len(v) > MAX_FACET_CHARS]
    if too_long:
        _add(errors, field, f"Each at most {MAX_FACET_CHARS} characters: {too_long[0][:50]}…")
    if len(values) > MAX_FACETS:
        _add(errors, field, f"At most {MAX_FACETS}.")
    return values


CATALOGUE_FACETS = {"materials": "material", "processes": "process"}


def _catalogue_values(raw: Any, field: str, errors: Errors) -> list[str]:
    """A listing's or playbook's materials or processes as catalogue codes (any spelling the
    catalogue knows), in catalogue order; values it does not know are refused as typed."""
    if raw is None:
        return []
    items: Iterable[Any] = raw.split(",") if isinstance(raw, str) else raw
    if any(not isinstance(item, str) for item in items):
        _add(errors, field, "Words, not numbers or objects.")
        return []
    texts = [" ".join(item.split()) for item in items if item.strip()]
    codes, unknown = catalog.codes_clean(texts, kind=CATALOGUE_FACETS[field])
    if unknown:
        _add(errors, field, catalog.unknown_message(CATALOGUE_FACETS[field], *unknown))
    return codes


def _pairing(processes: list[str], materials: list[str], errors: Errors) -> None:
    """Materials and processes named together must fit each other (the catalogue says which
    process works which material)."""
    for field, message in catalog.pairing_problems(
        processes=processes, materials=materials
    ).items():
        if field not in errors:  # an unknown value is the first thing to fix
            _add(errors, field, message)


def _merge(errors: Errors, exc: ValidationError) -> None:
    """A nested check's errors added to `errors`, each message once (a playbook's materials
    are checked as the listing's and as its content's)."""
    for field, messages in exc.message_dict.items():
        kept = errors.setdefault(field, [])
        kept.extend(m for m in messages if m not in kept)


def _hours(min_hours: Any, max_hours: Any, errors: Errors) -> tuple[int, int]:
    try:
        low, high = int(min_hours), int(max_hours)
    except (TypeError, ValueError):
        _add(errors, "min_hours", "Whole hours.")
        return 1, 1
    if isinstance(min_hours, bool) or isinstance(max_hours, bool):
        _add(errors, "min_hours", "Whole hours.")
    if not 1 <= low <= MAX_HOURS:
        _add(errors, "min_hours", f"From 1 to {MAX_HOURS}.")
    if not 1 <= high <= MAX_HOURS:
        _add(errors, "max_hours", f"From 1 to {MAX_HOURS}.")
    elif low > high:
        _add(errors, "max_hours", "At least the minimum hours.")
    return low, high


# --- Content per kind -----------------------------------------------------------------------


def template_snapshot(template: JobTemplate) -> dict[str, Any]:
    """What a template listing's version holds: its parameters and parts, without the CAD
    uploads (those stay the seller's)."""
    return {
        "parameters": dict(template.parameters or {}),
        "parts": [{k: v for k, v in part.items() if k != "cad_file"} for part in template.parts],
    }


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def template_content_check(content: Any) -> dict[str, Any]:
    """A template version's content: at least one part with a name, material, process and
    positive sizes, then the parts and parameters (scale, quantity) checked as a job
    template's are (`template_spec_check`)."""
    errors: Errors = {}
    if not isinstance(content, dict):
        raise ValidationError({"content": ["An object with parameters and parts."]})
    parameters = content.get("parameters") or {}
    parts = content.get("parts")
    if not isinstance(parts, list) or not parts:
        _add(errors, "parts", "At least one part.")
        parts = []
    cleaned_parts = []
    for index, part in enumerate(parts):
        if not isinstance(part, dict):
            _add(errors, f"parts[{index}]", "An object describing the part.")
            continue
        for key in ("name", "material", "process"):
            if not isinstance(part.get(key), str) or not part[key].strip():
                _add(errors, f"parts[{index}].{key}", "Required.")
        for key in ("size_x_mm", "size_y_mm", "size_z_mm"):
            size = _number(part.get(key))
            if size is None or size <= 0:
                _add(errors, f"parts[{index}].{key}", "A size in mm above 0.")
        cleaned_parts.append({k: v for k, v in part.items() if k != "cad_file"})
    if errors:
        raise ValidationError(errors)
    # then as a job template would be checked: the platform's parameter limits, part fields
    # a job can take (a listing typed by a seller without a job template must hold too)
    cleaned_parts, parameters = template_spec_check(parts=cleaned_parts, parameters=parameters)
    return {"parameters": parameters, "parts": cleaned_parts}


def playbook_content_check(content: Any) -> dict[str, Any]:
    """A playbook's content: at least one step, each with a title, instructions, settings of
    name -> number or short text, and checks (texts); the materials and processes it is for."""
    if not isinstance(content, dict):
        raise ValidationError({"content": ["An object with steps, materials and processes."]})
    errors: Errors = {}
    steps = content.get("steps")
    if not isinstance(steps, list) or not steps:
        raise ValidationError({"steps": ["A playbook needs at least one step."]})
    if len(steps) > MAX_STEPS:
        raise ValidationError({"steps": [f"At most {MAX_STEPS} steps."]})
    cleaned: list[dict[str, Any]] = []
    for index, step in enumerate(steps):
        where = f"steps[{index}]"
        if not isinstance(step, dict):
            _add(errors, where, "An object with title, instructions, settings and checks.")
            continue
        title = step.get("title")
        if not isinstance(title, str) or not title.strip():
            _add(errors, f"{where}.title", "Give the step a title.")
        elif len(title.strip()) > 200:
            _add(errors, f"{where}.title", "At most 200 characters.")
        instructions = step.get("instructions", "")
        if not isinstance(instructions, str):
            _add(errors, f"{where}.instructions", "Text.")
        settings_in = step.get("settings") or {}
        settings_out: dict[str, Any] = {}
        if not isinstance(settings_in, dict):
            _add(errors, f"{where}.settings", "An object of name -> number or short text.")
            settings_in = {}
        for name, value in settings_in.items():
            key = str(name).strip()
            if not key or len(key) > MAX_SETTING_CHARS:
                _add(errors, f"{where}.settings", f"Names of 1 to {MAX_SETTING_CHARS} characters.")
            elif isinstance(value, bool) or not isinstance(value, int | float | str):
                _add(errors, f"{where}.settings.{key}", "A number or a short text.")
            elif isinstance(value, str) and len(value.strip()) > MAX_SETTING_CHARS:
                _add(
                    errors,
                    f"{where}.settings.{key}",
                    f"Text of at most {MAX_SETTING_CHARS} characters.",
                )
            else:
                settings_out[key] = value.strip() if isinstance(value, str) else value
        checks = step.get("checks") or []
        if not isinstance(checks, list) or not all(isinstance(c, str) for c in checks):
            _add(errors, f"{where}.checks", "A list of texts.")
            checks = []
        cleaned.append(
            {
                "title": title.strip() if isinstance(title, str) else "",
                "instructions": instructions.strip() if isinstance(instructions, str) else "",
                "settings": settings_out,
                # the order the seller gave (PostgreSQL's jsonb keeps object keys its own way)
                "setting_order": list(settings_out),
                "checks": [c.strip() for c in checks if c.strip()],
            }
        )
    materials = _catalogue_values(content.get("materials") or [], "materials", errors)
    processes = _catalogue_values(content.get("processes") or [], "processes", errors)
    _pairing(processes, materials, errors)
    if errors:
        raise ValidationError(errors)
    return {"steps": cleaned, "materials": materials, "processes": processes}


def playbook_step_settings(step: dict[str, Any]) -> list[tuple[str, Any]]:
    """A playbook step's settings as (name, value) in the seller's order; names missing from
    `setting_order` (content written before it was kept) follow in name order."""
    values = step.get("settings") or {}
    order = [name for name in step.get("setting_order") or [] if name in values]
    order += sorted(name for name in values if name not in order)
    return [(name, values[name]) for name in order]


def capacity_nodes(*, organization: Organization, node_kind: str) -> Any:
    """The seller's approved, working nodes of `node_kind`."""
    return FabricationNode.objects.filter(
        vendor=organization, kind=node_kind, approval=FabricationNode.Approval.APPROVED
    ).exclude(status=FabricationNode.Status.DECOMMISSIONED)


def capacity_kinds(*, organization: Organization) -> list[tuple[str, str]]:
    """The node kinds the organization could sell capacity of (it has approved nodes)."""
    kinds = set(
        FabricationNode.objects.filter(
            vendor=organization, approval=FabricationNode.Approval.APPROVED
        )
        .exclude(status=FabricationNode.Status.DECOMMISSIONED)
        .values_list("kind", flat=True)
    )
    return [(value, label) for value, label in FabricationNode.Kind.choices if value in kinds]


def _capacity_check(*, organization: Organization, node_kind: str, errors: Errors) -> list[Any]:
    if node_kind not in FabricationNode.Kind.values:
        _add(errors, "node_kind", f"One of {', '.join(FabricationNode.Kind.values)}.")
        return []
    nodes = list(capacity_nodes(organization=organization, node_kind=node_kind))
    if not nodes:
        label = FabricationNode.Kind(node_kind).label
        _add(
            errors,
            "node_kind",
            f"{organization.name} has no approved {label} node: capacity is sold only on "
            "approved nodes.",
        )
    return nodes


def _node_facets(nodes: list[FabricationNode], attribute: str) -> list[str]:
    values: list[str] = []
    for node in nodes:
        for value in getattr(node, attribute) or []:
            clean = " ".join(str(value).split()).lower()[:MAX_FACET_CHARS]
            if clean and clean not in values:
                values.append(clean)
    return values[:MAX_FACETS]


def _template_of(raw: Any, organization: Organization, errors: Errors) -> JobTemplate | None:
    if raw is None or raw == "":
        _add(
            errors,
            "template",
            "Choose the job template to sell, or give its parts and parameters as content.",
        )
        return None
    template = raw if isinstance(raw, JobTemplate) else None
    if template is None:
        try:
            template = JobTemplate.objects.filter(pk=int(raw)).first()
        except (TypeError, ValueError):
            template = None
    if template is None or template.organization_id != organization.pk:
        _add(errors, "template", f"Choose a job template of {organization.name}.")
        return None
    return template


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


# --- Services -------------------------------------------------------------------------------


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


def _part_facets(content: dict[str, Any], key: str) -> list[str]:
    values: list[str] = []
    for part in content.get("parts", []):
        value = " ".join(str(part.get(key, "")).split()).lower()[:MAX_FACET_CHARS]
        if value and value not in values:
            values.append(value)
    return values[:MAX_FACETS]


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


@transaction.atomic
def listing_image_add(
    *, by: User, listing: Listing, file: UploadedFile, alt: str = ""
) -> ListingImage:
    """A PNG, JPEG or WebP picture (checked by opening it, not by its name) of at most 5 MB;
    at most 8 per listing."""
    _require_manage(by=by, listing=listing)
    listing = Listing.objects.select_for_update().get(pk=listing.pk)
    _not_retired(listing)
    if listing.images.count() >= MAX_IMAGES:
        raise ValidationError({"image": [f"At most {MAX_IMAGES} images per listing."]})
    # (the front door bounds the request at this plus the multipart overhead: settings.py)
    limit = int(settings.MARKETPLACE_IMAGE_MAX_BYTES)
    if file.size is not None and file.size > limit:
        raise ValidationError({"image": [f"At most {limit / 1024 / 1024:g} MB."]})
    if len(alt) > 200:
        raise ValidationError({"alt": ["At most 200 characters."]})
    try:
        file.seek(0)
        with Image.open(file) as picture:
            kind = picture.format or ""
            width, height = picture.size
            picture.verify()
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError):
        raise ValidationError({"image": ["Not an image: upload a PNG, JPEG or WebP."]}) from None
    if kind not in IMAGE_FORMATS:
        raise ValidationError(
            {"image": [f"{kind or 'This'} images aren't taken: PNG, JPEG or WebP."]}
        )
    file.seek(0)
    file.name = f"listing-{listing.pk}.{IMAGE_FORMATS[kind]}"
    position = (listing.images.aggregate(top=Max("position"))["top"] or 0) + 1
    image = ListingImage.objects.create(
        listing=listing,
        image=file,
        alt=alt.strip(),
        position=position,
        width=width,
        height=height,
    )
    _audit(by=by, listing=listing, what="image added", image=image.pk)
    return image


@transaction.atomic
def listing_image_delete(*, by: User, image: ListingImage) -> None:
    listing = image.listing
    _require_manage(by=by, listing=listing)
    _not_retired(listing)
    name, storage, pk = image.image.name or "", image.image.storage, image.pk
    image.delete()
    transaction.on_commit(lambda: storage.delete(name))
    _audit(by=by, listing=listing, what="image removed", image=pk)


@transaction.atomic
def listing_image_move(*, by: User, image: ListingImage, position: Any) -> ListingImage:
    """Puts the image at `position` (1 is the cover, shown on cards) among the listing's
    images and numbers them all 1..n again."""
    listing = image.listing
    _require_manage(by=by, listing=listing)
    listing = Listing.objects.select_for_update().get(pk=listing.pk)
    _not_retired(listing)
    images = list(listing.images.order_by("position", "id"))
    if isinstance(position, bool):
        position = None
    try:
        wanted = int(position)
    except (TypeError, ValueError):
        wanted = 0
    if not 1 <= wanted <= len(images):
        raise ValidationError({"position": [f"A whole number from 1 to {len(images)}."]})
    images = [i for i in images if i.pk != image.pk]
    images.insert(wanted - 1, image)
    for number, each in enumerate(images, start=1):
        each.position = number
    ListingImage.objects.bulk_update(images, ["position"])
    _audit(by=by, listing=listing, what="image moved", image=image.pk, position=wanted)
    image.position = wanted
    return image
