from __future__ import annotations

from celery import shared_task
from django.conf import settings
from django.core.mail import send_mail
from django.db import OperationalError

from apps.jobs.duration import duration_model_train
from apps.jobs.models import Job
from apps.jobs.services import parts_heal, parts_schedule


# A busy database (SQLite's writer lock in the embedded default, a deadlock victim on PostgreSQL)
# must not leave a submitted job waiting for the next periodic run: retry soon.
@shared_task(autoretry_for=(OperationalError,), retry_backoff=2, max_retries=6)
def parts_schedule_task() -> int:
    """Places validated parts; runs on every submission and every minute. Returns how many
    parts were placed."""
    plan = parts_schedule()
    return sum(1 for a in plan.assignments if a.node is not None)


@shared_task(autoretry_for=(OperationalError,), retry_backoff=2, max_retries=6)
def parts_heal_task() -> int:
    """Moves parts off nodes that went down or silent, then places them again."""
    moved = parts_heal()
    if moved:
        parts_schedule()
    return len(moved)


@shared_task(autoretry_for=(OSError,), retry_backoff=30, max_retries=5)
def job_finished_email_task(job_id: int, title: str, body: str) -> None:
    """E-mail the owner that the job completed or failed (retried if the mail server is away)."""
    job = Job.objects.select_related("owner").get(pk=job_id)
    link = f"{settings.SITE_URL.rstrip('/')}/jobs/{job.pk}/" if settings.SITE_URL else ""
    send_mail(title, f"{body}\n\n{link}".strip(), None, [job.owner.email])


@shared_task(autoretry_for=(OperationalError,), retry_backoff=60, max_retries=3)
def duration_model_train_task() -> dict[str, object]:
    """Nightly: retrains the duration model on the completed parts; reports what happened."""
    result = duration_model_train()
    if isinstance(result, str):
        return {"trained": False, "reason": result}
    return {
        "trained": True,
        "version": result.version,
        "active": result.is_active,
        "decision": result.decision,
        "mae_h": result.metrics["mae_h"],
    }
