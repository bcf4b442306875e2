"""Spools: imported from Spoolman (github.com/Donkie/Spoolman, its REST API at /api/v1/), the
filament inventory many print farms keep.

    GET /api/v1/spool   [{"id", "filament": {"name", "material", "color_hex", "vendor"},
                          "remaining_weight", "location", "archived", ...}]

Each Spoolman spool becomes (or updates) the vendor's Spool with the same `spoolman_id`: the
material by name from the catalog, the colour, the grams left, and the printer it is loaded on
when its `location` is the name of one of the vendor's nodes. A spool that cannot be taken (an
unknown material, a bad colour) is reported with the reason, never guessed.
"""

from __future__ import annotations

import json
import re
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.urls import reverse

from apps.core.audit import audit_log
from apps.core.background import task_enqueue_on_commit
from apps.core.models import AuditLog, Notification
from apps.core.services import notification_send
from apps.materials.catalog import normalise_name
from apps.materials.models import Material, MaterialUsage, Spool
from apps.materials.selectors import spool_list, stock_nodes
from apps.notify.models import EventKind, Severity
from apps.notify.services import event_raise
from apps.users.models import Organization, User
from apps.users.roles import Action, Scope, scope_for
from apps.vendors.catalog import match_key
from apps.vendors.models import FabricationNode

HEX = re.compile(r"^#?([0-9a-fA-F]{6})$")
MAX_SPOOLS = 5000


class SpoolmanUnavailable(Exception):
    """Spoolman could not be reached or answered something that is not its spool list."""


@dataclass
class SpoolImport:
    created: int = 0
    updated: int = 0
    skipped: dict[int, str] = field(default_factory=dict)  # Spoolman id -> why


def spoolman_fetch(*, url: str, timeout: float = 10.0) -> list[dict[str, Any]]:
    request = urllib.request.Request(url.rstrip("/") + "/api/v1/spool")
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            data = json.loads(response.read(20_000_000))
    except (OSError, ValueError) as exc:  # URLError and HTTPError are OSErrors
        raise SpoolmanUnavailable(f"Spoolman at {url}: {exc}") from None
    if not isinstance(data, list) or not all(isinstance(item, dict) for item in data):
        raise SpoolmanUnavailable(f"Spoolman at {url}: the spool list is not a list of objects")
    if len(data) > MAX_SPOOLS:
        raise SpoolmanUnavailable(f"Spoolman at {url}: over {MAX_SPOOLS} spools")
    return data


@transaction.atomic
def spools_import_spoolman(
    *, vendor: Organization, by: User, spools: list[dict[str, Any]]
) -> SpoolImport:
    scope = scope_for(by, Action.NODE_MANAGE)
    own = scope == Scope.OWN_NODES and vendor.memberships.filter(user=by).exists()
    if scope != Scope.ALL and not own:
        raise PermissionDenied("You may import spools only for your own vendor company.")
    materials = {normalise_name(m.name): m for m in Material.objects.filter(active=True)}
    nodes = {n.name.casefold(): n for n in FabricationNode.objects.filter(vendor=vendor)}
    report = SpoolImport()
    loaded: dict[int, int] = {}  # node id -> Spoolman id, one spool per printer
    for raw in spools:
        spoolman_id = raw.get("id")
        if not isinstance(spoolman_id, int) or isinstance(spoolman_id, bool) or spoolman_id < 1:
            raise ValidationError({"spools": f"A spool without a valid id: {str(raw)[:80]}"})
        if raw.get("archived"):
            continue
        try:
            values = _spool_values(raw, materials, nodes)
        except ValueError as exc:
            report.skipped[spoolman_id] = str(exc)
            continue
        node = values["node"]
        if node is not None:
            if node.pk in loaded:
                report.skipped[spoolman_id] = (
                    f"{node.name} already holds Spoolman spool {loaded[node.pk]}"
                )
                continue
            loaded[node.pk] = spoolman_id
            # the printer's previous spool comes off (it is listed elsewhere now)
            Spool.objects.filter(node=node).exclude(vendor=vendor, spoolman_id=spoolman_id).update(
                node=None
            )
        spool, created = Spool.objects.update_or_create(
            vendor=vendor, spoolman_id=spoolman_id, defaults=values
        )
        if created:
            report.created += 1
        else:
            report.updated += 1
    return report


