"""Checks of a listing's fields (price, currency, licence, texts, tags, catalogue materials and
processes and their pairing, capacity hours) and of who may sell or change a listing.

Field errors gather in an `Errors` of field -> [messages] (playbook steps by index:
`steps[2].title`), so forms and the API put each one where it belongs."""

from __future__ import annotations

from collections.abc import Iterable
from decimal import Decimal, InvalidOperation
from typing import Any

from django.conf import settings
from django.core.exceptions import PermissionDenied, ValidationError

from apps.marketplace.models import Listing
from apps.marketplace.selectors.listings import listing_can_manage
from apps.users.models import Organization, User
from apps.users.roles import Action, Scope, scope_for
from apps.vendors import catalog

MIN_PRICE = Decimal("0.50")
MAX_PRICE = Decimal("1000000000")
MAX_FACETS = 10
MAX_FACET_CHARS = 40
MAX_HOURS = 10000
Errors = dict[str, list[str]]


def _add(errors: Errors, field: str, message: str) -> None:
    errors.setdefault(field, []).append(message)


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
