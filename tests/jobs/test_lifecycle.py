from apps.jobs.lifecycle import ALLOWED_TRANSITIONS, can_transition, job_status_from_parts
from apps.jobs.models import Status as S


def test_only_the_forward_chain_and_cancel_are_allowed():
    chain = [S.SUBMITTED, S.VALIDATED, S.SCHEDULED, S.ASSIGNED, S.IN_PROGRESS, S.COMPLETED]
    for before, after in zip(chain, chain[1:], strict=False):
        assert can_transition(before, after)
        assert not can_transition(after, before)
    assert can_transition(S.IN_PROGRESS, S.FAILED)
    assert not can_transition(S.SUBMITTED, S.COMPLETED)  # no skipping
    for status in (S.SUBMITTED, S.VALIDATED, S.SCHEDULED, S.ASSIGNED, S.IN_PROGRESS):
        assert can_transition(status, S.CANCELLED)
    for final in (S.COMPLETED, S.FAILED, S.CANCELLED):
        assert ALLOWED_TRANSITIONS[final] == frozenset()


def test_a_job_follows_its_parts():
    assert job_status_from_parts([S.COMPLETED, S.IN_PROGRESS]) == S.IN_PROGRESS
    assert job_status_from_parts([S.ASSIGNED, S.SCHEDULED, S.COMPLETED]) == S.SCHEDULED
    assert job_status_from_parts([S.COMPLETED, S.CANCELLED]) == S.COMPLETED
    assert job_status_from_parts([S.COMPLETED, S.FAILED]) == S.FAILED
    assert job_status_from_parts([S.CANCELLED, S.CANCELLED]) == S.CANCELLED
