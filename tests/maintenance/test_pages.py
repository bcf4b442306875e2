"""The maintenance portal pages: fleet health, the ticket queue, a ticket, a node's maintenance
view, threshold rules and the model registry; who sees what, the actions, and errors shown on
the page instead of a 500."""

from __future__ import annotations

import json
import re
from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone

from apps.core.ml import Comparison, model_register
from apps.core.models import TrainedModel
from apps.maintenance.models import MaintenanceWindow, ThresholdRule, Ticket
from apps.maintenance.services import (
    fleet_monitor,
    ticket_assign,
    ticket_create,
    ticket_raise,
    window_schedule,
)
from apps.vendors.models import FabricationNode
from tests.conftest import portal_client
from tests.fixtures.fleet import Fleet
from tests.fixtures.machines import in_service, rival_node
from tests.maintenance.factories import PredictionFactory

pytestmark = pytest.mark.django_db

OUTSIDERS = ("designer", "viewer", "engineer")


def agent_ticket(node: FabricationNode, issue: str = "vibration", severity: str = "critical"):
    return ticket_raise(
        node=node,
        issue_type=issue,
        severity=severity,
        title=f"{node.name}: {issue} {severity}",
        evidence={"signal": "vibration_mm_s", "value": 4.4, "threshold": 4.0},
        suggested_action="Inspect the bearings.",
    )[0]


def local(minutes: float) -> str:
    """A datetime-local field's value, `minutes` from now (UTC, the site's zone)."""
    return (timezone.now() + timedelta(minutes=minutes)).strftime("%Y-%m-%dT%H:%M")


def json_of(page: Any, element_id: str) -> Any:
    match = re.search(
        rf'<script id="{element_id}" type="application/json">(.*?)</script>',
        page.content.decode(),
        re.S,
    )
    assert match, element_id
    return json.loads(match.group(1))


# --- Who sees what -----------------------------------------------------------------------------


def test_fleet_health_shows_each_role_its_nodes_grouped_by_site(fleet: Fleet, mill):
    other = rival_node(fleet)
    agent_ticket(mill)
    agent_ticket(mill, issue="overheating", severity="warning")
    agent_ticket(other)
    fleet_monitor()
    admin = portal_client(fleet.admin).get("/maintenance/")
    assert admin.status_code == 200
    for text in (b"Mill-01", b"Rival-Mill", b"Site A", b"No site", b"maintenance_live.js"):
        assert text in admin.content, text
    vendor = portal_client(fleet.vendor).get("/maintenance/")
    assert vendor.status_code == 200 and b"Rival-Mill" not in vendor.content
    html = vendor.content.decode()
    # one critical and one warning ticket, each linking to the filtered queue
    assert f"?node={mill.pk}&amp;severity=critical" in html
    assert re.search(r'data-total="critical">1<', html) and re.search(
        r'data-total="warning">1<', html
    )
    assert f'href="/maintenance/nodes/{mill.pk}/"' in html
    # the monitor has scored it (silent, so offline, and open tickets take points off)
    assert "pill-offline" in html and 'data-field="score">' in html
    operator = portal_client(fleet.operator).get("/maintenance/")
    assert b"Mill-01" in operator.content and b"Rival-Mill" not in operator.content
    rival = portal_client(fleet.rival).get("/maintenance/")
    assert b"Rival-Mill" in rival.content and b"Mill-01" not in rival.content
    assert b"No site" in rival.content
    for role in OUTSIDERS:
        assert portal_client(fleet.user(role)).get("/maintenance/").status_code == 403, role


def test_an_empty_fleet_says_so(fleet: Fleet):
    page = portal_client(fleet.vendor).get("/maintenance/")
    assert page.status_code == 200 and b"You maintain no nodes" in page.content


def test_the_nav_offers_maintenance_to_those_who_maintain(fleet: Fleet):
    assert b'href="/maintenance/"' in portal_client(fleet.operator).get("/maintenance/").content
    home = portal_client(fleet.designer).get("/twins/")
    assert b'href="/maintenance/"' not in home.content


