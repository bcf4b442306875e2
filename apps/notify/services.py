"""Raising events, keeping channels and preferences, and delivering: one delivery row per
(event, channel), sent in order per (channel, subject) by a Celery task that retries with
exponential backoff, and repeats within the grouping window held for one digest."""

from __future__ import annotations

import logging
import secrets
import time
from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.validators import validate_email
from django.db import transaction
from django.db.models import Min, Q
from django.utils import timezone

from apps.core.background import task_enqueue, task_enqueue_on_commit
from apps.notify.addresses import url_check
from apps.notify.models import (
    SEVERITY_RANK,
    Channel,
    Delivery,
    Event,
    EventKind,
    PushSubscription,
    Rule,
    Severity,
)
from apps.notify.selectors import channel_can_manage, organization_can_manage
from apps.notify.senders import SENDERS, SendError, apprise_url_check
from apps.notify.vapid import vapid_keys
from apps.users.models import Organization, User

logger = logging.getLogger(__name__)

USER_ONLY_KINDS = {Channel.Kind.IN_APP, Channel.Kind.WEB_PUSH}
# Kinds a person or organization may subscribe to (digests and tests are the platform's own).
SUBSCRIBABLE = [k for k in EventKind.values if k not in (EventKind.DIGEST, EventKind.TEST)]


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
        _plan(event=event, channel=channel)
    return event


def _at_most(rank: int) -> list[str]:
    return [s for s, r in SEVERITY_RANK.items() if r <= rank]


