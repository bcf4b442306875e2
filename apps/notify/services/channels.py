"""Channels and their rules (a person's own, an organization's by its owners), "send test",
browser push subscriptions and quiet hours."""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from datetime import time as clock
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from django.core.exceptions import PermissionDenied, ValidationError
from django.core.validators import validate_email
from django.db import transaction

from apps.notify.addresses import url_check
from apps.notify.models import (
    Channel,
    Delivery,
    Event,
    EventKind,
    PushSubscription,
    QuietHours,
    Rule,
    Severity,
)
from apps.notify.selectors import channel_can_manage, organization_can_manage
from apps.notify.senders import apprise_url_check
from apps.notify.services.events import delivery_plan
from apps.notify.vapid import vapid_keys
from apps.users.models import Organization, User

USER_ONLY_KINDS = {Channel.Kind.IN_APP, Channel.Kind.WEB_PUSH}
# Kinds a person or organization may subscribe to (digests and tests are the platform's own).
PLATFORM_KINDS = (EventKind.DIGEST, EventKind.TEST, EventKind.ESCALATION)
SUBSCRIBABLE = [k for k in EventKind.values if k not in PLATFORM_KINDS]


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
    return delivery_plan(event=event, channel=channel, grouped=False)


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
