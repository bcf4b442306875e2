"""The maintenance API and websocket: each role's view, the lifecycle over HTTP, one error
format, and live events only to those who maintain the node."""

from __future__ import annotations

from datetime import timedelta

import pytest
from asgiref.sync import sync_to_async
from django.utils import timezone

from apps.core.ml import Comparison, model_register
from apps.maintenance.models import Ticket
from apps.maintenance.services import ticket_raise
from tests.fixtures.fleet import Fleet
from tests.fixtures.machines import in_service, rival_node
from tests.websockets import ws_open, ws_open_as

pytestmark = pytest.mark.django_db


def agent_ticket(node, issue="vibration", severity="critical"):
    return ticket_raise(
        node=node,
        issue_type=issue,
        severity=severity,
        title=f"{node.name}: {issue}",
        evidence={"value": 4.4},
        suggested_action="Inspect the bearings.",
    )[0]


def test_the_ticket_queue_per_role_with_filters(fleet: Fleet, mill, as_user):
    other = rival_node(fleet)
    mine = agent_ticket(mill)
    agent_ticket(mill, issue="overheating", severity="warning")
    theirs = agent_ticket(other)
    assert {
        t["id"] for t in as_user(fleet.admin).get("/api/v1/maintenance/tickets/").json()["results"]
    } >= {mine.pk, theirs.pk}
    body = as_user(fleet.vendor).get("/api/v1/maintenance/tickets/").json()
    assert body["count"] == 2 and [t["priority"] for t in body["results"]] == [1, 3]
    critical = as_user(fleet.operator).get(
        "/api/v1/maintenance/tickets/?severity=critical&active=true"
    )
    assert [t["id"] for t in critical.json()["results"]] == [mine.pk]
    assert as_user(fleet.rival).get("/api/v1/maintenance/tickets/").json()["count"] == 1
    for role in ("designer", "engineer", "viewer"):
        assert as_user(fleet.user(role)).get("/api/v1/maintenance/tickets/").json()["count"] == 0
    # someone else's ticket is a 404 (ids don't leak), in the one error format
    missing = as_user(fleet.rival).get(f"/api/v1/maintenance/tickets/{mine.pk}/")
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "not_found"


def test_the_lifecycle_over_http(fleet: Fleet, mill, as_user):
    ticket = agent_ticket(mill)
    op = as_user(fleet.operator)
    url = f"/api/v1/maintenance/tickets/{ticket.pk}"
    assert op.post(f"{url}/transition/", {"to": "acknowledged"}).json()["status"] == "acknowledged"
    assigned = op.post(f"{url}/assign/", {"assignee": fleet.vendor.pk}, format="json")
    assert assigned.json()["assignee"] == "vendor@f.test"
    bad = op.post(f"{url}/assign/", {"assignee": fleet.designer.pk}, format="json")
    assert bad.status_code == 400 and "assignee" in bad.json()["error"]["details"]
    assert op.post(f"{url}/notes/", {"text": "bearing is noisy"}).status_code == 201
    no_note = op.post(f"{url}/transition/", {"to": "resolved"})
    assert no_note.status_code == 400 and "note" in no_note.json()["error"]["details"]
    done = op.post(
        f"{url}/transition/", {"to": "resolved", "note": "replaced", "was_failure": True}
    ).json()
    assert done["status"] == "resolved" and done["was_failure"] is True
    backwards = op.post(f"{url}/transition/", {"to": "acknowledged"})
    assert backwards.status_code == 409 and backwards.json()["error"]["code"] == "conflict"
    detail = op.get(f"{url}/").json()
    assert [e["kind"] for e in detail["events"]] == [
        "opened",
        "status",
        "assigned",
        "note",
        "status",
    ]
    assert detail["evidence"] == {"value": 4.4}
    # the rival vendor can do none of it
    rival = as_user(fleet.rival)
    assert rival.post(f"{url}/notes/", {"text": "x"}).status_code == 404
    assert rival.post(f"{url}/transition/", {"to": "closed"}).status_code == 404