def _plan(*, event: Event, channel: Channel, grouped: bool = True) -> Delivery:
    """The delivery of `event` on `channel`: sent now, or held for the digest when the channel
    already had a message about the same subject within the window (the first critical one of
    the window is never held)."""
    # One planner per channel at a time: two events of one subject must not both count as
    # "the first in the window".
    Channel.objects.select_for_update().filter(pk=channel.pk).first()
    status = Delivery.Status.PENDING
    window = settings.NOTIFY_GROUP_WINDOW_S
    if grouped and window > 0 and event.subject:
        recent = Delivery.objects.filter(
            channel=channel,
            subject=event.subject,
            created_at__gte=timezone.now() - timedelta(seconds=window),
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
                status = Delivery.Status.HELD
    delivery = Delivery.objects.create(
        event=event, channel=channel, subject=event.subject, status=status
    )
    if status == Delivery.Status.PENDING:
        _queue(delivery)
    return delivery


def _queue(delivery: Delivery) -> None:
    from apps.notify.tasks import delivery_send_task

    task_enqueue_on_commit(delivery_send_task, delivery.pk)


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


# --- digests --------------------------------------------------------------------------------


@transaction.atomic
def digests_flush(*, now: datetime | None = None) -> int:
    """Every minute: the held deliveries of each channel and subject whose window has passed
    go out as one digest message. Returns how many digests were made."""
    now = now or timezone.now()
    window = timedelta(seconds=settings.NOTIFY_GROUP_WINDOW_S)
    groups = (
        Delivery.objects.filter(status=Delivery.Status.HELD)
        .values("channel_id", "subject")
        .annotate(oldest=Min("created_at"))
        .filter(oldest__lte=now - window)
    )
    made = 0
    for group in groups:
        held = list(
            Delivery.objects.select_for_update(of=("self",))
            .select_related("event")
            .filter(status=Delivery.Status.HELD, channel_id=group["channel_id"])
            .filter(subject=group["subject"])
            .order_by("pk")
        )
        if not held:
            continue
        events = [d.event for d in held]
        worst = max(events, key=lambda e: SEVERITY_RANK[Severity(e.severity)])
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
        channel = Channel.objects.get(pk=group["channel_id"])
        _plan(event=digest, channel=channel, grouped=False)
        Delivery.objects.filter(pk__in=[d.pk for d in held]).update(
            status=Delivery.Status.GROUPED, digest=digest, updated_at=now
        )
        made += 1
    return made


# --- channels and preferences ---------------------------------------------------------------


def _validate(
    *, kind: str, target: str, secret: str, organization: Organization | None, creating: bool
) -> dict[str, Any]:
    errors: dict[str, list[str]] = {}
    cleaned: dict[str, Any] = {"target": target.strip(), "secret": secret.strip()}
    if kind in USER_ONLY_KINDS and organization is not None:
        errors["kind"] = [f"{Channel.Kind(kind).label} goes to a person, not an organization."]
    if kind == Channel.Kind.EMAIL:
        if organization is not None and not cleaned["target"]:
            errors["target"] = ["Give the e-mail address the organization's alerts go to."]
        elif cleaned["target"]:
            try:
                validate_email(cleaned["target"])
            except ValidationError:
                errors["target"] = ["Enter a valid e-mail address."]
    elif kind == Channel.Kind.WEBHOOK:
        try:
            url_check(cleaned["target"])
        except ValidationError as exc:
            errors.update(exc.message_dict)
        if creating and not cleaned["secret"]:
            # No secret given: one is made, shown once, so every webhook is signed.
            cleaned["secret"] = secrets.token_urlsafe(32)
    elif kind == Channel.Kind.APPRISE:
        cleaned["target"] = ""
        if cleaned["secret"]:
            try:
                apprise_url_check(cleaned["secret"])
            except ValidationError as exc:
                errors.update(exc.message_dict)
        elif creating:
            errors["secret"] = ["Give the Apprise URL of the chat service (slack://, ntfy://...)."]
    elif kind == Channel.Kind.WEB_PUSH and vapid_keys() is None:
        errors["kind"] = ["Browser push is not configured on this platform (no VAPID keys)."]
    if kind in (Channel.Kind.IN_APP, Channel.Kind.WEB_PUSH):
        cleaned["target"] = cleaned["secret"] = ""
    if len(cleaned["target"]) > 500:
        errors["target"] = ["At most 500 characters."]
    if len(cleaned["secret"]) > 2000:
        errors["secret"] = ["At most 2000 characters."]
    if errors:
        raise ValidationError(errors)
    return cleaned


def _rules_check(rules: Sequence[dict[str, str]]) -> list[dict[str, str]]:
    seen: set[str] = set()
    out = []
    for rule in rules:
        kind, severity = rule.get("event_kind", ""), rule.get("min_severity", Severity.WARNING)
        if kind and kind not in SUBSCRIBABLE:
            raise ValidationError({"rules": [f"Unknown event kind {kind!r}."]})
        if severity not in Severity.values:
            raise ValidationError({"rules": [f"Severity must be one of {Severity.values}."]})
        if kind in seen:
            raise ValidationError({"rules": [f"Event kind {kind or 'any'!r} given twice."]})
        seen.add(kind)
        out.append({"event_kind": kind, "min_severity": severity})
    return out


@transaction.atomic
def channel_create(
    *,
    by: User,
    kind: str,
    name: str,
    organization: Organization | None = None,
    target: str = "",
    secret: str = "",
    rules: Sequence[dict[str, str]] = (),
) -> Channel:
    """A channel of `by` (or of `organization`, which `by` must own)."""
    if organization is not None and not organization_can_manage(user=by, organization=organization):
        raise PermissionDenied("Only the organization's owners edit its channels.")
    if kind not in Channel.Kind.values:
        raise ValidationError({"kind": [f"One of {', '.join(Channel.Kind.values)}."]})
    if not name.strip():
        raise ValidationError({"name": ["Give the channel a name."]})
    cleaned = _validate(
        kind=kind, target=target, secret=secret, organization=organization, creating=True
    )
    checked = _rules_check(rules)
    channel = Channel.objects.create(
        kind=kind,
        name=name.strip()[:100],
        user=None if organization is not None else by,
        organization=organization,
        created_by=by,
        **cleaned,
    )
    Rule.objects.bulk_create(Rule(channel=channel, **r) for r in checked)
    return channel


@transaction.atomic
def channel_update(
    *,
    by: User,
    channel: Channel,
    name: str | None = None,
    target: str | None = None,
    secret: str | None = None,
    is_active: bool | None = None,
    rules: Sequence[dict[str, str]] | None = None,
) -> Channel:
    """Change what is given; an empty or absent `secret` keeps the stored one (it is never
    shown back, so a form cannot send it)."""
    if not channel_can_manage(user=by, channel=channel):
        raise PermissionDenied("You may not edit this channel.")
    fields = ["updated_at"]
    if name is not None:
        if not name.strip():
            raise ValidationError({"name": ["Give the channel a name."]})
        channel.name = name.strip()[:100]
        fields.append("name")
    cleaned = _validate(
        kind=channel.kind,
        target=channel.target if target is None else target,
        secret=secret or channel.secret,
        organization=channel.organization,
        creating=False,
    )
    channel.target, channel.secret = cleaned["target"], cleaned["secret"]
    fields += ["target", "secret"]
    if is_active is not None:
        channel.is_active = is_active
        fields.append("is_active")
    channel.save(update_fields=fields)
    if rules is not None:
        checked = _rules_check(rules)
        channel.rules.all().delete()
        Rule.objects.bulk_create(Rule(channel=channel, **r) for r in checked)
    return channel


@transaction.atomic
def channel_delete(*, by: User, channel: Channel) -> None:
    if not channel_can_manage(user=by, channel=channel):
        raise PermissionDenied("You may not delete this channel.")
    channel.delete()


@transaction.atomic
def channel_test(*, by: User, channel: Channel) -> Delivery:
    """The "send test" button: a test event on this channel alone, through the same delivery
    path (so its outcome shows in the delivery log)."""
    if not channel_can_manage(user=by, channel=channel):
        raise PermissionDenied("You may not test this channel.")
    event = Event.objects.create(
        kind=EventKind.TEST,
        severity=Severity.INFO,
        title=f"Test message for {channel.name}",
        body=f"Sent by {by.email} from Imewe. If you can read this, the channel works.",
        subject=f"test:{channel.pk}",
    )
    return _plan(event=event, channel=channel, grouped=False)


# --- browser push ---------------------------------------------------------------------------


@transaction.atomic
def push_subscribe(*, user: User, endpoint: str, p256dh: str, auth: str) -> PushSubscription:
    url_check(endpoint, field="endpoint")
    sub, _ = PushSubscription.objects.update_or_create(
        endpoint=endpoint, defaults={"user": user, "p256dh": p256dh, "auth": auth}
    )
    return sub


def push_unsubscribe(*, user: User, endpoint: str) -> int:
    return PushSubscription.objects.filter(user=user, endpoint=endpoint).delete()[0]
