"""The alert pages: one's channels and the organizations' one owns, adding with errors shown
on the form, secrets never in the page, send test, the delivery log, and 404 for others."""

from __future__ import annotations

from typing import Any

import pytest

from apps.notify.models import Channel, Delivery
from apps.notify.services import channel_create, event_raise
from apps.users.models import Membership
from tests.conftest import portal_client
from tests.fixtures.fleet import Fleet


@pytest.fixture
def owner(fleet: Fleet) -> Any:
    Membership.objects.filter(user=fleet.vendor).update(org_role=Membership.OrgRole.OWNER)
    return fleet.vendor


def test_add_a_webhook_for_the_organization_and_see_its_secret_once(fleet: Fleet, owner, receiver):
    client = portal_client(owner)
    page = client.get("/alerts/channels/")
    assert page.status_code == 200 and "Forge" in page.content.decode()  # may add for it
    answer = client.post(
        "/alerts/channels/",
        {
            "kind": "webhook",
            "name": "Hook",
            "owner": str(fleet.forge.pk),
            "target": receiver.url,
            "event_kinds": ["ticket_opened", "node_offline"],
            "min_severity": "warning",
        },
        follow=True,
    )
    channel = Channel.objects.get()
    assert channel.organization == fleet.forge and channel.user is None
    assert sorted(channel.rules.values_list("event_kind", flat=True)) == [
        "node_offline",
        "ticket_opened",
    ]
    text = answer.content.decode()
    assert channel.secret in text  # shown this once, in the confirmation
    again = client.get("/alerts/channels/").content.decode()
    assert channel.secret not in again and channel.secret[-4:] in again
    assert "Ticket opened (Warning and up)" in again  # words, not codes
    detail = client.get(f"/alerts/channels/{channel.pk}/").content.decode()
    assert channel.secret not in detail


def test_errors_show_on_the_form(fleet: Fleet, owner, settings):
    settings.NOTIFY_ALLOWED_NETWORKS = []
    client = portal_client(owner)
    answer = client.post(
        "/alerts/channels/",
        {"kind": "webhook", "name": "Hook", "target": "http://10.0.0.5/x", "min_severity": "info"},
    )
    assert answer.status_code == 400
    assert "private or reserved" in answer.content.decode()
    # an organization the person does not own cannot even be chosen
    answer = client.post(
        "/alerts/channels/",
        {"kind": "in_app", "name": "x", "owner": str(fleet.site.pk), "min_severity": "info"},
    )
    assert answer.status_code == 400 and not Channel.objects.exists()


def test_send_test_and_the_delivery_log(fleet: Fleet, receiver, django_capture_on_commit_callbacks):
    designer = fleet.designer
    channel = channel_create(
        by=designer,
        kind="webhook",
        name="My hook",
        target=receiver.url,
        rules=[{"event_kind": "", "min_severity": "info"}],
    )
    client = portal_client(designer)
    with django_capture_on_commit_callbacks(execute=True):
        answer = client.post(f"/alerts/channels/{channel.pk}/test/", follow=True)
    assert "queued" in answer.content.decode()
    assert receiver.received[0].json()["kind"] == "notify_test"
    receiver.refuse_with = 503
    with django_capture_on_commit_callbacks(execute=True):
        event_raise(kind="job_failed", severity="critical", title="Job 7 failed", users=[designer])
    log = client.get("/alerts/deliveries/").content.decode()
    assert "Job 7 failed" in log and "Waiting to send" in log and "503" in log
    assert "Test message for My hook" in log and "Sent" in log
    only_sent = client.get("/alerts/deliveries/", {"status": "sent"}).content.decode()
    assert "Job 7 failed" not in only_sent
    assert client.get("/alerts/deliveries/", {"status": "nope"}).status_code == 400
    # someone else sees neither the channel nor its deliveries
    other = portal_client(fleet.engineer)
    assert other.get(f"/alerts/channels/{channel.pk}/").status_code == 404
    assert other.post(f"/alerts/channels/{channel.pk}/test/").status_code == 404
    assert other.post(f"/alerts/channels/{channel.pk}/delete/").status_code == 404
    assert "Job 7 failed" not in other.get("/alerts/deliveries/").content.decode()
    assert Delivery.objects.count() == 2


def test_edit_keeps_the_secret_and_delete(fleet: Fleet):
    designer = fleet.designer
    channel = channel_create(
        by=designer,
        kind="apprise",
        name="Chat",
        secret="slack://T1JJ3T3L2/A1BRTD4JD/TIiajkdnlazkcOXrIdevi7FQ",
    )
    client = portal_client(designer)
    answer = client.post(
        f"/alerts/channels/{channel.pk}/",
        {"name": "Team chat", "secret": "", "is_active": "", "min_severity": "critical"},
    )
    assert answer.status_code == 302
    channel.refresh_from_db()
    assert channel.name == "Team chat" and not channel.is_active
    assert channel.secret.startswith("slack://")
    assert client.post(f"/alerts/channels/{channel.pk}/delete/").status_code == 302
    assert not Channel.objects.exists()


def test_pwa_pieces_are_served(client):
    manifest = client.get("/manifest.webmanifest")
    assert manifest["Content-Type"] == "application/manifest+json"
    assert manifest.json()["display"] == "standalone"
    worker = client.get("/sw.js")
    assert worker["Content-Type"].startswith("text/javascript")
    assert b"showNotification" in worker.content


def test_signed_out_visitors_are_sent_to_sign_in(client):
    for url in ("/alerts/channels/", "/alerts/deliveries/", "/alerts/channels/1/"):
        assert client.get(url).status_code == 302


def test_quiet_hours_on_the_page(fleet: Fleet):
    from apps.notify.models import QuietHours

    client = portal_client(fleet.designer)
    answer = client.post(
        "/alerts/quiet-hours/",
        {"start": "22:00", "end": "06:30", "timezone": "Africa/Lagos"},
        follow=True,
    )
    assert "Quiet hours saved." in answer.content.decode()
    assert "22:00 to 06:30 (Africa/Lagos)" in answer.content.decode()
    quiet = QuietHours.objects.get(user=fleet.designer)
    assert (quiet.start.hour, quiet.end.minute) == (22, 30)
    bad = client.post(
        "/alerts/quiet-hours/",
        {"start": "22:00", "end": "06:30", "timezone": "Nowhere/Here"},
        follow=True,
    )
    assert "Unknown time zone" in bad.content.decode()
    bad = client.post("/alerts/quiet-hours/", {"start": "late", "end": "06:30"}, follow=True)
    assert "Quiet hours not saved" in bad.content.decode()
    client.post("/alerts/quiet-hours/", {"clear": "1"})
    assert not QuietHours.objects.exists()
