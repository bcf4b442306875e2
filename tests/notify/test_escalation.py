"""A critical ticket nobody acknowledges goes to the site's on-call people in turn, then to the
admins; acknowledging stops it. Quiet hours hold a person's non-critical alerts until they end,
never a critical one."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from django.core import mail
from django.db.models import F
from django.utils import timezone

from apps.core.models import Notification
from apps.maintenance.models import Ticket
from apps.maintenance.services import ticket_transition
from apps.notify.models import Channel, Delivery, Escalation, Event, QuietHours
from apps.notify.services import (
    channel_create,
    digests_flush,
    escalations_run,
    event_raise,
    quiet_until,
)
from apps.users.models import Membership
from apps.users.roles import Role
from tests.conftest import jwt_client
from tests.fixtures.fleet import Fleet
from tests.fixtures.machines import in_service
from tests.notify.factories import QuietHoursFactory
from tests.users.factories import UserFactory


def later(minutes: float) -> None:
    """Time passes for the escalations."""
    Escalation.objects.update(next_at=F("next_at") - timedelta(minutes=minutes))


@pytest.fixture
def rota(fleet: Fleet) -> dict[str, Any]:
    site = fleet.site
    Membership.objects.filter(user=fleet.operator).update(org_role=Membership.OrgRole.OWNER)
    second = UserFactory.create(role=Role.OPERATOR, email="night@f.test", organization=site)
    answer = jwt_client(fleet.operator).put(
        f"/api/v1/notify/rotas/{site.pk}/",
        {"members": [fleet.operator.pk, second.pk], "ack_minutes": 10},
        format="json",
    )
    assert answer.status_code == 200, answer.json()
    assert [m["email"] for m in answer.json()["members"]] == ["op@f.test", "night@f.test"]
    return {"first": fleet.operator, "second": second}


def critical_ticket(fleet: Fleet) -> Ticket:
    from apps.maintenance.services import ticket_raise

    node = in_service(fleet)
    return ticket_raise(
        node=node,
        issue_type="overheating",
        severity="critical",
        title="Mill-01 overheating",
        evidence={},
        suggested_action="Stop the spindle.",
    )[0]


def test_unacknowledged_critical_ticket_walks_the_rota_then_the_admins(
    fleet: Fleet, rota, django_capture_on_commit_callbacks
):
    hook = channel_create(by=rota["second"], kind="in_app", name="Pager")
    with django_capture_on_commit_callbacks(execute=True):
        ticket = critical_ticket(fleet)
    assert escalations_run() == 0  # not yet due
    with django_capture_on_commit_callbacks(execute=True):
        later(10)
        assert escalations_run() == 1
    # the first on call has no channel: in-app and e-mail
    told = Event.objects.get(kind="notify_escalation")
    assert list(told.users.all()) == [rota["first"]]
    assert told.title.startswith("Not acknowledged after") and "Mill-01 overheating" in told.title
    assert mail.outbox[-1].to == ["op@f.test"] and "Critical" in mail.outbox[-1].subject
    assert Notification.objects.filter(user=rota["first"], title=told.title).exists()
    with django_capture_on_commit_callbacks(execute=True):
        later(10)
        assert escalations_run() == 1
    # the second has a channel (without any rule): on call means it reaches them anyway
    second = Event.objects.filter(kind="notify_escalation").latest("pk")
    assert list(second.users.all()) == [rota["second"]]
    assert Delivery.objects.get(event=second, channel=hook).status == "sent"
    with django_capture_on_commit_callbacks(execute=True):
        later(10)
        assert escalations_run() == 1  # the one admin
    assert list(Event.objects.filter(kind="notify_escalation").latest("pk").users.all()) == [
        fleet.admin
    ]
    later(60)
    assert escalations_run() == 0  # done after the admins
    assert Escalation.objects.get().outcome == "called the admins"
    assert Ticket.objects.get(pk=ticket.pk).status == "open"


def test_acknowledging_stops_the_escalation(fleet: Fleet, rota):
    ticket = critical_ticket(fleet)
    ticket_transition(by=fleet.operator, ticket=ticket, to="acknowledged")
    later(10)
    assert escalations_run() == 0
    escalation = Escalation.objects.get()
    assert escalation.outcome == "acknowledged" and escalation.done_at is not None
    assert not Event.objects.filter(kind="notify_escalation").exists()


def test_rota_is_for_owners_and_members_only(fleet: Fleet, rota):
    site = fleet.site.pk
    stranger = fleet.rival.pk
    owner = jwt_client(fleet.operator)
    bad = owner.put(f"/api/v1/notify/rotas/{site}/", {"members": [stranger]}, format="json")
    assert bad.status_code == 400 and "members" in bad.json()["error"]["details"]
    bad = owner.put(
        f"/api/v1/notify/rotas/{site}/", {"members": [], "ack_minutes": 0}, format="json"
    )
    assert bad.status_code == 400 and "ack_minutes" in bad.json()["error"]["details"]
    for who in ("vendor", "designer"):
        client = jwt_client(fleet.user(who))
        assert client.get(f"/api/v1/notify/rotas/{site}/").status_code == 404
        assert (
            client.put(f"/api/v1/notify/rotas/{site}/", {"members": []}, format="json").status_code
            == 404
        )
    assert rota["second"] in [s.user for s in fleet.site.on_call_rota.slots.all()]


def test_quiet_hours_hold_the_non_critical_until_they_end(
    fleet: Fleet, receiver, django_capture_on_commit_callbacks
):
    designer = fleet.designer
    channel_create(
        by=designer,
        kind="webhook",
        name="Phone hook",
        target=receiver.url,
        rules=[{"event_kind": "", "min_severity": "info"}],
    )
    now = timezone.now().astimezone(ZoneInfo("Europe/Berlin"))
    start = (now - timedelta(hours=1)).time().replace(second=0, microsecond=0)
    end = (now + timedelta(hours=1)).time().replace(second=0, microsecond=0)
    answer = jwt_client(designer).put(
        "/api/v1/notify/quiet-hours/",
        {"start": start.isoformat(), "end": end.isoformat(), "timezone": "Europe/Berlin"},
        format="json",
    )
    assert answer.status_code == 200, answer.json()
    with django_capture_on_commit_callbacks(execute=True):
        event_raise(kind="job_finished", severity="info", title="Job 1 done", users=[designer])
        event_raise(kind="job_failed", severity="critical", title="Job 2 failed", users=[designer])
    # the critical one at once, the other waits for the end of the quiet hours
    assert [r.json()["title"] for r in receiver.received] == ["Job 2 failed"]
    held = Delivery.objects.get(status="held")
    assert held.hold_until is not None
    assert held.hold_until.astimezone(ZoneInfo("Europe/Berlin")).time() == end
    with django_capture_on_commit_callbacks(execute=True):
        assert digests_flush() == 0
        Delivery.objects.update(hold_until=timezone.now() - timedelta(seconds=1))
        QuietHours.objects.update(start=time(3, 0), end=time(3, 1))  # it is over
        assert digests_flush() == 1
    assert [r.json()["title"] for r in receiver.received] == ["Job 2 failed", "Job 1 done"]


@pytest.mark.parametrize(
    ("start", "end", "at", "quiet_until_hour"),
    [
        ((22, 0), (7, 0), (23, 30), 7),  # overnight, before midnight: ends tomorrow
        ((22, 0), (7, 0), (6, 59), 7),  # overnight, after midnight
        ((22, 0), (7, 0), (7, 0), None),  # over
        ((22, 0), (7, 0), (12, 0), None),
        ((13, 0), (14, 0), (13, 30), 14),  # within one day
        ((13, 0), (14, 0), (14, 30), None),
    ],
)
def test_quiet_hours_windows(fleet: Fleet, start, end, at, quiet_until_hour):
    user = fleet.designer
    QuietHoursFactory.create(user=user, start=time(*start), end=time(*end), timezone="UTC")
    channel = Channel(kind="email", user=user)
    event = Event(severity="warning")
    now = datetime.combine(date(2026, 3, 10), time(*at), tzinfo=ZoneInfo("UTC"))
    until = quiet_until(channel=channel, event=event, now=now)
    assert (until.hour if until else None) == quiet_until_hour
    if until is not None:
        assert now < until <= now + timedelta(hours=9)
    assert quiet_until(channel=channel, event=Event(severity="critical"), now=now) is None


def test_quiet_hours_input_is_checked(fleet: Fleet):
    client = jwt_client(fleet.designer)
    bad = client.put(
        "/api/v1/notify/quiet-hours/",
        {"start": "22:00", "end": "07:00", "timezone": "Mars/Olympus"},
        format="json",
    )
    assert bad.status_code == 400 and "timezone" in bad.json()["error"]["details"]
    bad = client.put(
        "/api/v1/notify/quiet-hours/", {"start": "25:00", "end": "07:00"}, format="json"
    )
    assert bad.status_code == 400 and "start" in bad.json()["error"]["details"]
    bad = client.put(
        "/api/v1/notify/quiet-hours/", {"start": "07:00", "end": "07:00"}, format="json"
    )
    assert bad.status_code == 400 and "end" in bad.json()["error"]["details"]
    assert client.get("/api/v1/notify/quiet-hours/").json()["start"] is None
    ok = client.put(
        "/api/v1/notify/quiet-hours/", {"start": "22:00", "end": "07:00"}, format="json"
    )
    assert ok.json() == {"start": "22:00:00", "end": "07:00:00", "timezone": "UTC"}
    assert client.delete("/api/v1/notify/quiet-hours/").status_code == 204
    assert not QuietHours.objects.exists()
