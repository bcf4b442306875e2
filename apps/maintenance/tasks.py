from __future__ import annotations

from typing import Any

from celery import shared_task
from django.conf import settings
from django.core.mail import send_mail
from django.db import OperationalError

from apps.maintenance.models import Ticket
from apps.maintenance.services.monitor import fleet_monitor
from apps.maintenance.services.tickets import ticket_recipients


@shared_task(autoretry_for=(OSError,), retry_backoff=30, max_retries=5)
def ticket_email_task(ticket_id: int) -> int:
    """E-mails a critical ticket to the vendor's staff and the site's operators (retried while
    the mail server is away). Returns how many were written to."""
    ticket = Ticket.objects.select_related("node").get(pk=ticket_id)
    to = [u.email for u in ticket_recipients(ticket.node) if u.email]
    if not to:
        return 0
    link = (
        f"{settings.SITE_URL.rstrip('/')}/maintenance/tickets/{ticket.pk}/"
        if settings.SITE_URL
        else ""
    )
    body = "\n\n".join(
        part
        for part in (
            f"{ticket.get_severity_display()} ticket #{ticket.pk} on {ticket.node.name}: "
            f"{ticket.title}",
            f"Suggested action: {ticket.suggested_action}" if ticket.suggested_action else "",
            link,
        )
        if part
    )
    send_mail(f"[Imewe] Critical: {ticket.title}", body, None, to)
    return len(to)


@shared_task(autoretry_for=(OperationalError,), retry_backoff=5, max_retries=3)
def fleet_monitor_task() -> dict[str, Any]:
    """Every minute: health scores, silent nodes offline, due windows started."""
    return vars(fleet_monitor())


@shared_task(autoretry_for=(OperationalError,), retry_backoff=5, max_retries=3)
def nodes_score_task() -> int:
    """Every two minutes: the active models score every node heard from; returns how many."""
    from apps.maintenance.services.scoring import nodes_score

    return len(nodes_score())


@shared_task(autoretry_for=(OperationalError,), retry_backoff=60, max_retries=3)
def models_train_task() -> dict[str, str]:
    """Nightly: retrains the failure, RUL and per-kind anomaly models; a new version replaces
    the active one only if it is not worse on the same held-out rows."""
    from apps.maintenance.services.training import models_train

    return models_train()
