"""What the marketplace plugs into jobs from `MarketplaceConfig.ready`:

- a placement provider: parts of a job booked on bought capacity go only to the seller's
  approved nodes of the listing's kind;
- the job page's panel: the template listing the job was made from, each part's playbook
  (its steps, settings and checks), the capacity booking;
- work details: a node agent's queue says which playbook each part follows, with its steps."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

PANEL_TEMPLATE = "marketplace/job_panel.html"


def placement_provider(parts: Sequence[Any]) -> dict[int, frozenset[int]]:
    from apps.marketplace.selectors.uses import booked_nodes

    return booked_nodes(parts=parts)


def job_panel(job: Any, user: Any) -> tuple[str, dict[str, Any]] | None:
    """Shown only on jobs the marketplace supplied something to (the caller may view the job)."""
    from apps.marketplace.selectors.uses import job_marketplace

    supplied = job_marketplace(job=job)
    if supplied is None:
        return None
    return PANEL_TEMPLATE, {"market": supplied, "market_job": job}


def work_details(parts: Sequence[Any]) -> dict[int, dict[str, Any]]:
    from apps.marketplace.selectors.uses import part_playbook_steps

    return {
        part_id: {"playbook": playbook}
        for part_id, playbook in part_playbook_steps(part_ids=[p.pk for p in parts]).items()
    }


def connect() -> None:
    """Registers the marketplace's providers with apps.jobs.providers."""
    from apps.jobs.providers import (
        register_job_panel,
        register_placement_provider,
        register_work_details,
    )

    register_placement_provider(placement_provider)
    register_job_panel(job_panel)
    register_work_details(work_details)
