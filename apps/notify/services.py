"""Raising events, keeping channels and preferences, and delivering: one delivery row per
(event, channel), sent in order per (channel, subject) by a Celery task that retries with
exponential backoff, and repeats within the grouping window held for one digest."""

from __future__ import annotations

import logging
import secrets
import time
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime, timedelta
from datetime import time as clock
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from django.conf import settings
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.mail import send_mail
from django.core.validators import validate_email
from django.db import transaction
from django.db.models import Min, Q
from django.utils import timezone

from apps.core.background import task_enqueue, task_enqueue_on_commit
from apps.core.services import notification_send
from apps.notify.addresses import url_check
from apps.notify.models import (
    SEVERITY_RANK,
    Channel,
    Delivery,
    Escalation,
    Event,
    EventKind,
    OnCallRota,
    OnCallSlot,
    PushSubscription,
    QuietHours,
    Rule,
    Severity,
)
from apps.notify.selectors import channel_can_manage, organization_can_manage
from apps.notify.senders import SENDERS, SendError, apprise_url_check, link_absolute
from apps.notify.vapid import vapid_keys
from apps.users.models import Membership, Organization, User
from apps.users.roles import Role

logger = logging.getLogger(__name__)

USER_ONLY_KINDS = {Channel.Kind.IN_APP, Channel.Kind.WEB_PUSH}
# Kinds a person or organization may subscribe to (digests and tests are the platform's own).
PLATFORM_KINDS = (EventKind.DIGEST, EventKind.TEST, EventKind.ESCALATION)
SUBSCRIBABLE = [k for k in EventKind.values if k not in PLATFORM_KINDS]


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
        _queue(delivery)
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
            _queue(held[0])
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
        _plan(event=digest, channel=channel, grouped=False)
        Delivery.objects.filter(pk__in=[d.pk for d in held]).update(
            status=Delivery.Status.GROUPED, digest=digest, updated_at=now
        )
    return released


# --- escalation -----------------------------------------------------------------------------

# "ticket" -> a function telling whether ticket <id> was acknowledged (or no longer needs it);
# registered by the app that owns the thing (maintenance, from its AppConfig.ready).
ESCALATION_CHECKS: dict[str, Callable[[int], bool]] = {}


def escalation_check_register(prefix: str, check: Callable[[int], bool]) -> None:
    ESCALATION_CHECKS[prefix] = check


def _rota_for(organization_ids: Iterable[int | None]) -> OnCallRota | None:
    for org_id in organization_ids:
        if org_id is not None:
            rota = OnCallRota.objects.filter(organization_id=org_id).first()
            if rota is not None:
                return rota
    return None


def escalation_start(*, event: Event, key: str, organizations: Iterable[int | None]) -> Escalation:
    """Watch a critical alert: if the owning app does not report it acknowledged within the
    rota's time, the next on-call person hears of it, then the next, then the admins."""
    rota = _rota_for(organizations)
    minutes = rota.ack_minutes if rota else settings.NOTIFY_ESCALATE_AFTER_MIN
    escalation, _ = Escalation.objects.get_or_create(
        key=key,
        defaults={
            "event": event,
            "organization": rota.organization if rota else None,
            "next_at": timezone.now() + timedelta(minutes=minutes),
        },
    )
    return escalation


def escalations_run(*, now: datetime | None = None) -> int:
    """Every minute: each due escalation whose alert is still unacknowledged calls its next
    person. Returns how many people were called."""
    now = now or timezone.now()
    called = 0
    due = Escalation.objects.filter(done_at__isnull=True, next_at__lte=now).values_list(
        "pk", flat=True
    )
    for pk in list(due):
        with transaction.atomic():
            escalation = (
                Escalation.objects.select_for_update(skip_locked=True)
                .select_related("event")
                .filter(pk=pk, done_at__isnull=True)
                .first()
            )
            if escalation is not None:
                called += _escalate(escalation, now=now)
    return called


