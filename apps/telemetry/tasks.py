from __future__ import annotations

from celery import shared_task
from django.db import OperationalError

from apps.telemetry.rollups import late_ranges_refresh


@shared_task(autoretry_for=(OperationalError,), retry_backoff=60, max_retries=3)
def rollups_refresh_late_task() -> int:
    """Every few minutes (beat): re-materialize the continuous aggregates where late telemetry
    landed; returns how many refresh calls it made (0 off TimescaleDB)."""
    return len(late_ranges_refresh())
