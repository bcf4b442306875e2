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

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction

from apps.materials.catalog import normalise_name
from apps.materials.models import Material, Spool
from apps.users.models import Organization, User
from apps.users.roles import Action, Scope, scope_for
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
