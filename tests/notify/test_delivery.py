"""Events to channels: rules pick the channels, webhooks arrive signed, each (event, channel)
is sent once, failures retry with backoff in order per subject, hopeless ones give up."""

from __future__ import annotations

import time
from datetime import timedelta
from typing import Any

import pytest
from django.core import mail
from django.utils import timezone

from apps.core.models import Notification
from apps.notify.models import Channel, Delivery, EventKind, Severity
from apps.notify.services import (
    channel_create,
    deliveries_resume,
    event_raise,
    retry_delay,
)
from apps.notify.signing import signature_verify
from apps.notify.tasks import delivery_send_task
from apps.users.models import Membership
from tests.fixtures.fleet import Fleet


@pytest.fixture
def owner(fleet: Fleet) -> Any:
    """The vendor's staff member, made an owner of the vendor organization."""
    Membership.objects.filter(user=fleet.vendor, organization=fleet.forge).update(
        org_role=Membership.OrgRole.OWNER
    )
    return fleet.vendor


def webhook(owner: Any, fleet: Fleet, url: str, **kwargs: Any) -> Channel:
    return channel_create(
        by=owner,
        kind="webhook",
        name="Ops hook",
        organization=fleet.forge,
        target=url,
        secret="s3cret-signing-key-0123",
        rules=kwargs.pop("rules", [{"event_kind": "", "min_severity": "info"}]),
        **kwargs,
    )


def raise_for(fleet: Fleet, n: int, *, subject: str = "node:1", **kw: Any) -> Any:
    return event_raise(
        kind=kw.pop("kind", EventKind.TICKET_OPENED),
        severity=kw.pop("severity", Severity.WARNING),
        title=f"Overheating #{n}",
        subject=subject,
        organizations=[fleet.forge],
        **kw,
    )


def backoff_passes() -> None:
    """What waiting out the backoff does: every waiting delivery is due."""
    Delivery.objects.filter(status="pending").update(
        next_attempt_at=timezone.now() - timedelta(seconds=1)
    )


def test_webhook_arrives_signed_once_and_is_logged(
    owner, fleet: Fleet, receiver, django_capture_on_commit_callbacks
):
    channel = webhook(owner, fleet, f"{receiver.url}/hook")
    with django_capture_on_commit_callbacks(execute=True):
        event = raise_for(fleet, 1, link="/maintenance/tickets/9/")
    (got,) = receiver.received
    assert got.path == "/hook"
    body = got.json()
    assert body["event"] == event.pk and body["kind"] == "ticket_opened"
    assert body["link"] == "https://imewe.example/maintenance/tickets/9/"
    assert signature_verify(
        secret="s3cret-signing-key-0123",
        timestamp=got.headers["X-Imewe-Timestamp"],
        signature=got.headers["X-Imewe-Signature"],
        body=got.body,
        now=time.time(),
    )
    # a tampered body, a wrong secret or an old timestamp fail verification
    stamp, signature = got.headers["X-Imewe-Timestamp"], got.headers["X-Imewe-Signature"]
    assert not signature_verify(
        secret="s3cret-signing-key-0123",
        timestamp=stamp,
        signature=signature,
        body=got.body + b" ",
        now=time.time(),
    )
    assert not signature_verify(
        secret="other", timestamp=stamp, signature=signature, body=got.body, now=time.time()
    )
    assert not signature_verify(
        secret="s3cret-signing-key-0123",
        timestamp=stamp,
        signature=signature,
        body=got.body,
        now=time.time() + 301,
    )
    delivery = Delivery.objects.get(event=event, channel=channel)
    assert got.headers["X-Imewe-Delivery"] == str(delivery.pk)
    assert (delivery.status, delivery.attempts, delivery.response_code) == ("sent", 1, 200)
    assert delivery.latency_ms is not None and delivery.sent_at is not None
    # a repeated task (a retry after success, a duplicate message) sends nothing
    delivery_send_task.delay(delivery.pk)
    assert len(receiver.received) == 1
    delivery.refresh_from_db()
    assert delivery.attempts == 1


def test_rules_choose_kind_and_severity(
    owner, fleet: Fleet, receiver, django_capture_on_commit_callbacks
):
    webhook(
        owner,
        fleet,
        receiver.url,
        rules=[
            {"event_kind": "ticket_opened", "min_severity": "critical"},
            {"event_kind": "node_offline", "min_severity": "warning"},
        ],
    )
    with django_capture_on_commit_callbacks(execute=True):
        raise_for(fleet, 1, severity="warning")  # below the ticket rule's critical
        raise_for(fleet, 2, severity="critical")
        raise_for(fleet, 3, kind="job_finished", severity="critical")  # not asked for
        raise_for(fleet, 4, kind="node_offline", severity="warning")
        event_raise(  # another organization's event never reaches this channel
            kind="node_offline",
            severity="critical",
            title="elsewhere",
            organizations=[fleet.rival.organizations.get()],
        )
    assert [r.json()["title"] for r in receiver.received] == ["Overheating #2", "Overheating #4"]


