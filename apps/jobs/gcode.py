"""Printers behind their own server (OctoPrint, Moonraker, PrusaLink) print the file they are
sent: the gateway's printer work agent uploads a part's G-code and starts it, and fails a part
that has only a model or dimensions (it does not slice). So the scheduler offers such printers
only parts sliced as G-code; the rest go to machines that make them from a model.

A node is such a printer when its current configuration profile connects it through one
(`{"edge": {"protocol": "octoprint", ...}}`, as a managed gateway reads it)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from apps.jobs.models import CadFile
from apps.vendors.models import FabricationNode, NodeConfigProfile

PRINTER_SERVERS = ("octoprint", "moonraker", "prusalink")  # edge/sources/printer.py


def gcode_only_nodes() -> set[int]:
    """The nodes whose current configuration connects them through a printer's own server."""
    candidates = set(
        NodeConfigProfile.objects.filter(config__edge__protocol__in=PRINTER_SERVERS).values_list(
            "node_id", flat=True
        )
    )
    if not candidates:
        return set()
    current: dict[int, Any] = {}
    for node_id, config in (
        NodeConfigProfile.objects.filter(node_id__in=candidates)
        .order_by("node_id", "-version")
        .values_list("node_id", "config")
    ):
        current.setdefault(node_id, config)  # the highest version comes first
    return {
        node_id
        for node_id, config in current.items()
        if isinstance(config, dict)
        and isinstance(config.get("edge"), dict)
        and config["edge"].get("protocol") in PRINTER_SERVERS
    }


def _not_sliced(parts: Sequence[Any]) -> list[Any]:
    sliced = set(
        CadFile.objects.filter(
            pk__in={p.cad_file_id for p in parts if p.cad_file_id}, format=CadFile.Format.GCODE
        ).values_list("pk", flat=True)
    )
    return [p for p in parts if p.cad_file_id not in sliced]


def gcode_placement(parts: Sequence[Any]) -> dict[int, frozenset[int]]:
    """{part id: every node but the G-code-only printers} for the parts without G-code."""
    only_gcode = gcode_only_nodes()
    if not only_gcode or not parts:
        return {}
    others = frozenset(
        FabricationNode.objects.exclude(pk__in=only_gcode).values_list("pk", flat=True)
    )
    return {part.pk: others for part in _not_sliced(parts)}


def gcode_explainer(parts: Sequence[Any]) -> dict[int, str]:
    if not parts or not gcode_only_nodes():
        return {}
    why = "a machine that makes it from a model (printers behind their own server print G-code)"
    return {part.pk: why for part in _not_sliced(parts)}