def test_the_queue_per_role_with_filters(fleet: Fleet, mill):
    other = rival_node(fleet)
    critical = agent_ticket(mill)
    warning = agent_ticket(mill, issue="overheating", severity="warning")
    theirs = agent_ticket(other)
    admin = portal_client(fleet.admin).get("/maintenance/tickets/")
    assert admin.status_code == 200
    assert critical.title.encode() in admin.content and theirs.title.encode() in admin.content
    vendor = portal_client(fleet.vendor)
    page = vendor.get("/maintenance/tickets/").content.decode()
    assert theirs.title not in page
    # most urgent first
    assert page.index(critical.title) < page.index(warning.title)
    assert ">P1<" in page and ">P3<" in page
    only_critical = vendor.get("/maintenance/tickets/?severity=critical").content.decode()
    assert critical.title in only_critical and warning.title not in only_critical
    by_node = vendor.get(f"/maintenance/tickets/?node={mill.pk}&issue_type=overheating")
    assert (
        warning.title.encode() in by_node.content and critical.title.encode() not in by_node.content
    )
    mine = vendor.get("/maintenance/tickets/?assignee=me")
    assert b"No tickets match these filters" in mine.content
    op = portal_client(fleet.operator).get(f"/maintenance/tickets/?site={fleet.site.pk}")
    assert critical.title.encode() in op.content and theirs.title.encode() not in op.content
    rival = portal_client(fleet.rival).get("/maintenance/tickets/").content.decode()
    assert theirs.title in rival and critical.title not in rival
    # the live script knows the nodes and the filters, to add new tickets that match
    live = json_of(vendor.get("/maintenance/tickets/?severity=critical"), "queue-live")
    assert live["filters"]["severity"] == ["critical"] and str(mill.pk) in live["nodes"]
    for role in OUTSIDERS:
        assert portal_client(fleet.user(role)).get("/maintenance/tickets/").status_code == 403, role


def test_resolved_tickets_leave_the_default_queue(fleet: Fleet, mill):
    ticket = agent_ticket(mill)
    vendor = portal_client(fleet.vendor)
    vendor.post(f"/maintenance/tickets/{ticket.pk}/transition/", {"to": "resolved", "note": "ok"})
    assert ticket.title.encode() not in vendor.get("/maintenance/tickets/").content
    assert b"No active tickets" in vendor.get("/maintenance/tickets/").content
    assert ticket.title.encode() in vendor.get("/maintenance/tickets/?status=all").content
    assert ticket.title.encode() in vendor.get("/maintenance/tickets/?status=resolved").content


def test_a_ticket_of_another_vendor_is_not_found(fleet: Fleet, mill):
    ticket = agent_ticket(mill)
    url = f"/maintenance/tickets/{ticket.pk}/"
    for who in ("admin", "vendor", "operator"):
        assert portal_client(fleet.user(who)).get(url).status_code == 200, who
    rival = portal_client(fleet.rival)
    assert rival.get(url).status_code == 404
    assert rival.get(f"/maintenance/nodes/{mill.pk}/").status_code == 404
    acted = rival.post(f"{url}transition/", {"to": "acknowledged"})
    assert acted.status_code == 404
    assert Ticket.objects.get(pk=ticket.pk).status == "open"
    for role in OUTSIDERS:
        assert portal_client(fleet.user(role)).get(url).status_code == 403, role
        assert (
            portal_client(fleet.user(role)).get(f"/maintenance/nodes/{mill.pk}/").status_code == 403
        )


# --- A ticket ----------------------------------------------------------------------------------


def test_the_ticket_page_shows_evidence_and_charts(fleet: Fleet, mill, send):
    for t in range(0, 20):  # vibration past the critical 4.0 for longer than 10 s
        send(mill, t, vibration_mm_s=4.6, temperature_c=40)
    ticket = Ticket.objects.get(node=mill)
    PredictionFactory.create(
        node=mill,
        at=timezone.now() - timedelta(minutes=25),
        anomaly_score=0.8,
        anomaly_threshold=0.6,
        failure_probability=0.4,
        models_used={"maintenance.anomaly": 2},
    )
    page = portal_client(fleet.operator).get(f"/maintenance/tickets/{ticket.pk}/")
    assert page.status_code == 200
    html = page.content.decode()
    for text in ("Vibration (mm/s)", "Out of limits since", "Inspect spindle bearings", "Opened"):
        assert text in html, text
    chart = json_of(page, "chart-evidence-data")
    lines = {s["label"]: s for s in chart["series"]}
    assert len(lines["Vibration (mm/s)"]["data"]) == 20
    assert {y for _, y in lines["Threshold (4)"]["data"]} == {4.0}
    assert 'role="img"' in html and "<noscript>" in html and "chart.umd.min.js" in html
    scores = json_of(page, "chart-scores-data")
    assert [s["data"][0][1] for s in scores["series"]] == [0.8, 0.6, 0.4]
    # the buttons valid from "open"; resolve needs its form
    assert 'value="acknowledged"' in html and 'value="in_progress"' in html
    assert 'value="closed"' not in html and "The machine really failed" in html


