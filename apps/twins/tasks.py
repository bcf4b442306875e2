from __future__ import annotations

from celery import shared_task

from apps.twins.services import locks_expire, simulation_run


@shared_task
def locks_expire_task() -> int:
    """Marks locks past their TTL as expired and tells the twins' rooms."""
    return locks_expire()


@shared_task(acks_late=True)
def simulation_run_task(simulation_id: int) -> str:
    """Computes a queued simulation, saving and announcing its progress as it goes."""
    return simulation_run(pk=simulation_id).status
