"""Rules evaluated on ingest: alerts open, update, escalate and resolve; critical raises one
ticket; overrides per kind and per node; rule editing rights."""

from __future__ import annotations

import pytest
from django.core import mail
from django.core.exceptions import PermissionDenied, ValidationError

from apps.core.models import Notification
from apps.maintenance.models import Alert, ThresholdRule, Ticket
from apps.maintenance.services import alert_payload, rule_delete, rule_save
from tests.fixtures.fleet import Fleet
from tests.fixtures.machines import in_service


def test_defaults_are_installed_by_migration(db):
    assert ThresholdRule.objects.get(signal="temperature_c", node_kind="").critical == 85.0
    assert ThresholdRule.objects.get(signal="vibration_mm_s", node_kind="").warning == 2.5
    spike = ThresholdRule.objects.get(signal="power_kw", node_kind="")
    assert (spike.mode, spike.warning) == ("baseline_ratio", 1.2)


def test_a_sustained_warning_opens_one_alert_and_updates_it(mill, send):
    for t in range(0, 30, 2):  # 2.8 mm/s for 30 s: above 2.5 for longer than 10 s
        send(mill, t, vibration_mm_s=2.8)
    alert = Alert.objects.get(node=mill)
    assert alert.severity == "warning" and alert.signal == "vibration_mm_s"
    assert alert.resolved_at is None
    assert alert.count == 10  # opened at t=10, then t=12..28
    assert (alert.last_seen - alert.first_seen).total_seconds() == 28
    assert not Ticket.objects.exists()  # a warning alone raises no ticket


def test_a_short_spike_raises_nothing(mill, send):
    send(mill, 0, temperature_c=60)
    send(mill, 1, temperature_c=95)
    send(mill, 2, temperature_c=60)
    send(mill, 20, temperature_c=60)
    assert not Alert.objects.exists()


def test_back_within_limits_resolves_the_alert(mill, send):
    for t in range(0, 16):
        send(mill, t, temperature_c=80)
    for t in range(16, 30):
        send(mill, t, temperature_c=70)  # below 75 - 5%
    alert = Alert.objects.get(node=mill)
    assert alert.resolved_at is not None
    # a new excursion later is a new alert
    for t in range(30, 45):
        send(mill, t, temperature_c=80)
    assert Alert.objects.filter(node=mill).count() == 2


def test_critical_escalates_the_alert_and_raises_one_ticket_with_mail(mill, send, fleet: Fleet):
    for t in range(0, 12):
        send(mill, t, temperature_c=80)
    for t in range(12, 60):
        send(mill, t, temperature_c=92)
    alert = Alert.objects.get(node=mill)
    assert alert.severity == "critical" and alert.peak == 92
    ticket = Ticket.objects.get(node=mill)
    assert (ticket.issue_type, ticket.severity, ticket.priority) == ("overheating", "critical", 1)
    assert ticket.evidence["alert"] == alert.pk and ticket.evidence["threshold"] == 85
    assert ticket.occurrences == 1  # the alert stays open: no new findings
    # the vendor's staff and the site's operator hear of it, in-app and by e-mail
    told = set(Notification.objects.filter(level="critical").values_list("user__email", flat=True))
    assert told == {"vendor@f.test", "op@f.test"}
    assert len(mail.outbox) == 1 and set(mail.outbox[0].to) == told


def test_power_spike_is_relative_to_the_nodes_rated_power(mill, send):
    for t in range(0, 15):
        send(mill, t, power_kw=8.0)  # 7.5 kW rated: 8.0 is below 1.2 x 7.5
    assert not Alert.objects.exists()
    for t in range(15, 30):
        send(mill, t, power_kw=9.5)
    assert Alert.objects.get(node=mill).signal == "power_kw"


def test_kind_and_node_overrides_apply(fleet: Fleet, send):
    printer = in_service(fleet, name="P-1", kind="fdm_printer", rated_power_kw=0.35)
    for t in range(0, 20):
        send(printer, t, temperature_c=210)  # a hot end at 210 C is normal
    assert not Alert.objects.exists()
    rule_save(by=fleet.vendor, signal="temperature_c", node=printer, warning=200, critical=240)
    for t in range(20, 40):
        send(printer, t, temperature_c=210)
    assert Alert.objects.get(node=printer).threshold == 200


