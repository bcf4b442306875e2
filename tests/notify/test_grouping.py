"""A flapping sensor must not send 34 messages in 25 minutes: repeats about one subject on one
channel within the grouping window wait for one digest; the first critical one never waits."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.db.models import F

from apps.notify.models import Delivery, Event
from apps.notify.services import channel_create, digests_flush, event_raise
from apps.users.models import Membership
from tests.fixtures.fleet import Fleet


def time_passes(seconds: float) -> None:
    """Moves every event and delivery into the past, which is what waiting does to them."""
    shift = timedelta(seconds=seconds)
    Event.objects.update(created_at=F("created_at") - shift)
    Delivery.objects.update(created_at=F("created_at") - shift)
    Delivery.objects.filter(hold_until__isnull=False).update(hold_until=F("hold_until") - shift)


@pytest.fixture
def hook(fleet: Fleet, receiver: Any, settings: Any) -> Any:
    settings.NOTIFY_GROUP_WINDOW_S = 600
    Membership.objects.filter(user=fleet.vendor).update(org_role=Membership.OrgRole.OWNER)
    return channel_create(
        by=fleet.vendor,
        kind="webhook",
        name="Hook",
        organization=fleet.forge,
        target=receiver.url,
        rules=[{"event_kind": "", "min_severity": "info"}],
    )


def flap(fleet: Fleet, n: int, severity: str = "warning", subject: str = "node:1") -> Any:
    return event_raise(
        kind="ticket_opened",
        severity=severity,
        title=f"Vibration high #{n}",
        subject=subject,
        organizations=[fleet.forge],
    )


def test_a_flapping_sensor_sends_a_handful_of_messages_not_34(
    fleet: Fleet, hook, receiver, django_capture_on_commit_callbacks
):
    # given: 34 alerts about one node over 25 minutes (one every 44 s), the beat flushing
    with django_capture_on_commit_callbacks(execute=True):
        for n in range(34):
            flap(fleet, n)
            time_passes(44)
            digests_flush()
        for _ in range(11):  # the last window closes
            time_passes(60)
            digests_flush()
    messages = [r.json() for r in receiver.received]
    # then: the first alert at once, then one digest per window: 4 messages, not 34
    assert len(messages) == 4, [m["title"] for m in messages]
    assert messages[0]["title"] == "Vibration high #0"
    assert all(m["kind"] == "notify_digest" for m in messages[1:])
    # and nothing is lost: every alert was sent or carried by a digest that was sent
    carried = [e for m in messages[1:] for e in m["data"]["events"]]
    assert len(carried) == 33 and len(set(carried)) == 33
    assert "Vibration high #33" in messages[-1]["body"]
    assert set(Delivery.objects.values_list("status", flat=True)) == {"sent", "grouped"}


def test_the_first_critical_message_is_never_held(
    fleet: Fleet, hook, receiver, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        flap(fleet, 1)
        flap(fleet, 2)  # a repeat: held
        flap(fleet, 3, severity="critical")  # the first critical: at once
        flap(fleet, 4, severity="critical")  # a repeat critical: held
        flap(fleet, 5, subject="node:2")  # another node: its own window
    assert [r.json()["title"] for r in receiver.received] == [
        "Vibration high #1",
        "Vibration high #3",
        "Vibration high #5",
    ]
    held = Delivery.objects.filter(status="held").order_by("pk")
    assert [d.event.title for d in held] == ["Vibration high #2", "Vibration high #4"]
    # nothing goes out before the window has passed
    with django_capture_on_commit_callbacks(execute=True):
        assert digests_flush() == 0
        time_passes(601)
        assert digests_flush() == 1
    digest = receiver.received[-1].json()
    assert digest["kind"] == "notify_digest" and digest["severity"] == "critical"
    assert digest["title"] == "2 more alerts: Vibration high #4"
