from __future__ import annotations

from typing import Any

from celery import shared_task
from django.db import OperationalError

from apps.notify.services import (
    deliveries_drain,
    deliveries_resume,
    digests_flush,
    escalations_run,
    retry_delay,
)


@shared_task(bind=True, max_retries=None, acks_late=True)
def delivery_send_task(self: Any, delivery_id: int) -> None:
    """Sends the delivery and whatever waits behind it on its channel and subject. A failed
    attempt comes back after the exponential backoff (the row's next_attempt_at); the count of
    attempts is on the row, which gives up after NOTIFY_MAX_ATTEMPTS."""
    failed = deliveries_drain(delivery_id=delivery_id)
    if failed is None or self.request.is_eager:
        # Eagerly (tests, no broker) a retry would run at once; the sweeper resumes it when due.
        return
    raise self.retry(args=(failed.pk,), countdown=retry_delay(failed.attempts))


@shared_task(autoretry_for=(OperationalError,), retry_backoff=5, max_retries=3)
def deliveries_resume_task() -> int:
    """Every minute: drains whose retry was lost (a worker restart) or never queued."""
    return deliveries_resume()


@shared_task(autoretry_for=(OperationalError,), retry_backoff=5, max_retries=3)
def digests_flush_task() -> int:
    """Every minute: held repeats whose grouping window passed go out as one digest each."""
    return digests_flush()


@shared_task(autoretry_for=(OperationalError,), retry_backoff=5, max_retries=3)
def escalations_run_task() -> int:
    """Every minute: unacknowledged critical alerts go to the next on-call person."""
    return escalations_run()