def test_manual_ticket_and_window_over_http(fleet: Fleet, mill, as_user):
    vendor = as_user(fleet.vendor)
    made = vendor.post(
        "/api/v1/maintenance/tickets/",
        {"node": mill.pk, "issue_type": "other", "severity": "warning", "title": "Oil leak"},
    )
    assert made.status_code == 201 and made.json()["opened_by_agent"] is False
    invalid = vendor.post("/api/v1/maintenance/tickets/", {"node": mill.pk, "severity": "x"})
    assert invalid.status_code == 400
    assert set(invalid.json()["error"]["details"]) == {"issue_type", "severity", "title"}
    start = timezone.now() + timedelta(hours=2)
    window = vendor.post(
        "/api/v1/maintenance/windows/",
        {
            "node": mill.pk,
            "kind": "scheduled",
            "starts_at": start.isoformat(),
            "ends_at": (start + timedelta(hours=3)).isoformat(),
            "reason": "annual service",
            "ticket": made.json()["id"],
        },
        format="json",
    )
    assert window.status_code == 201 and window.json()["status"] == "planned"
    clash = vendor.post(
        "/api/v1/maintenance/windows/",
        {
            "node": mill.pk,
            "kind": "emergency",
            "starts_at": start.isoformat(),
            "ends_at": (start + timedelta(hours=1)).isoformat(),
            "reason": "smoke",
        },
        format="json",
    )
    assert clash.status_code == 409
    assert (
        as_user(fleet.rival)
        .post(f"/api/v1/maintenance/windows/{window.json()['id']}/cancel/")
        .status_code
        == 404
    )
    cancelled = vendor.post(f"/api/v1/maintenance/windows/{window.json()['id']}/cancel/")
    assert cancelled.json()["status"] == "cancelled"


def test_rules_api(fleet: Fleet, mill, as_user):
    listed = as_user(fleet.operator).get("/api/v1/maintenance/rules/").json()
    assert {(r["signal"], r["scope"]) for r in listed} >= {
        ("temperature_c", "default"),
        ("temperature_c", "kind"),
    }
    assert as_user(fleet.designer).get("/api/v1/maintenance/rules/").status_code == 403
    saved = as_user(fleet.operator).post(
        "/api/v1/maintenance/rules/",
        {"signal": "vibration_mm_s", "node": mill.pk, "warning": 2.0, "critical": 3.5},
        format="json",
    )
    assert saved.status_code == 201 and saved.json()["scope"] == "node"
    below = as_user(fleet.operator).post(
        "/api/v1/maintenance/rules/",
        {"signal": "coolant_flow", "node": mill.pk, "mode": "below", "warning": 8, "critical": 4},
        format="json",
    )
    assert below.status_code == 201 and below.json()["mode"] == "below"
    upside_down = as_user(fleet.operator).post(
        "/api/v1/maintenance/rules/",
        {"signal": "coolant_flow", "node": mill.pk, "mode": "below", "warning": 4, "critical": 8},
        format="json",
    )
    assert upside_down.status_code == 400
    assert upside_down.json()["error"]["details"]["critical"] == [
        "Below a limit, the critical limit must be below the warning limit."
    ]
    unknown = as_user(fleet.operator).post(
        "/api/v1/maintenance/rules/",
        {"signal": "coolant_flow", "node": mill.pk, "mode": "sideways", "warning": 4},
        format="json",
    )
    assert unknown.status_code == 400 and "mode" in unknown.json()["error"]["details"]
    denied = as_user(fleet.vendor).post(
        "/api/v1/maintenance/rules/", {"signal": "vibration_mm_s", "warning": 1, "critical": 2}
    )
    assert denied.status_code == 403
    # another vendor's rule is not found, as an unknown id is (ids don't leak)
    foreign = as_user(fleet.rival).delete(f"/api/v1/maintenance/rules/{saved.json()['id']}/")
    assert foreign.status_code == 404
    assert foreign.json()["error"]["code"] == "not_found"
    assert as_user(fleet.rival).delete("/api/v1/maintenance/rules/999999/").status_code == 404
    assert (
        as_user(fleet.vendor).delete(f"/api/v1/maintenance/rules/{saved.json()['id']}/").status_code
        == 204
    )


def test_rules_api_lists_only_the_rules_of_nodes_maintained(fleet: Fleet, mill, as_user):
    # given a node rule on each vendor's node
    rivals = rival_node(fleet)
    for user, node in ((fleet.vendor, mill), (fleet.rival, rivals)):
        made = as_user(user).post(
            "/api/v1/maintenance/rules/",
            {"signal": "vibration_mm_s", "node": node.pk, "warning": 2.0, "critical": 3.5},
            format="json",
        )
        assert made.status_code == 201

    # when each lists the rules
    def node_rules(user):
        listed = as_user(user).get("/api/v1/maintenance/rules/").json()
        return {r["node"] for r in listed if r["scope"] == "node"}

    # then each sees the defaults and its own node's rule, and no other
    assert node_rules(fleet.vendor) == {mill.pk}
    assert node_rules(fleet.rival) == {rivals.pk}
    assert node_rules(fleet.admin) == {mill.pk, rivals.pk}


