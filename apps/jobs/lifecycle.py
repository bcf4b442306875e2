"""The job and part state machine (a pure table, no database) and how a job follows its parts."""

from __future__ import annotations

from collections.abc import Iterable

from apps.jobs.models import Status

S = Status
FINAL = frozenset({S.COMPLETED, S.FAILED, S.CANCELLED})
ORDER = [S.SUBMITTED, S.VALIDATED, S.SCHEDULED, S.ASSIGNED, S.IN_PROGRESS, S.COMPLETED]

ALLOWED_TRANSITIONS: dict[str, frozenset[str]] = {
    S.SUBMITTED: frozenset({S.VALIDATED, S.CANCELLED}),
    S.VALIDATED: frozenset({S.SCHEDULED, S.CANCELLED}),
    S.SCHEDULED: frozenset({S.ASSIGNED, S.CANCELLED}),
    S.ASSIGNED: frozenset({S.IN_PROGRESS, S.CANCELLED}),
    S.IN_PROGRESS: frozenset({S.COMPLETED, S.FAILED, S.CANCELLED}),
    S.COMPLETED: frozenset(),
    S.FAILED: frozenset(),
    S.CANCELLED: frozenset(),
}
# Self-healing moves a part whose node failed, went to maintenance or fell silent back to
# VALIDATED so the scheduler places it again. Only the platform makes this move.
RESCHEDULE_FROM = frozenset({S.SCHEDULED, S.ASSIGNED, S.IN_PROGRESS})


def can_transition(current: str, target: str) -> bool:
    return target in ALLOWED_TRANSITIONS.get(current, frozenset())


def job_status_from_parts(statuses: Iterable[str]) -> str:
    """A job is as far along as its least advanced live part; any failed part fails it; it is
    completed when every part that was not cancelled is."""
    live = [s for s in statuses if s != S.CANCELLED]
    if not live:
        return S.CANCELLED
    if S.FAILED in live:
        return S.FAILED
    return min(live, key=lambda status: ORDER.index(Status(status)))