def _escalate(escalation: Escalation, *, now: datetime) -> int:
    prefix, _, ident = escalation.key.partition(":")
    check = ESCALATION_CHECKS.get(prefix)
    if check is None or not ident.isdigit() or check(int(ident)):
        escalation.done_at, escalation.outcome = now, "acknowledged"
        escalation.save(update_fields=["done_at", "outcome", "updated_at"])
        return 0
    rota = (
        OnCallRota.objects.filter(organization_id=escalation.organization_id).first()
        if escalation.organization_id
        else None
    )
    slots = list(rota.slots.select_related("user").order_by("position")) if rota else []
    minutes = rota.ack_minutes if rota else settings.NOTIFY_ESCALATE_AFTER_MIN
    if escalation.step < len(slots):
        targets = [slots[escalation.step].user]
        escalation.outcome = f"called {targets[0].email}"
    else:
        targets = list(User.objects.filter(role=Role.ADMIN, is_active=True).order_by("pk"))
        escalation.done_at = now
        escalation.outcome = "called the admins"
    escalation.step += 1
    escalation.next_at = now + timedelta(minutes=minutes)
    escalation.save(update_fields=["step", "next_at", "done_at", "outcome", "updated_at"])
    original = escalation.event
    waited = int((now - original.created_at).total_seconds() // 60)
    event = Event.objects.create(
        kind=EventKind.ESCALATION,
        severity=Severity.CRITICAL,
        title=f"Not acknowledged after {waited} min: {original.title}"[:200],
        body=original.body,
        link=original.link,
        subject=original.subject,
        data={"escalation": escalation.pk, "event": original.pk, "step": escalation.step},
    )
    event.users.set(targets)
    for user in targets:
        # Being on call means hearing of it: every active channel of the person, whatever its
        # rules, and at least in-app and by e-mail when they have none.
        channels = Channel.objects.filter(user=user, is_active=True).order_by("pk")
        for channel in channels:
            _plan(event=event, channel=channel, grouped=False)
        if not channels:
            notification_send(
                user=user, title=event.title, body=event.body, level="critical", link=event.link
            )
            _mail_later(user.email, event)
    return len(targets)


def _mail_later(to: str, event: Event) -> None:
    subject, body = (
        f"[Imewe] Critical: {event.title}",
        f"{event.body}\n\n{link_absolute(event.link)}",
    )

    def send() -> None:
        try:
            send_mail(subject, body.strip(), None, [to])
        except OSError:
            logger.warning("notify: escalation e-mail to %s not sent", to, exc_info=True)

    transaction.on_commit(send)


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


# --- quiet hours and on-call rotas ----------------------------------------------------------


@transaction.atomic
def quiet_hours_set(*, user: User, start: clock, end: clock, tz: str = "UTC") -> QuietHours:
    try:
        ZoneInfo(tz)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValidationError({"timezone": [f"Unknown time zone {tz!r}."]}) from None
    if start == end:
        raise ValidationError(
            {"end": ["The quiet hours must end at another time than they start."]}
        )
    quiet, _ = QuietHours.objects.update_or_create(
        user=user, defaults={"start": start, "end": end, "timezone": tz}
    )
    return quiet


def quiet_hours_clear(*, user: User) -> None:
    QuietHours.objects.filter(user=user).delete()


@transaction.atomic
def rota_set(
    *, by: User, organization: Organization, members: Sequence[int], ack_minutes: int
) -> OnCallRota:
    """The organization's on-call order (user ids, first called first): its members only."""
    if not organization_can_manage(user=by, organization=organization):
        raise PermissionDenied("Only the organization's owners set its on-call rota.")
    if not 1 <= ack_minutes <= 1440:
        raise ValidationError({"ack_minutes": ["Between 1 and 1440 minutes."]})
    if len(set(members)) != len(members):
        raise ValidationError({"members": ["A person is on the rota once."]})
    known = set(
        Membership.objects.filter(
            organization=organization, user_id__in=members, user__is_active=True
        ).values_list("user_id", flat=True)
    )
    strangers = [m for m in members if m not in known]
    if strangers:
        raise ValidationError(
            {"members": [f"Not active members of {organization.name}: {strangers}."]}
        )
    rota, _ = OnCallRota.objects.update_or_create(
        organization=organization, defaults={"ack_minutes": ack_minutes}
    )
    rota.slots.all().delete()
    OnCallSlot.objects.bulk_create(
        OnCallSlot(rota=rota, user_id=user_id, position=n) for n, user_id in enumerate(members)
    )
    return rota
