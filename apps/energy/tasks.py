from __future__ import annotations

from typing import Any

from celery import shared_task
from django.db import OperationalError

from apps.energy.services import consumption_reconcile, consumption_record


@shared_task(autoretry_for=(OperationalError,), retry_backoff=5, max_retries=3)
def consumption_record_task(part_id: int, report: dict[str, Any] | None = None) -> int | None:
    """A finished part's energy; returns the consumption row's id (None: it never ran)."""
    row = consumption_record(part_id=part_id, report=report)
    return row.pk if row is not None else None


@shared_task(autoretry_for=(OperationalError,), retry_backoff=60, max_retries=3)
def consumption_reconcile_task(days: int = 7) -> int:
    """Daily: consumption for finished parts that have none; returns how many were recorded."""
    return consumption_reconcile(days=days)
