from __future__ import annotations

from celery import shared_task

from apps.jobs.services import parts_heal, parts_schedule


@shared_task
def parts_schedule_task() -> int:
    """Places validated parts; runs on every submission and every minute. Returns how many
    parts were placed."""
    plan = parts_schedule()
    return sum(1 for a in plan.assignments if a.node is not None)


@shared_task
def parts_heal_task() -> int:
    """Moves parts off nodes that went down or silent, then places them again."""
    moved = parts_heal()
    if moved:
        parts_schedule()
    return len(moved)
