"""One function per channel kind that puts one event on that channel. Each returns the
response code (when the channel has one) or raises SendError: `retry` says whether trying
again later may help (a receiver down, a 5xx) or not (a 4xx, a channel misconfigured)."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from datetime import timedelta
from typing import Any
from urllib.parse import urlsplit

import apprise
import requests
from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.mail import send_mail
from pywebpush import WebPushException, webpush

from apps.core.models import Notification
from apps.core.services import notification_send
from apps.notify.addresses import host_check, url_check
from apps.notify.models import Channel, Event, PushSubscription, Severity
from apps.notify.signing import (
    DELIVERY_HEADER,
    EVENT_HEADER,
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    signature_make,
)
from apps.notify.vapid import vapid_keys

# Apprise services that post to a host the user names; the others go to the service's own API.
APPRISE_HOSTED = {
    "json",
    "jsons",
    "form",
    "forms",
    "xml",
    "xmls",
    "ntfy",
    "ntfys",
    "gotify",
    "gotifys",
    "mmost",
    "mmosts",
    "rocket",
    "rockets",
    "matrix",
    "matrixs",
}
RETRYABLE_4XX = {408, 425, 429}


class SendError(Exception):
    def __init__(self, message: str, *, code: int | None = None, retry: bool = True) -> None:
        super().__init__(message)
        self.message = message[:500]
        self.code = code
        self.retry = retry


@dataclass(frozen=True)
class Sent:
    code: int | None


def link_absolute(link: str) -> str:
    if link.startswith("/") and settings.SITE_URL:
        return settings.SITE_URL.rstrip("/") + link
    return link


def event_payload(event: Event, *, delivery_id: int) -> dict[str, Any]:
    return {
        "event": event.pk,
        "delivery": delivery_id,
        "kind": event.kind,
        "severity": event.severity,
        "title": event.title,
        "body": event.body,
        "link": link_absolute(event.link),
        "subject": event.subject,
        "data": event.data,
        "created_at": event.created_at.isoformat(),
    }


def _text(event: Event) -> str:
    return "\n\n".join(p for p in (event.body, link_absolute(event.link)) if p)


IN_APP_SAME_NOTICE = timedelta(minutes=1)


def send_in_app(channel: Channel, event: Event, delivery_id: int) -> Sent:
    if channel.user is None:
        raise SendError("An in-app channel belongs to a person.", retry=False)
    level = {
        Severity.CRITICAL: Notification.Level.CRITICAL,
        Severity.WARNING: Notification.Level.WARNING,
    }.get(Severity(event.severity), Notification.Level.INFO)
    # The platform already puts some events in their people's notifications itself (a ticket
    # to its node's vendor and operators, a job's outcome to its owner): an in-app channel for
    # such an event would show the same notice twice. Same title, same link, since the event.
    shown = Notification.objects.filter(
        user=channel.user,
        title=event.title,
        link=event.link,
        created_at__gte=event.created_at - IN_APP_SAME_NOTICE,
    ).exists()
    if not shown:
        notification_send(
            user=channel.user, title=event.title, body=event.body, level=level, link=event.link
        )
    return Sent(None)


def send_email(channel: Channel, event: Event, delivery_id: int) -> Sent:
    to = channel.target or (channel.user.email if channel.user else "")
    if not to:
        raise SendError("The channel has no e-mail address.", retry=False)
    label = Severity(event.severity).label
    try:
        send_mail(f"[Imewe] {label}: {event.title}", _text(event) or event.title, None, [to])
    except OSError as exc:  # the mail server is away
        raise SendError(f"Mail server: {exc}") from exc
    return Sent(None)


def send_webhook(channel: Channel, event: Event, delivery_id: int) -> Sent:
    try:
        url_check(channel.target)
    except ValidationError as exc:
        raise SendError(" ".join(exc.messages), retry=False) from None
    body = json.dumps(event_payload(event, delivery_id=delivery_id)).encode()
    timestamp = int(time.time())
    headers = {
        "Content-Type": "application/json",
        "User-Agent": "Imewe-Webhook/1",
        TIMESTAMP_HEADER: str(timestamp),
        SIGNATURE_HEADER: signature_make(secret=channel.secret, timestamp=timestamp, body=body),
        EVENT_HEADER: event.kind,
        DELIVERY_HEADER: str(delivery_id),
    }
    try:
        response = requests.post(
            channel.target,
            data=body,
            headers=headers,
            timeout=settings.NOTIFY_HTTP_TIMEOUT_S,
            allow_redirects=False,  # a redirect could lead anywhere, past the address check
        )
    except requests.RequestException as exc:
        raise SendError(f"{type(exc).__name__}: {exc}") from exc
    code = response.status_code
    if 200 <= code < 300:
        return Sent(code)
    retry = code >= 500 or code in RETRYABLE_4XX
    raise SendError(f"The receiver answered {code}.", code=code, retry=retry)


def apprise_url_check(url: str, *, field: str = "secret") -> None:
    """The URL must be one Apprise understands, and one that posts to a host of the user's
    choosing (json://, ntfy://, ...) must name an allowed host."""
    service = apprise.Apprise.instantiate(url)
    if not service:
        raise ValidationError({field: ["Apprise does not understand this URL."]})
    parts = urlsplit(url)
    if parts.scheme.lower() in APPRISE_HOSTED and parts.hostname:
        try:
            port = parts.port or 80
        except ValueError:
            raise ValidationError({field: ["Not a valid URL."]}) from None
        host_check(parts.hostname, port, field=field)


def send_apprise(channel: Channel, event: Event, delivery_id: int) -> Sent:
    try:
        apprise_url_check(channel.secret)
    except ValidationError as exc:
        raise SendError(" ".join(exc.messages), retry=False) from None
    notifier = apprise.Apprise()
    notifier.add(channel.secret)
    kind = {
        Severity.CRITICAL: apprise.NotifyType.FAILURE,
        Severity.WARNING: apprise.NotifyType.WARNING,
    }.get(Severity(event.severity), apprise.NotifyType.INFO)
    # Apprise logs and swallows the service's errors; False is all it says.
    if not notifier.notify(title=event.title, body=_text(event) or event.title, notify_type=kind):
        raise SendError("The chat service did not accept the message (Apprise).")
    return Sent(None)


def send_web_push(channel: Channel, event: Event, delivery_id: int) -> Sent:
    keys = vapid_keys()
    if keys is None:
        raise SendError("Web Push is not configured (no VAPID keys).", retry=False)
    if channel.user is None:
        raise SendError("A browser push channel belongs to a person.", retry=False)
    subscriptions = list(PushSubscription.objects.filter(user=channel.user))
    if not subscriptions:
        raise SendError("No browser of this person has allowed notifications.", retry=False)
    from py_vapid import Vapid

    payload = json.dumps(
        {"title": event.title, "body": event.body, "url": event.link, "tag": event.subject}
    )
    signer = Vapid.from_pem(keys.private_pem.encode())
    codes, failures = [], []
    for sub in subscriptions:
        try:
            url_check(sub.endpoint, field="endpoint")
            response = webpush(
                {"endpoint": sub.endpoint, "keys": {"p256dh": sub.p256dh, "auth": sub.auth}},
                data=payload,
                vapid_private_key=signer,
                vapid_claims={"sub": settings.VAPID_CLAIMS_SUB},
                timeout=settings.NOTIFY_HTTP_TIMEOUT_S,
            )
            codes.append(getattr(response, "status_code", None))
        except ValidationError as exc:
            failures.append(" ".join(exc.messages))
        except WebPushException as exc:
            code = exc.response.status_code if exc.response is not None else None
            if code in (404, 410):  # the browser unsubscribed: forget it
                sub.delete()
            failures.append(f"push service answered {code}: {exc.message}"[:200])
        except requests.RequestException as exc:
            failures.append(f"{type(exc).__name__}: {exc}"[:200])
    if codes:  # reached at least one browser: retrying would repeat it there
        return Sent(codes[0])
    raise SendError("; ".join(failures) or "No browser reached.")


SENDERS = {
    Channel.Kind.IN_APP: send_in_app,
    Channel.Kind.EMAIL: send_email,
    Channel.Kind.WEBHOOK: send_webhook,
    Channel.Kind.APPRISE: send_apprise,
    Channel.Kind.WEB_PUSH: send_web_push,
}