def test_acknowledge_assign_note_and_resolve(fleet: Fleet, mill):
    ticket = agent_ticket(mill)
    op = portal_client(fleet.operator)
    url = f"/maintenance/tickets/{ticket.pk}/"
    done = op.post(f"{url}transition/", {"to": "acknowledged"}, follow=True)
    assert b"Ticket acknowledged." in done.content
    assert Ticket.objects.get(pk=ticket.pk).status == "acknowledged"

    assigned = op.post(f"{url}assign/", {"assignee": fleet.vendor.pk}, follow=True)
    assert b"Assigned to vendor@f.test." in assigned.content
    assert Ticket.objects.get(pk=ticket.pk).assignee == fleet.vendor
    noted = op.post(f"{url}notes/", {"text": "bearing is noisy"}, follow=True)
    assert b"Note added." in noted.content and b"bearing is noisy" in noted.content

    resolved = op.post(
        f"{url}transition/", {"to": "resolved", "note": "replaced", "was_failure": "on"}
    )
    assert resolved.status_code == 302
    ticket.refresh_from_db()
    assert (ticket.status, ticket.resolution, ticket.was_failure) == ("resolved", "replaced", True)
    page = op.get(url).content.decode()
    assert "the machine really failed" in page and 'value="closed"' in page and "Reopen" in page
    assert [e.kind for e in ticket.events.all()] == [
        "opened",
        "status",
        "assigned",
        "note",
        "status",
    ]


def test_invalid_ticket_actions_show_the_error_on_the_page(fleet: Fleet, mill):
    ticket = agent_ticket(mill)
    vendor = portal_client(fleet.vendor)
    url = f"/maintenance/tickets/{ticket.pk}/"
    no_note = vendor.post(f"{url}transition/", {"to": "resolved", "note": "  "})
    assert no_note.status_code == 400 and b"Say what was done to resolve it." in no_note.content
    wrong_way = vendor.post(f"{url}transition/", {"to": "closed"}, follow=True)
    assert b"A ticket cannot go from open to closed." in wrong_way.content
    unknown = vendor.post(f"{url}transition/", {"to": "exploded"}, follow=True)
    assert unknown.status_code == 200 and b"Not changed" in unknown.content
    designer = vendor.post(f"{url}assign/", {"assignee": fleet.designer.pk})
    assert designer.status_code == 400 and b"Select a valid choice" in designer.content
    empty = vendor.post(f"{url}notes/", {"text": ""})
    assert empty.status_code == 400 and b"This field is required." in empty.content
    ticket.refresh_from_db()
    assert ticket.status == "open" and ticket.assignee is None


def test_schedule_a_window_for_the_tickets_node(fleet: Fleet, mill):
    ticket = agent_ticket(mill)
    vendor = portal_client(fleet.vendor)
    url = f"/maintenance/tickets/{ticket.pk}/windows/"
    planned = vendor.post(
        url,
        {
            "kind": "predictive",
            "starts_at": local(60),
            "ends_at": local(180),
            "reason": "bearing pack swap",
        },
        follow=True,
    )
    assert b"planned from" in planned.content
    window = MaintenanceWindow.objects.get(node=mill)
    assert window.ticket == ticket and window.status == "planned"
    assert b"bearing pack swap" in planned.content  # listed on the ticket
    backwards = vendor.post(
        url,
        {"kind": "predictive", "starts_at": local(300), "ends_at": local(240), "reason": "x"},
    )
    assert backwards.status_code == 400
    assert b"The window must end after it starts." in backwards.content
    clash = vendor.post(
        url, {"kind": "emergency", "starts_at": local(90), "ends_at": local(120), "reason": "y"}
    )
    assert clash.status_code == 400 and b"already has a predictive window" in clash.content
    assert MaintenanceWindow.objects.count() == 1