def _spool_values(
    raw: dict[str, Any], materials: dict[str, Material], nodes: dict[str, FabricationNode]
) -> dict[str, Any]:
    filament = raw.get("filament")
    if not isinstance(filament, dict):
        raise ValueError("no filament")
    material_name = str(filament.get("material") or "")
    material = materials.get(normalise_name(material_name))
    if material is None:
        raise ValueError(f"material {material_name[:40]!r} is not in the catalog")
    match = HEX.match(str(filament.get("color_hex") or ""))
    if match is None:
        raise ValueError(f"colour {str(filament.get('color_hex'))[:20]!r} is not #rrggbb")
    remaining = raw.get("remaining_weight")
    if isinstance(remaining, bool) or not isinstance(remaining, int | float) or remaining < 0:
        raise ValueError("remaining_weight is not a weight in grams")
    location = str(raw.get("location") or "").strip()
    return {
        "material": material,
        "name": str(filament.get("name") or "")[:120],
        "colour_hex": "#" + match.group(1).lower(),
        "remaining_g": float(remaining),
        "node": nodes.get(location.casefold()) if location else None,
    }


# --- Loading, unloading, and what prints take off a spool ---------------------------------------

# the machines that take a spool (filament) or bottle (resin); selectors.spool_nodes lists them
SPOOL_KINDS = (FabricationNode.Kind.FDM_PRINTER, FabricationNode.Kind.SLA_PRINTER)


def spool_low_g() -> float:
    """At or below this many grams a spool is running low (MATERIALS_SPOOL_LOW_G, default 100)."""
    return float(getattr(settings, "MATERIALS_SPOOL_LOW_G", 100))


def _spool_lock(pk: int) -> Spool:
    return Spool.objects.select_for_update(of=("self",)).select_related("material").get(pk=pk)


def _check_manages(*, by: User, spool: Spool, node: FabricationNode | None = None) -> None:
    """Defence in depth: interfaces fetch through the selectors, services check again."""
    if not spool_list(user=by).filter(pk=spool.pk).exists():
        raise PermissionDenied("You do not manage this spool.")
    if node is not None and not stock_nodes(user=by).filter(pk=node.pk).exists():
        raise PermissionDenied("You do not manage this node's material.")


def _rescheduled() -> None:
    # parts waiting for a colour may go now (or, unloaded, no longer to this printer); the beat
    # runs the scheduler every minute anyway
    from apps.jobs.tasks import parts_schedule_task

    task_enqueue_on_commit(parts_schedule_task)


@transaction.atomic
def spool_load(*, by: User, spool: Spool, node: FabricationNode) -> tuple[Spool, Spool | None]:
    """Loads `spool` on the printer `node`. A printer holds one spool: the one it held comes
    off (returned as the second value); a spool loaded elsewhere moves here. The scheduler's
    colour matching sees the change at once, and parts waiting for the colour are placed."""
    _check_manages(by=by, spool=spool, node=node)
    spool = _spool_lock(spool.pk)
    node = FabricationNode.objects.select_for_update().get(pk=node.pk)
    if node.vendor_id != spool.vendor_id:
        raise ValidationError({"node": ["The spool and the printer belong to different vendors."]})
    if node.kind not in SPOOL_KINDS:
        raise ValidationError(
            {"node": [f"{node.name} is a {node.get_kind_display().lower()}: it takes no spool."]}
        )
    wanted = match_key(spool.material.name, kind="material")
    if not any(match_key(m, kind="material") == wanted for m in node.materials or []):
        raise ValidationError(
            {"node": [f"{node.name} does not print {spool.material.name} (its materials)."]}
        )
    if spool.node_id == node.pk:
        return spool, None  # a repeated click
    previous = Spool.objects.select_for_update(of=("self",)).filter(node=node).first()
    if previous is not None:
        previous.node = None
        previous.save(update_fields=["node", "updated_at"])
        audit_log(
            action=AuditLog.Action.UPDATE,
            actor=by,
            obj=previous,
            changes={"node": [node.name, None]},
        )
    was = spool.node.name if spool.node_id is not None and spool.node else None
    spool.node = node
    spool.save(update_fields=["node", "updated_at"])
    audit_log(
        action=AuditLog.Action.UPDATE, actor=by, obj=spool, changes={"node": [was, node.name]}
    )
    _rescheduled()
    return spool, previous


