"""Raising events and planning their deliveries: which channels, now or held (for a digest of
repeats, for quiet hours); and the digests that release what was held."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from django.conf import settings
from django.db import transaction
from django.db.models import Min, Q
from django.utils import timezone

from apps.core.background import task_enqueue_on_commit
from apps.notify.models import (
    SEVERITY_RANK,
    Channel,
    Delivery,
    Event,
    EventKind,
    QuietHours,
    Rule,
    Severity,
)
from apps.users.models import Organization, User

# --- events ---------------------------------------------------------------------------------


@transaction.atomic
def event_raise(
    *,
    kind: str,
    severity: str,
    title: str,
    body: str = "",
    link: str = "",
    subject: str = "",
    data: dict[str, Any] | None = None,
    organizations: Iterable[Organization | int | None] = (),
    users: Iterable[User] = (),
) -> Event:
    """Record that `kind` happened and queue it to every channel of `users` and
    `organizations` whose rules ask for it (after commit). The owning app calls this."""
    if kind not in EventKind.values or severity not in Severity.values:
        raise ValueError(f"Unknown event {kind!r} or severity {severity!r}.")
    event = Event.objects.create(
        kind=kind,
        severity=severity,
        title=title[:200],
        body=body,
        link=link[:300],
        subject=subject[:80],
        data=data or {},
    )
    org_ids = {o if isinstance(o, int) else o.pk for o in organizations if o is not None}
    user_ids = {u.pk for u in users}
    event.organizations.set(org_ids)
    event.users.set(user_ids)
    rank = SEVERITY_RANK[Severity(severity)]
    wanted = Q(event_kind="") | Q(event_kind=kind)
    channels = (
        Channel.objects.filter(is_active=True)
        .filter(Q(user_id__in=user_ids) | Q(organization_id__in=org_ids))
        .filter(rules__in=Rule.objects.filter(wanted).filter(min_severity__in=_at_most(rank)))
        .distinct()
        .order_by("pk")
    )
    for channel in channels:
        delivery_plan(event=event, channel=channel)
    return event


def _at_most(rank: int) -> list[str]:
    return [s for s, r in SEVERITY_RANK.items() if r <= rank]


def delivery_plan(*, event: Event, channel: Channel, grouped: bool = True) -> Delivery:
    """The delivery of `event` on `channel`: sent now, or held (for a digest when the channel
    already had a message about the same subject within the window; until the end of its
    owner's quiet hours). The first critical one of a window, and every critical one in quiet
    hours, is never held."""
    # One planner per channel at a time: two events of one subject must not both count as
    # "the first in the window".
    Channel.objects.select_for_update().filter(pk=channel.pk).first()
    now = timezone.now()
    hold_until: datetime | None = None
    window = settings.NOTIFY_GROUP_WINDOW_S
    if grouped and window > 0 and event.subject:
        recent = Delivery.objects.filter(
            channel=channel,
            subject=event.subject,
            created_at__gte=now - timedelta(seconds=window),
            status__in=[Delivery.Status.PENDING, Delivery.Status.SENT, Delivery.Status.HELD],
        )
        if recent.exists():
            first_critical = (
                event.severity == Severity.CRITICAL
                and not recent.filter(event__severity=Severity.CRITICAL)
                .exclude(status=Delivery.Status.HELD)
                .exists()
            )
            if not first_critical:
                hold_until = now + timedelta(seconds=window)
    quiet = None if event.kind == EventKind.TEST else quiet_until(channel=channel, event=event)
    if quiet is not None:
        hold_until = max(hold_until or quiet, quiet)
    delivery = Delivery.objects.create(
        event=event,
        channel=channel,
        subject=event.subject,
        status=Delivery.Status.PENDING if hold_until is None else Delivery.Status.HELD,
        hold_until=hold_until,
    )
    if hold_until is None:
        delivery_queue(delivery)
    return delivery


def quiet_until(*, channel: Channel, event: Event, now: datetime | None = None) -> datetime | None:
    """When the quiet hours of the channel's owner end, if `event` falls in them and may wait
    (below critical; in-app notices are silent anyway); else None."""
    if (
        event.severity == Severity.CRITICAL
        or channel.user_id is None
        or channel.kind == Channel.Kind.IN_APP
    ):
        return None
    quiet = QuietHours.objects.filter(user_id=channel.user_id).first()
    if quiet is None or quiet.start == quiet.end:
        return None
    zone = ZoneInfo(quiet.timezone)
    local = (now or timezone.now()).astimezone(zone)
    t = local.time()
    today_end = datetime.combine(local.date(), quiet.end, tzinfo=zone)
    if quiet.start < quiet.end:  # within one day: 13:00-14:00
        return today_end if quiet.start <= t < quiet.end else None
    if t >= quiet.start:  # overnight, before midnight: ends tomorrow
        return today_end + timedelta(days=1)
    return today_end if t < quiet.end else None


def delivery_queue(delivery: Delivery) -> None:
    from apps.notify.tasks import delivery_send_task

    task_enqueue_on_commit(delivery_send_task, delivery.pk)


# --- digests --------------------------------------------------------------------------------


@transaction.atomic
def digests_flush(*, now: datetime | None = None) -> int:
    """Every minute: the held deliveries of each channel and subject whose hold has ended go
    out as one digest message (one alone goes out as itself); a group still in its owner's
    quiet hours waits, unless it holds something critical. Returns how many were released."""
    now = now or timezone.now()
    groups = (
        Delivery.objects.filter(status=Delivery.Status.HELD)
        .values("channel_id", "subject")
        .annotate(due=Min("hold_until"))
        .filter(due__lte=now)
    )
    released = 0
    for group in groups:
        held = list(
            Delivery.objects.select_for_update(of=("self",))
            .select_related("event", "channel")
            .filter(status=Delivery.Status.HELD, channel_id=group["channel_id"])
            .filter(subject=group["subject"])
            .order_by("pk")
        )
        if not held:
            continue
        channel = held[0].channel
        events = [d.event for d in held]
        worst = max(events, key=lambda e: SEVERITY_RANK[Severity(e.severity)])
        if quiet_until(channel=channel, event=worst, now=now) is not None:
            continue
        released += 1
        if len(held) == 1:
            Delivery.objects.filter(pk=held[0].pk).update(
                status=Delivery.Status.PENDING, hold_until=None, updated_at=now
            )
            delivery_queue(held[0])
            continue
        digest = Event.objects.create(
            kind=EventKind.DIGEST,
            severity=worst.severity,
            title=f"{len(events)} more alerts: {events[-1].title}"[:200],
            body="\n".join(
                f"{timezone.localtime(e.created_at):%H:%M} {Severity(e.severity).label}: {e.title}"
                for e in events
            ),
            link=events[-1].link,
            subject=group["subject"],
            data={"events": [e.pk for e in events]},
        )
        delivery_plan(event=digest, channel=channel, grouped=False)
        Delivery.objects.filter(pk__in=[d.pk for d in held]).update(
            status=Delivery.Status.GROUPED, digest=digest, updated_at=now
        )
    return released