# --- The queue's form and query count -----------------------------------------------------------


def test_open_a_ticket_by_hand(fleet: Fleet, mill):
    other = rival_node(fleet)
    vendor = portal_client(fleet.vendor)
    made = vendor.post(
        "/maintenance/tickets/new/",
        {
            "node": mill.pk,
            "issue_type": "other",
            "severity": "warning",
            "title": "Coolant leak",
            "description": "puddle under the machine",
        },
    )
    ticket = Ticket.objects.get(title="Coolant leak")
    assert made.status_code == 302 and made["Location"] == f"/maintenance/tickets/{ticket.pk}/"
    assert not ticket.opened_by_agent and ticket.created_by == fleet.vendor
    blank = vendor.post(
        "/maintenance/tickets/new/",
        {"node": mill.pk, "issue_type": "other", "severity": "warning", "title": ""},
    )
    assert blank.status_code == 400 and b"This field is required." in blank.content
    assert b'id="new-ticket" open' in blank.content
    theirs = vendor.post(
        "/maintenance/tickets/new/",
        {"node": other.pk, "issue_type": "other", "severity": "warning", "title": "Not mine"},
    )
    assert theirs.status_code == 400 and b"Select a valid choice" in theirs.content
    assert not Ticket.objects.filter(node=other).exists()


@pytest.mark.parametrize("tickets", [3, 30])
def test_the_queue_page_runs_a_fixed_number_of_queries(
    fleet: Fleet,
    mill,
    tickets,
    django_assert_max_num_queries,
):
    second = in_service(fleet, name="Mill-02", site=None)
    for i in range(tickets):
        ticket = ticket_create(
            by=fleet.vendor,
            node=mill if i % 2 else second,
            issue_type="other",
            severity="warning" if i % 3 else "info",
            title=f"Ticket {i}",
        )
        if i % 4 == 0:
            ticket_assign(by=fleet.vendor, ticket=ticket, assignee=fleet.vendor)
    client = portal_client(fleet.vendor)
    client.get("/maintenance/tickets/")  # warm the session and the role's permissions
    # 9 today: session, user, 2 x permissions, nodes (filters, form), count, page, unread
    with django_assert_max_num_queries(10):
        page = client.get("/maintenance/tickets/")
    assert page.status_code == 200
    assert page.content.count(b"<tr data-ticket=") == min(tickets, 25)


# --- A node --------------------------------------------------------------------------------------


def test_the_node_page_for_each_role(fleet: Fleet, mill):
    agent_ticket(mill)
    fleet_monitor()
    for hours_ago, score in ((3, 0.2), (1, 0.7)):
        PredictionFactory.create(
            node=mill,
            at=timezone.now() - timedelta(hours=hours_ago),
            anomaly_score=score,
            anomaly_threshold=0.6,
            failure_probability=score / 2,
            rul_hours=500 - 100 * score,
            models_used={"maintenance.rul": 1},
        )
    PredictionFactory.create(node=mill, at=timezone.now() - timedelta(hours=30), rul_hours=9)
    for who in ("admin", "vendor", "operator"):
        page = portal_client(fleet.user(who)).get(f"/maintenance/nodes/{mill.pk}/")
        assert page.status_code == 200, who
        html = page.content.decode()
        for text in ("Mill-01", "What took points off", "Threshold rules in force", "Open tickets"):
            assert text in html, (who, text)
    scores = json_of(page, "chart-scores-data")
    assert [y for _, y in scores["series"][0]["data"]] == [0.2, 0.7]  # the last 24 h only
    rul = json_of(page, "chart-rul-data")
    assert [y for _, y in rul["series"][0]["data"]] == [480, 430]
    assert "maintenance.rul v1" in html


def test_a_node_without_predictions_says_so(fleet: Fleet, mill):
    page = portal_client(fleet.vendor).get(f"/maintenance/nodes/{mill.pk}/")
    assert b"No predictions in the last 24 hours" in page.content
    assert b"has not scored this node yet" in page.content
    assert b"chart.umd.min.js" not in page.content


