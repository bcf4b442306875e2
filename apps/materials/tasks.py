from __future__ import annotations

from typing import Any

from celery import shared_task
from django.db import OperationalError


@shared_task(autoretry_for=(OperationalError,), retry_backoff=60, max_retries=3)
def inventory_reorder_task() -> dict[str, Any]:
    """Daily: records usage a receiver missed, recomputes reorder points from recent usage and
    drafts the purchase orders of stock at or below its reorder point (once per stock)."""
    from apps.materials.services.stock import inventory_reorder_sweep

    return vars(inventory_reorder_sweep())
