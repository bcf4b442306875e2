"""Sending: one delivery row per (event, channel), sent in order per (channel, subject) under
the row's lock, retried with exponential backoff; the sweeper that resumes what is due."""

from __future__ import annotations

import logging
import time
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Min, Q
from django.utils import timezone

from apps.core.background import task_enqueue
from apps.notify.models import (
    Channel,
    Delivery,
)
from apps.notify.senders import SENDERS, SendError

logger = logging.getLogger(__name__)

# --- delivery -------------------------------------------------------------------------------


def retry_delay(attempts: int) -> float:
    """Seconds before attempt `attempts + 1`: base, 2 x base, 4 x base, ... up to the cap."""
    base, cap = settings.NOTIFY_RETRY_BASE_S, settings.NOTIFY_RETRY_MAX_S
    return float(min(cap, base * 2 ** max(0, attempts - 1)))


def _send_one(delivery: Delivery) -> SendError | None:
    """One attempt, recorded on the row (the caller holds its lock)."""
    channel, event = delivery.channel, delivery.event
    started = time.monotonic()
    delivery.attempts += 1
    error: SendError | None = None
    try:
        sent = SENDERS[Channel.Kind(channel.kind)](channel, event, delivery.pk)
    except SendError as exc:
        error = exc
    except Exception as exc:  # a library's surprise must not lose the alert: log and retry
        logger.exception("notify: sending delivery %s failed", delivery.pk)
        error = SendError(f"{type(exc).__name__}: {exc}")
    delivery.latency_ms = int((time.monotonic() - started) * 1000)
    now = timezone.now()
    if error is None:
        delivery.status = Delivery.Status.SENT
        delivery.response_code = sent.code
        delivery.sent_at, delivery.next_attempt_at, delivery.last_error = now, None, ""
    else:
        delivery.response_code = error.code
        delivery.last_error = error.message
        if not error.retry or delivery.attempts >= settings.NOTIFY_MAX_ATTEMPTS:
            delivery.status, delivery.next_attempt_at = Delivery.Status.FAILED, None
        else:
            delivery.next_attempt_at = now + timedelta(seconds=retry_delay(delivery.attempts))
    delivery.save(
        update_fields=[
            "attempts",
            "status",
            "response_code",
            "latency_ms",
            "last_error",
            "sent_at",
            "next_attempt_at",
            "updated_at",
        ]
    )
    return error if delivery.status == Delivery.Status.PENDING else None


def deliveries_drain(*, delivery_id: int) -> Delivery | None:
    """Send the waiting deliveries of `delivery_id`'s channel and subject, oldest first, up to
    the first that fails (later ones wait behind it: order per subject holds). Returns that
    delivery when this call's attempt failed and a retry is due, else None. Each send happens
    under the row's lock, and only a waiting row is sent: a repeated or late task sends nothing
    twice."""
    key = Delivery.objects.filter(pk=delivery_id).values("channel_id", "subject").first()
    if key is None:
        return None
    while True:
        with transaction.atomic():
            head = (
                Delivery.objects.select_for_update(of=("self",))
                .select_related("event", "channel", "channel__user")
                .filter(status=Delivery.Status.PENDING, **key)
                .order_by("pk")
                .first()
            )
            if head is None:
                return None
            if head.next_attempt_at is not None and head.next_attempt_at > timezone.now():
                return None  # backing off: its own retry comes back for it and those behind
            failed = _send_one(head)
        if failed is not None:
            return head


def deliveries_resume(*, now: datetime | None = None) -> int:
    """The sweeper (every minute): queue a drain for every channel and subject with a delivery
    due and nobody working on it (a retry lost with a broker or worker restart, an eager run in
    tests). Returns how many were queued."""
    from apps.notify.tasks import delivery_send_task

    now = now or timezone.now()
    due = (
        Delivery.objects.filter(status=Delivery.Status.PENDING)
        .filter(Q(next_attempt_at__lte=now) | Q(next_attempt_at__isnull=True))
        .values("channel_id", "subject")
        .annotate(head=Min("pk"))
    )
    queued = 0
    for row in due:
        queued += task_enqueue(delivery_send_task, row["head"])
    return queued
