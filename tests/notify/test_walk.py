"""The operator's walk from issue 22: configure a webhook and a chat channel (Apprise, posting
JSON to a receiver), let a machine's readings cross a rule's limit so the maintenance agent
opens a ticket, see both arrive and the delivery log; stop the receiver, resolve the ticket,
start it again: delivered once."""

from __future__ import annotations

import time
from datetime import timedelta

from django.utils import timezone

from apps.maintenance.models import Ticket
from apps.notify.models import Delivery
from apps.notify.services import deliveries_resume
from apps.notify.signing import signature_verify
from apps.users.models import Membership
from tests.conftest import jwt_client
from tests.fixtures.fleet import Fleet


def test_ticket_from_readings_reaches_webhook_and_chat(
    fleet: Fleet, mill, send, receiver, second_receiver, django_capture_on_commit_callbacks
):
    Membership.objects.filter(user=fleet.vendor).update(org_role=Membership.OrgRole.OWNER)
    vendor = jwt_client(fleet.vendor)
    forge = fleet.forge.pk
    # given: a signed webhook and a chat channel for the vendor's ticket events
    hook = vendor.post(
        "/api/v1/notify/channels/",
        {
            "kind": "webhook",
            "name": "Maintenance hook",
            "organization": forge,
            "target": f"{receiver.url}/imewe",
            "rules": [
                {"event_kind": "ticket_opened", "min_severity": "warning"},
                {"event_kind": "ticket_resolved", "min_severity": "info"},
            ],
        },
        format="json",
    )
    assert hook.status_code == 201, hook.json()
    secret = hook.json()["generated_secret"]
    assert secret and hook.json()["secret_hint"].endswith(secret[-4:])
    chat = vendor.post(
        "/api/v1/notify/channels/",
        {
            "kind": "apprise",
            "name": "Shop-floor chat",
            "organization": forge,
            "secret": f"json://127.0.0.1:{second_receiver.port}/chat",
            "rules": [{"event_kind": "ticket_opened", "min_severity": "critical"}],
        },
        format="json",
    )
    assert chat.status_code == 201, chat.json()
    assert "json://" not in str(chat.json())  # the Apprise URL is a secret: never shown back

    # when: the mill overheats (readings over the critical limit, through ingest)
    for t in range(0, 12):
        send(mill, t, temperature_c=80)
    for t in range(12, 40):
        send(mill, t, temperature_c=92)
    ticket = Ticket.objects.get(node=mill)
    assert ticket.severity == "critical"

    # then: the webhook got the signed ticket, the chat got the message
    opened = [r for r in receiver.received if r.json()["kind"] == "ticket_opened"]
    assert len(opened) == 1
    assert opened[0].json()["data"]["ticket"]["id"] == ticket.pk
    assert signature_verify(
        secret=secret,
        timestamp=opened[0].headers["X-Imewe-Timestamp"],
        signature=opened[0].headers["X-Imewe-Signature"],
        body=opened[0].body,
        now=time.time(),
    )
    (message,) = second_receiver.received
    assert message.path == "/chat"
    assert message.json()["title"] == f"New ticket: {ticket.title}"
    assert message.json()["type"] == "failure"  # Apprise's word for critical

    # and the delivery log shows both, and only to the organization's owner
    log = vendor.get("/api/v1/notify/deliveries/", {"event_kind": "ticket_opened"}).json()
    assert {(d["channel_name"], d["status"], d["attempts"]) for d in log["results"]} == {
        ("Maintenance hook", "sent", 1),
        ("Shop-floor chat", "sent", 1),
    }
    hook_row = next(d for d in log["results"] if d["channel_name"] == "Maintenance hook")
    assert hook_row["response_code"] == 200 and hook_row["latency_ms"] is not None
    assert jwt_client(fleet.rival).get("/api/v1/notify/deliveries/").json()["count"] == 0

    # when: the receiver is down while the ticket is resolved, then comes back
    receiver.stop()
    with django_capture_on_commit_callbacks(execute=True):
        answer = jwt_client(fleet.operator).post(
            f"/api/v1/maintenance/tickets/{ticket.pk}/transition/",
            {"to": "resolved", "note": "Coolant pump replaced."},
            format="json",
        )
    assert answer.status_code == 200, answer.json()
    waiting = Delivery.objects.get(event__kind="ticket_resolved")
    assert waiting.status == "pending" and waiting.attempts == 1
    receiver.start()
    Delivery.objects.filter(pk=waiting.pk).update(
        next_attempt_at=timezone.now() - timedelta(seconds=1)
    )
    deliveries_resume()
    deliveries_resume()  # a second sweep finds nothing left to send
    resolved = [r for r in receiver.received if r.json()["kind"] == "ticket_resolved"]
    assert len(resolved) == 1 and resolved[0].json()["body"] == "Coolant pump replaced."
    waiting.refresh_from_db()
    assert (waiting.status, waiting.attempts) == ("sent", 2)