def test_rules_on_extra_signals(mill, send, fleet: Fleet):
    rule_save(by=fleet.admin, signal="coolant_temp_c", warning=40, critical=50)
    for t in range(0, 20):
        send(mill, t, extra={"coolant_temp_c": 45})
    assert Alert.objects.get(node=mill).signal == "coolant_temp_c"


def test_who_may_edit_rules(fleet: Fleet, mill):
    with pytest.raises(PermissionDenied):
        rule_save(by=fleet.vendor, signal="temperature_c", warning=1, critical=2)
    with pytest.raises(PermissionDenied):
        rule_save(by=fleet.rival, signal="temperature_c", node=mill, warning=1, critical=2)
    with pytest.raises(PermissionDenied):
        rule_save(by=fleet.designer, signal="temperature_c", node=mill, warning=1, critical=2)
    rule = rule_save(by=fleet.operator, signal="temperature_c", node=mill, warning=1, critical=2)
    assert rule.scope == "node"
    with pytest.raises(ValidationError) as bad:
        rule_save(by=fleet.admin, signal="temperature_c", warning=90, critical=80)
    assert "critical" in bad.value.message_dict
    default = ThresholdRule.objects.get(signal="temperature_c", node_kind="", node=None)
    with pytest.raises(ValidationError):
        rule_delete(by=fleet.admin, rule=default)
    rule_delete(by=fleet.operator, rule=rule)
    assert not ThresholdRule.objects.filter(node=mill).exists()


@pytest.mark.django_db(transaction=True)
def test_two_processes_evaluating_a_nodes_first_reading_do_not_collide(fleet: Fleet, default_rules):
    """Ingest processes and MQTT bridges may evaluate the same node at once: the second insert of
    a signal's first state used to fail on (node, signal, mode) and turn a stored batch into a
    500."""
    import threading
    import time

    import psycopg
    from django.db import connection
    from django.utils import timezone

    from apps.maintenance.models import SignalState
    from apps.maintenance.services.alerts import alerts_evaluate

    node = in_service(fleet)
    settings = connection.settings_dict
    other = psycopg.connect(
        host=settings["HOST"] or "127.0.0.1",
        port=settings["PORT"] or 5432,
        user=settings["USER"],
        dbname=settings["NAME"],
    )
    try:
        # the other process has inserted the state and not committed yet
        other.execute(
            "INSERT INTO maintenance_signalstate (node_id, signal, mode, level, pending_level) "
            "VALUES (%s, 'temperature_c', 'above', 'normal', '')",
            [node.pk],
        )
        outcome: list[object] = []

        def evaluate() -> None:
            try:
                outcome.append(
                    alerts_evaluate(
                        node_id=node.pk, at=timezone.now(), readings={"temperature_c": 50}
                    )
                )
            except Exception as exc:
                outcome.append(exc)
            finally:
                connection.close()

        worker = threading.Thread(target=evaluate)
        worker.start()
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:  # until our insert waits for the other's row
            waiting = other.execute(
                "SELECT count(*) FROM pg_locks WHERE NOT granted AND pid IN "
                "(SELECT pid FROM pg_stat_activity WHERE datname = current_database())"
            ).fetchone()
            if waiting and waiting[0]:
                break
            time.sleep(0.02)
        else:
            pytest.fail("the evaluation never waited for the other insert")
        other.commit()
    finally:
        other.close()
    worker.join(timeout=20)
    assert outcome == [[]], outcome  # no IntegrityError, nothing raised
    state = SignalState.objects.get(node=node, signal="temperature_c", mode="above")
    assert state.value == 50 and state.seen_at is not None


