"""How materials plugs into jobs and telemetry (connected from MaterialsConfig.ready):

- `part_finished` -> the part's usage is recorded and taken from stock;
- `telemetry_ingested` -> a node's `material_remaining` sets its loaded stock;
- the scheduler's stock provider: grams on hand per node and material;
- the job page's panel: material used and wasted per part.

A receiver that fails logs and lets the caller go on: the daily reconciliation records a
missed usage (`usage_reconcile`), and the next reading corrects the stock."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from apps.jobs.providers import (
    part_finished,
    register_job_panel,
    register_placement_explainer,
    register_placement_provider,
    register_stock_provider,
)
from apps.telemetry.services import telemetry_ingested
from apps.telemetry.validation import SIGNALS

logger = logging.getLogger(__name__)
REMAINING = SIGNALS.index("material_remaining")


def on_part_finished(
    sender: Any, part_id: int, node_id: int | None, status: str, report: Any = None, **kw: Any
) -> None:
    from apps.materials.services.usage import usage_record

    try:
        usage_record(part_id=part_id, node_id=node_id, report=dict(report or {}))
    except Exception:  # the daily reconciliation records it
        logger.exception("Material usage of part %s not recorded", part_id)


def on_telemetry(sender: Any, node_id: int, point: Any, **kwargs: Any) -> None:
    remaining = point.values[REMAINING]
    if remaining is None:
        return
    from apps.materials.services.stock import inventory_from_telemetry

    try:
        inventory_from_telemetry(node_id=node_id, remaining_g=remaining, at=point.time)
    except Exception:  # the next reading sets it again
        logger.exception("material_remaining of node %s not applied", node_id)


def colour_placement(parts: Sequence[Any]) -> dict[int, frozenset[int]]:
    """A part with a colour may go only to printers with a spool of its material in that
    colour loaded (and enough grams left on it for the estimate)."""
    from apps.materials.selectors import spool_nodes_for

    return spool_nodes_for(parts)


def colour_explainer(parts: Sequence[Any]) -> dict[int, str]:
    return {
        part.pk: f"a printer with {part.material} {part.colour_hex} loaded"
        for part in parts
        if part.colour_hex
    }


def stock_provider(node_ids: Sequence[int]) -> dict[int, dict[str, float]]:
    from apps.materials.selectors import node_stock_grams

    return node_stock_grams(list(node_ids))


def job_panel(job: Any, user: Any) -> tuple[str, dict[str, Any]] | None:
    """Material used and wasted per finished part of `job` (the caller may view the job)."""
    from apps.materials.selectors import job_usage

    rows = job_usage(job=job)
    totals = {
        "used_g": sum(r.used_g for r in rows),
        "waste_g": sum(r.waste_g for r in rows),
    }
    return "materials/job_panel.html", {"usage_rows": rows, "usage_totals": totals}


def connect() -> None:
    part_finished.connect(on_part_finished, dispatch_uid="materials.usage")
    telemetry_ingested.connect(on_telemetry, dispatch_uid="materials.material_remaining")
    register_stock_provider(stock_provider)
    register_placement_provider(colour_placement)
    register_placement_explainer(colour_explainer)
    register_job_panel(job_panel)
