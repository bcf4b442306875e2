"""Escalation of unacknowledged critical alerts along an organization's on-call rota, then to
the admins."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime, timedelta

from django.conf import settings
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.mail import send_mail
from django.db import transaction
from django.utils import timezone

from apps.core.services import notification_send
from apps.notify.models import (
    Channel,
    Escalation,
    Event,
    EventKind,
    OnCallRota,
    OnCallSlot,
    Severity,
)
from apps.notify.selectors import organization_can_manage
from apps.notify.senders import link_absolute
from apps.notify.services.events import delivery_plan
from apps.users.models import Membership, Organization, User
from apps.users.roles import Role

logger = logging.getLogger(__name__)

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
            delivery_plan(event=event, channel=channel, grouped=False)
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