def test_personal_channels_in_app_and_email(fleet: Fleet, django_capture_on_commit_callbacks):
    designer = fleet.designer
    channel_create(
        by=designer,
        kind="in_app",
        name="Here",
        rules=[{"event_kind": "job_failed", "min_severity": "info"}],
    )
    channel_create(
        by=designer,
        kind="email",
        name="Mail",
        rules=[{"event_kind": "job_failed", "min_severity": "critical"}],
    )
    with django_capture_on_commit_callbacks(execute=True):
        event_raise(kind="job_failed", severity="warning", title="Job 4 failed", users=[designer])
        event_raise(kind="job_failed", severity="critical", title="Job 5 failed", users=[designer])
        # someone else's event reaches none of the designer's channels
        event_raise(
            kind="job_failed", severity="critical", title="Job 6 failed", users=[fleet.engineer]
        )
    titles = list(Notification.objects.filter(user=designer).values_list("title", flat=True))
    assert sorted(titles) == ["Job 4 failed", "Job 5 failed"]
    assert [m.subject for m in mail.outbox] == ["[Imewe] Critical: Job 5 failed"]
    assert mail.outbox[0].to == [designer.email]


def test_an_in_app_channel_never_doubles_a_notice_the_platform_already_gave(
    fleet: Fleet, django_capture_on_commit_callbacks
):
    from apps.core.services import notification_send

    designer = fleet.designer
    channel_create(
        by=designer,
        kind="in_app",
        name="Here",
        rules=[{"event_kind": "job_failed", "min_severity": "info"}],
    )
    # the platform's own notice of the outcome, then the event about the same thing
    notification_send(user=designer, title="Job 7 failed", body="", link="/jobs/7/")
    with django_capture_on_commit_callbacks(execute=True):
        event_raise(
            kind="job_failed",
            severity="warning",
            title="Job 7 failed",
            link="/jobs/7/",
            users=[designer],
        )
        # another job's failure is a notice of its own
        event_raise(
            kind="job_failed",
            severity="warning",
            title="Job 8 failed",
            link="/jobs/8/",
            users=[designer],
        )
    titles = sorted(Notification.objects.filter(user=designer).values_list("title", flat=True))
    assert titles == ["Job 7 failed", "Job 8 failed"]
    assert set(Delivery.objects.values_list("status", flat=True)) == {"sent"}


def test_a_4xx_gives_up_at_once_and_a_5xx_backs_off(
    owner, fleet: Fleet, receiver, django_capture_on_commit_callbacks, settings
):
    webhook(owner, fleet, receiver.url)
    receiver.refuse_with = 400
    with django_capture_on_commit_callbacks(execute=True):
        raise_for(fleet, 1, subject="node:1")
    bad = Delivery.objects.get()
    assert (bad.status, bad.attempts, bad.response_code) == ("failed", 1, 400)
    assert bad.last_error == "The receiver answered 400."

    receiver.refuse_with = 503
    with django_capture_on_commit_callbacks(execute=True):
        raise_for(fleet, 2, subject="node:2")
    down = Delivery.objects.get(subject="node:2")
    assert (down.status, down.attempts, down.response_code) == ("pending", 1, 503)
    assert down.next_attempt_at is not None
    assert down.next_attempt_at > timezone.now() + timedelta(seconds=retry_delay(1) - 5)
    # the backoff doubles up to its cap
    assert [retry_delay(n) for n in (1, 2, 3)] == [30.0, 60.0, 120.0]
    assert retry_delay(20) == settings.NOTIFY_RETRY_MAX_S
    # the sweeper leaves it alone until due, then tries again
    assert deliveries_resume(now=timezone.now()) == 0
    backoff_passes()
    assert deliveries_resume() == 1
    down.refresh_from_db()
    assert down.attempts == 2 and down.status == "pending"
    settings.NOTIFY_MAX_ATTEMPTS = 3
    backoff_passes()
    deliveries_resume()
    down.refresh_from_db()
    assert (down.status, down.attempts, down.next_attempt_at) == ("failed", 3, None)


def test_later_events_wait_behind_a_failed_one_of_the_same_subject(
    owner, fleet: Fleet, receiver, django_capture_on_commit_callbacks
):
    webhook(owner, fleet, receiver.url)
    receiver.refuse_with = 503
    with django_capture_on_commit_callbacks(execute=True):
        for n in range(3):
            raise_for(fleet, n, subject="node:7")
        raise_for(fleet, 9, subject="node:8")  # another subject is not held up
    # only the head was tried (once); the others wait untried behind it
    assert receiver.refused == 2  # node:7's head and node:8's
    attempts = list(
        Delivery.objects.filter(subject="node:7").order_by("pk").values_list("attempts", flat=True)
    )
    assert attempts == [1, 0, 0]
    receiver.refuse_with = None
    backoff_passes()
    deliveries_resume()
    titles = [r.json()["title"] for r in receiver.received]
    assert titles == ["Overheating #0", "Overheating #1", "Overheating #2", "Overheating #9"]
    assert set(Delivery.objects.values_list("status", flat=True)) == {"sent"}


def test_unreachable_receiver_is_retried_not_lost(
    owner, fleet: Fleet, django_capture_on_commit_callbacks
):
    webhook(owner, fleet, "http://127.0.0.1:8219/nobody-listens")
    with django_capture_on_commit_callbacks(execute=True):
        raise_for(fleet, 1)
    delivery = Delivery.objects.get()
    assert delivery.status == "pending" and delivery.attempts == 1
    assert "ConnectionError" in delivery.last_error