def test_windows_on_the_node_page_start_complete_and_cancel(fleet: Fleet, mill):
    op = portal_client(fleet.operator)
    url = f"/maintenance/nodes/{mill.pk}/"
    now = op.post(
        f"{url}windows/",
        {"kind": "emergency", "starts_at": local(-1), "ends_at": local(120), "reason": "smoke"},
        follow=True,
    )
    assert b"is in maintenance" in now.content
    active = MaintenanceWindow.objects.get(node=mill)
    assert active.status == "active"
    assert FabricationNode.objects.get(pk=mill.pk).status == "maintenance"
    no_text = op.post(f"/maintenance/windows/{active.pk}/complete/", {"work_done": ""})
    assert no_text.status_code == 400 and b"Record what was done." in no_text.content
    done = op.post(
        f"/maintenance/windows/{active.pk}/complete/", {"work_done": "new fan"}, follow=True
    )
    assert b"completed; the node is back in service" in done.content
    assert FabricationNode.objects.get(pk=mill.pk).status == "idle"

    later = window_schedule(
        by=fleet.vendor,
        node=mill,
        kind="scheduled",
        starts_at=timezone.now() + timedelta(days=1),
        ends_at=timezone.now() + timedelta(days=1, hours=2),
        reason="service",
    )
    assert b"Cancel</button>" in op.get(url).content
    cancelled = op.post(f"/maintenance/windows/{later.pk}/cancel/", follow=True)
    assert b"cancelled" in cancelled.content
    assert MaintenanceWindow.objects.get(pk=later.pk).status == "cancelled"
    again = op.post(f"/maintenance/windows/{later.pk}/cancel/", follow=True)
    assert b"Only a planned window can be cancelled" in again.content
    assert (
        portal_client(fleet.rival).post(f"/maintenance/windows/{later.pk}/cancel/").status_code
        == 404
    )


def test_override_a_rule_for_one_node_and_remove_it(fleet: Fleet, mill):
    vendor = portal_client(fleet.vendor)
    url = f"/maintenance/nodes/{mill.pk}/"
    prefilled = vendor.get(f"{url}?rule=vibration_mm_s:above")
    assert b'name="warning" value="2.5"' in prefilled.content
    form = {
        "signal": "vibration_mm_s",
        "mode": "above",
        "warning": "3",
        "critical": "5",
        "hysteresis_pct": "5",
        "min_duration_s": "20",
        "enabled": "on",
    }
    saved = vendor.post(f"{url}rules/", form, follow=True)
    assert b"Rule saved for Mill-01" in saved.content and b"this node" in saved.content
    rule = ThresholdRule.objects.get(node=mill, signal="vibration_mm_s")
    assert (rule.warning, rule.critical, rule.min_duration_s) == (3.0, 5.0, 20.0)
    bad = vendor.post(f"{url}rules/", {**form, "critical": "2"})
    assert bad.status_code == 400
    assert b"The critical limit must be above the warning limit." in bad.content
    assert portal_client(fleet.rival).post(f"{url}rules/", form).status_code == 404
    removed = vendor.post(f"{url}rules/{rule.pk}/delete/", follow=True)
    assert b"rule removed" in removed.content
    assert not ThresholdRule.objects.filter(node=mill).exists()


# --- Rules and the registry ---------------------------------------------------------------------