@transaction.atomic
def spool_unload(*, by: User, spool: Spool) -> Spool:
    """Takes `spool` off its printer (back on the shelf); nothing when it is on none."""
    _check_manages(by=by, spool=spool)
    spool = _spool_lock(spool.pk)
    if spool.node_id is None:
        return spool
    was = FabricationNode.objects.values_list("name", flat=True).get(pk=spool.node_id)
    spool.node = None
    spool.save(update_fields=["node", "updated_at"])
    audit_log(action=AuditLog.Action.UPDATE, actor=by, obj=spool, changes={"node": [was, None]})
    _rescheduled()
    return spool


def spool_take_for_part(*, usage: MaterialUsage) -> None:
    """Takes what a finished part used (`usage.used_g`: the node's report, else the estimate;
    for a failed part the share printed) off the spool loaded on its node, never below zero,
    and says so on `usage` (saved by the caller). The spool's material must be the part's:
    a spool of something else means the records are out of date, and it is left alone with
    that reason. The vendor hears once when a spool falls to the low mark."""
    if usage.node_id is None:
        return
    found = Spool.objects.filter(node_id=usage.node_id).values_list("pk", flat=True).first()
    if found is None:
        usage.spool_note = "no spool is loaded on the node"
        return
    spool = _spool_lock(found)
    usage.spool = spool
    if usage.material_id != spool.material_id:
        usage.spool_note = (
            f"the loaded spool is {spool.material.name}, the part {usage.material_name}"
        )[:200]
        return
    if usage.used_g <= 0:
        usage.spool_note = "the part used nothing"
        return
    before = spool.remaining_g
    taken = min(usage.used_g, before)
    spool.remaining_g = round(before - taken, 3)
    spool.save(update_fields=["remaining_g", "updated_at"])
    usage.spool_taken_g = round(taken, 3)
    usage.spool_note = (
        "taken from the spool"
        if taken >= usage.used_g
        else f"the spool had only {before:g} g of the {usage.used_g:g} g"
    )
    low = spool_low_g()
    if before > low >= spool.remaining_g:
        _tell_low(spool, node_id=usage.node_id)


def _tell_low(spool: Spool, *, node_id: int) -> None:
    node = FabricationNode.objects.select_related("vendor").get(pk=node_id)
    colour = f"{spool.material.name} {spool.colour_hex}"
    title = f"Spool {colour} on {node.name} is running low"
    body = (
        f"{spool.remaining_g:.0f} g left{f' of {spool.name}' if spool.name else ''}; "
        f"load a fresh spool before the next long print."
    )
    link = reverse("materials:spools")
    people = list(
        User.objects.filter(memberships__organization=node.vendor, is_active=True).distinct()
    )
    event_raise(
        kind=EventKind.SPOOL_LOW,
        severity=Severity.WARNING,
        title=title,
        body=body,
        link=link,
        subject=f"spool:{spool.pk}",
        data={"spool": spool.pk, "node": node.pk, "remaining_g": spool.remaining_g},
        organizations=[node.vendor_id],
        users=people,
    )
    for user in people:
        notification_send(
            user=user, title=title, body=body, level=Notification.Level.WARNING, link=link
        )