def test_a_drop_below_the_limit_opens_an_alert_and_a_ticket_in_words(mill, send, fleet: Fleet):
    rule_save(
        by=fleet.admin,
        signal="coolant_flow_l_min",
        mode="below",
        warning=10,
        critical=5,
    )
    for t in range(0, 20):
        send(mill, t, extra={"coolant_flow_l_min": 12})
    assert not Alert.objects.exists()
    for t in range(20, 50):
        send(mill, t, extra={"coolant_flow_l_min": 3 if t < 40 else 4})
    alert = Alert.objects.get(node=mill)
    assert (alert.severity, alert.threshold, alert.peak, alert.value) == ("critical", 5, 3, 4)
    ticket = Ticket.objects.get(node=mill)
    assert ticket.title == "Coolant flow 3 l/min below the critical limit of 5 l/min on Mill-01"
    assert ticket.evidence["reading"] == "3, below its limit of 5"
    assert "critical < 5 l/min" in alert.rule_text
    # back up, past the warning's band (10.5): resolved
    for t in range(50, 70):
        send(mill, t, extra={"coolant_flow_l_min": 11})
    alert.refresh_from_db()
    assert alert.resolved_at is not None


def test_a_rate_rule_fires_on_a_fast_change_either_way(mill, send, fleet: Fleet):
    rule_save(
        by=fleet.vendor,
        signal="temperature_c",
        node=mill,
        mode="rate",
        warning=2,
        critical=5,
        min_duration_s=0,
    )
    for t in range(0, 300, 10):  # steady at 40 C, then 0.5 C per minute: no rule fires
        send(mill, t, temperature_c=40 + t / 120)
    assert not Alert.objects.exists()
    for t in range(300, 500, 10):  # falling 6 C per minute (a coolant flood, a dead heater)
        send(mill, t, temperature_c=42.5 - (t - 300) / 10)
    alert = Alert.objects.get(node=mill)
    assert alert.severity == "critical" and alert.value == pytest.approx(6.0)
    assert alert.threshold == 5
    ticket = Ticket.objects.get(node=mill)
    assert ticket.title == (
        "Temperature changing faster than the critical limit of 5 °C a minute "
        "(6 °C a minute) on Mill-01"
    )
    for t in range(500, 800, 10):  # steady again
        send(mill, t, temperature_c=22.5)
    alert.refresh_from_db()
    assert alert.resolved_at is not None


def test_below_and_rate_rules_are_validated(fleet: Fleet):
    with pytest.raises(ValidationError) as bad:
        rule_save(by=fleet.admin, signal="flow", mode="below", warning=5, critical=10)
    assert bad.value.message_dict["critical"] == [
        "Below a limit, the critical limit must be below the warning limit."
    ]
    with pytest.raises(ValidationError) as bad:
        rule_save(by=fleet.admin, signal="flow", mode="rate", warning=-1, critical=None)
    assert "positive" in bad.value.message_dict["warning"][0]
    with pytest.raises(ValidationError) as bad:
        rule_save(by=fleet.admin, signal="flow", mode="sideways", warning=1, critical=2)
    assert "mode" in bad.value.message_dict
    rule = rule_save(by=fleet.admin, signal="flow", mode="below", warning=10, critical=5)
    assert rule.describe() == "warning < 10, critical < 5 (default)"


def test_a_power_spike_is_told_in_words_in_the_ticket_notification_mail_and_toast(
    mill, send, fleet: Fleet
):
    # given: Mill-01 (7.5 kW rated; critical above 1.5 x rated = 11.25 kW) draws 14.96 kW
    for t in range(0, 15):
        send(mill, t, power_kw=14.96)
    # then: one sentence, built in apps.core.labels, everywhere a person reads it
    sentence = "Power 14.96 kW above the critical limit of 11.25 kW on Mill-01"
    ticket = Ticket.objects.get(node=mill)
    assert ticket.title == sentence
    notices = Notification.objects.filter(level="critical")
    assert {n.title for n in notices} == {f"New ticket: {sentence}"}
    (message,) = mail.outbox
    assert message.subject == f"[Imewe] Critical: {sentence}"
    assert f"Critical ticket #{ticket.pk} on Mill-01: {sentence}" in message.body
    assert "power_kw" not in message.subject + message.body
    # the websocket's alert carries the toast's text beside the codes the API keeps
    alert = Alert.objects.get(node=mill)
    payload = alert_payload(alert)
    assert payload["text"] == sentence and payload["signal"] == "power_kw"
    for t in range(15, 40):
        send(mill, t, power_kw=5.0)
    alert.refresh_from_db()
    assert alert.resolved_at is not None
    assert alert_payload(alert)["text"] == "Power back within its limits on Mill-01"