def test_admins_edit_default_and_kind_rules_others_read(fleet: Fleet):
    admin = portal_client(fleet.admin)
    page = admin.get("/maintenance/rules/")
    assert page.status_code == 200 and b"Save rule" in page.content
    form = {
        "signal": "temperature_c",
        "node_kind": "cnc_mill",
        "mode": "above",
        "warning": "70",
        "critical": "80",
        "hysteresis_pct": "5",
        "min_duration_s": "10",
        "enabled": "on",
    }
    assert admin.post("/maintenance/rules/", form).status_code == 302
    rule = ThresholdRule.objects.get(
        signal="temperature_c", node_kind="cnc_mill", node=None, mode="above"
    )
    assert rule.critical == 80 and rule.updated_by == fleet.admin
    listed = admin.get("/maintenance/rules/").content.decode()
    assert "<td>CNC mill</td>" in listed and "<td>Temperature (°C)</td>" in listed
    edit = admin.get(f"/maintenance/rules/?edit={rule.pk}")
    assert b'<option value="cnc_mill" selected>' in edit.content
    no_limits = admin.post("/maintenance/rules/", {**form, "warning": "", "critical": ""})
    assert no_limits.status_code == 400
    assert b"Give a warning or a critical limit (or both)." in no_limits.content
    deleted = admin.post(f"/maintenance/rules/{rule.pk}/delete/", follow=True)
    assert b"was removed" in deleted.content
    default = ThresholdRule.objects.get(signal="temperature_c", node_kind="", node=None)
    refused = admin.post(f"/maintenance/rules/{default.pk}/delete/", follow=True)
    assert b"A default rule can be changed or disabled, not deleted." in refused.content

    for who in ("vendor", "operator"):
        client = portal_client(fleet.user(who))
        seen = client.get("/maintenance/rules/")
        assert seen.status_code == 200 and b"Save rule" not in seen.content
        shown = seen.content.decode()
        assert "Temperature (°C)" in shown and ">temperature_c<" not in shown
        assert client.post("/maintenance/rules/", form).status_code == 403
    for role in OUTSIDERS:
        assert portal_client(fleet.user(role)).get("/maintenance/rules/").status_code == 403


def register(name: str, mae: float, active: float | None) -> TrainedModel:
    return model_register(
        name=name,
        algorithm="xgboost regressor",
        artifact=b"x",
        features=["a", "b"],
        metrics={"mae_h": mae, "rmse_h": mae * 1.5, "baseline": {"mean": 9.0}},
        training={
            "rows": 800,
            "held_out_rows": 200,
            "from": "2026-01-01T00:00",
            "to": "2026-02-01",
        },
        comparison=Comparison(metric="mae_h", candidate=mae, baseline=9.0, active=active),
    )


def test_the_model_registry_and_rollback(fleet: Fleet):
    register("maintenance.rul", 4.123456, None)
    register("maintenance.rul", 3.5, 4.123456)
    admin = portal_client(fleet.admin)
    page = admin.get("/maintenance/models/")
    assert page.status_code == 200
    html = page.content.decode()
    for text in ("Remaining useful life (hours)", "4.123", "MAE (h)", "RMSE (h)", "800 rows"):
        assert text in html, text
    assert html.count("Make active") == 1  # v1; v2 is the active one
    chart = json_of(page, "chart-model-0-data")
    assert chart["labels"] == ["v1", "v2"] and chart["series"][0]["data"] == [4.123456, 3.5]

    for who in ("engineer", "operator"):
        seen = portal_client(fleet.user(who)).get("/maintenance/models/")
        assert seen.status_code == 200 and b"Make active" not in seen.content, who
        refused = portal_client(fleet.user(who)).post(
            "/maintenance/models/rollback/", {"name": "maintenance.rul", "version": 1}
        )
        assert refused.status_code == 403, who
    for who in ("vendor", "designer", "viewer"):
        assert portal_client(fleet.user(who)).get("/maintenance/models/").status_code == 403, who

    rolled = admin.post(
        "/maintenance/models/rollback/", {"name": "maintenance.rul", "version": 1}, follow=True
    )
    assert b"Remaining useful life (hours) v1 is now the active version." in rolled.content
    assert TrainedModel.objects.get(name="maintenance.rul", is_active=True).version == 1
    missing = admin.post(
        "/maintenance/models/rollback/", {"name": "maintenance.rul", "version": 7}, follow=True
    )
    assert b"There is no version 7 of maintenance.rul." in missing.content


def test_an_empty_registry_says_so(fleet: Fleet):
    page = portal_client(fleet.engineer).get("/maintenance/models/")
    assert page.status_code == 200 and b"No model has been trained yet" in page.content


