from __future__ import annotations

from celery import shared_task

from apps.twins.services import locks_expire


@shared_task
def locks_expire_task() -> int:
    """Marks locks past their TTL as expired and tells the twins' rooms."""
    return locks_expire()