def test_rules_api_default_rules_stay_with_administrators(fleet: Fleet, as_user):
    kind_rule = as_user(fleet.admin).post(
        "/api/v1/maintenance/rules/",
        {"signal": "vibration_mm_s", "node_kind": "cnc_mill", "warning": 5, "critical": 9},
        format="json",
    )
    assert kind_rule.status_code == 201 and kind_rule.json()["scope"] == "kind"
    url = f"/api/v1/maintenance/rules/{kind_rule.json()['id']}/"
    # a vendor sees the platform's rules (404 would hide what it lists) but may not delete one
    denied = as_user(fleet.vendor).delete(url)
    assert denied.status_code == 403
    assert denied.json()["error"]["code"] == "permission_denied"
    assert as_user(fleet.admin).delete(url).status_code == 204


def test_fleet_health_and_registry(fleet: Fleet, mill, as_user):
    agent_ticket(mill)
    rows = as_user(fleet.operator).get("/api/v1/maintenance/fleet/").json()["results"]
    assert [(r["name"], r["open_tickets"]["critical"]) for r in rows] == [("Mill-01", 1)]
    assert as_user(fleet.rival).get("/api/v1/maintenance/fleet/").json()["count"] == 0
    assert (
        as_user(fleet.vendor)
        .get(f"/api/v1/maintenance/nodes/{mill.pk}/predictions/?hours=abc")
        .status_code
        == 400
    )
    assert (
        as_user(fleet.rival).get(f"/api/v1/maintenance/nodes/{mill.pk}/predictions/").status_code
        == 404
    )
    for _version in (1, 2):
        model_register(
            name="maintenance.failure",
            algorithm="test",
            artifact=b"x",
            features=["a"],
            metrics={"f1": 0.9},
            training={},
            comparison=Comparison(metric="loss", candidate=0.1, baseline=0.5),
        )
    listed = as_user(fleet.engineer).get("/api/v1/maintenance/models/?name=maintenance.failure")
    assert [m["version"] for m in listed.json()["results"]] == [2, 1]
    assert as_user(fleet.vendor).get("/api/v1/maintenance/models/").status_code == 403
    body = {"name": "maintenance.failure", "version": 1}
    assert (
        as_user(fleet.engineer).post("/api/v1/maintenance/models/rollback/", body).status_code
        == 403
    )
    back = as_user(fleet.admin).post("/api/v1/maintenance/models/rollback/", body)
    assert back.json()["is_active"] is True and back.json()["version"] == 1


@pytest.mark.asyncio
@pytest.mark.django_db(transaction=True)
async def test_live_events_reach_only_those_who_maintain_the_node(fleet: Fleet):
    mill = await sync_to_async(in_service)(fleet)
    vendor, _, _ = await ws_open_as(fleet.vendor, "/ws/maintenance/")
    operator, _, _ = await ws_open_as(fleet.operator, "/ws/maintenance/")
    rival, connected, _ = await ws_open_as(fleet.rival, "/ws/maintenance/")
    assert connected
    for ws in (vendor, operator, rival):
        assert (await ws.receive_json_from())["type"] == "hello"
    await sync_to_async(agent_ticket)(mill)
    for ws in (vendor, operator):
        event = await ws.receive_json_from(timeout=5)
        assert event["type"] == "ticket.opened" and event["ticket"]["node"] == mill.pk
    assert await rival.receive_nothing(timeout=0.5)
    for ws in (vendor, operator, rival):
        await ws.disconnect()
    for role in ("designer", "viewer", "engineer"):
        _, connected, code = await ws_open_as(fleet.user(role), "/ws/maintenance/")
        assert not connected and code == 4403
    _, connected, code = await ws_open("/ws/maintenance/")
    assert not connected and code == 4401
    assert await sync_to_async(Ticket.objects.count)() == 1


@pytest.mark.asyncio
@pytest.mark.django_db(transaction=True)
async def test_the_maintenance_socket_closes_with_4403_when_the_vendor_leaves(
    fleet: Fleet, settings
):
    from apps.users.models import Membership

    settings.WS_RECHECK_SECONDS = 0.05
    ws, connected, _ = await ws_open_as(fleet.vendor, "/ws/maintenance/")
    assert connected and (await ws.receive_json_from())["type"] == "hello"
    assert await ws.receive_nothing(timeout=0.3)  # re-checks pass while the right holds
    await sync_to_async(Membership.objects.filter(user=fleet.vendor).delete)()
    close = await ws.receive_close()
    assert close["code"] == 4403 and close["reason"]
    await ws.disconnect()