def test_the_rules_page_saves_and_shows_below_and_rate_rules(fleet: Fleet, mill):
    admin = portal_client(fleet.admin)
    page = admin.get("/maintenance/rules/")
    assert b'<option value="below">' in page.content and b'<option value="rate">' in page.content
    form = {
        "signal": "power_kw",
        "node_kind": "cnc_mill",
        "mode": "below",
        "warning": "0.5",
        "critical": "0.2",
        "hysteresis_pct": "5",
        "min_duration_s": "30",
        "enabled": "on",
    }
    assert admin.post("/maintenance/rules/", form).status_code == 302
    listed = admin.get("/maintenance/rules/")
    assert b"value below" in listed.content
    upside_down = admin.post("/maintenance/rules/", {**form, "critical": "0.9"})
    assert upside_down.status_code == 400
    assert (
        b"Below a limit, the critical limit must be below the warning limit." in upside_down.content
    )
    vendor = portal_client(fleet.vendor)
    saved = vendor.post(
        f"/maintenance/nodes/{mill.pk}/rules/",
        {**form, "signal": "temperature_c", "mode": "rate", "warning": "2", "critical": "5"},
        follow=True,
    )
    assert saved.status_code == 200
    assert b"5.00/min change" in saved.content and b"below 0.50" in saved.content


def test_the_registry_shows_a_detectors_false_alarms_and_why_it_stayed_inactive(fleet: Fleet):
    model_register(
        name="maintenance.anomaly.cnc_mill",
        algorithm="isolation forest",
        artifact=b"x",
        features=["a"],
        metrics={"false_alarms_per_node_week": 3.5, "false_alarm_bound_per_node_week": 1.0},
        training={"rows": 600, "held_out_rows": 200},
        comparison=Comparison(
            metric="false alarms per node-week",
            candidate=3.5,
            baseline=1.0,
            refused="7 false alarms in 336 node-hours of held-out healthy operation, 3.5 per "
            "node-week, above the bound of 1",
        ),
    )
    html = portal_client(fleet.admin).get("/maintenance/models/").content.decode()
    assert "False alarms per node-week (held-out healthy)" in html and "3.500" in html
    assert "kept inactive: 7 false alarms in 336 node-hours" in html
    assert not TrainedModel.objects.get(name="maintenance.anomaly.cnc_mill").is_active


def test_the_registry_leaves_out_an_empty_refusal(fleet: Fleet):
    model_register(
        name="maintenance.anomaly.fdm_printer",
        algorithm="isolation forest",
        artifact=b"x",
        features=["a"],
        metrics={"false_alarms_per_node_week": 0.5, "false_alarm_bound_per_node_week": 1.0},
        training={"rows": 600, "held_out_rows": 200},
        comparison=Comparison(metric="false alarms per node-week", candidate=0.5, baseline=1.0),
    )
    html = portal_client(fleet.admin).get("/maintenance/models/").content.decode()
    assert (
        "Comparison: active —, metric false alarms per node-week, baseline 1.000, candidate 0.500<"
        in html
    )
    assert ", refused" not in html  # no reason: nothing to say


def test_the_registry_names_models_and_metrics_in_words(fleet: Fleet):
    model_register(
        name="maintenance.rul",
        algorithm="xgboost regressor",
        artifact=b"x",
        features=["a"],
        metrics={
            "mae_h": 3.0,
            "baseline_mae_h": 9.5,
            "near_failure": {"within_h": 24, "rows": 40, "mae_h": 2.0},
        },
        training={"rows": 800, "held_out_rows": 200},
        comparison=Comparison(metric="mae_h", candidate=3.0, baseline=9.5),
    )
    model_register(
        name="maintenance.anomaly.cnc_mill",
        algorithm="isolation forest",
        artifact=b"x",
        features=["a"],
        metrics={"false_alarms_per_node_week": 0.5},
        training={"rows": 600},
        comparison=Comparison(metric="false_alarms_per_node_week", candidate=0.5, baseline=1.0),
    )
    html = portal_client(fleet.engineer).get("/maintenance/models/").content.decode()
    assert "Remaining useful life (hours)" in html and "Anomaly detector: CNC mill" in html
    assert "<dt>Baseline MAE (h)</dt>" in html
    near = re.search(r"Near failure: ([^<]*)<", html)
    assert near is not None
    assert set(near[1].split(", ")) == {"window before failure (h) 24", "rows 40", "MAE (h) 2.000"}
    assert "activated: MAE (h) 3" in html
    visible = re.sub(r"<[^>]+>", " ", html)  # the codes stay in the forms' values only
    for code in ("baseline_mae_h", "within_h", "Near_failure", "mae_h", "cnc_mill"):
        assert code not in visible, code
