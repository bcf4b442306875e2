"""score_history: the agent replayed over a node's past telemetry opens the tickets it would
have opened, at the times it would have, sends nothing, and leaves the live tickets alone."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.core import mail
from django.core.management import call_command
from django.utils import timezone

from apps.core.labels import codes_never_shown
from apps.core.models import Notification
from apps.maintenance.models import Alert, NodeHealth, Prediction, SignalState, Ticket
from apps.maintenance.services import ticket_raise
from apps.maintenance.services.replay import history_replay
from apps.telemetry.services import telemetry_import_history
from apps.vendors.models import FabricationNode
from tests.fixtures.fleet import Fleet

pytestmark = pytest.mark.django_db

START = timezone.now().replace(minute=0, second=0, microsecond=0) - timedelta(days=400)


def minute(m: float):
    return START + timedelta(minutes=m)


def _last_year(node: FabricationNode) -> None:
    """Three hours of a mill at one reading a minute, overheating (90 C, critical above 85)
    from minute 30 to 34 and from minute 120 to 124."""
    points = [
        {
            "node": node.pk,
            "time": minute(m).isoformat(),
            "temperature_c": 90.0 if 30 <= m < 35 or 120 <= m < 125 else 40.0,
        }
        for m in range(180)
    ]
    report = telemetry_import_history(points=points, node_id=node.pk)
    assert report.accepted == 180, report.as_dict()


def test_score_history_opens_the_rules_tickets_at_their_historical_times_and_sends_nothing(
    fleet: Fleet, mill, default_rules, django_capture_on_commit_callbacks
):
    # given last year's telemetry, and a live ticket already open on the node today
    _last_year(mill)
    with django_capture_on_commit_callbacks(execute=True):
        live, _ = ticket_raise(
            node=mill,
            issue_type=Ticket.IssueType.OVERHEATING,
            severity="critical",
            title="live overheating",
            evidence={"source": "threshold"},
            suggested_action="",
        )
    mail.outbox.clear()
    notifications = Notification.objects.count()
    assert notifications > 0  # the vendor's staff hear of live tickets
    live_before = Ticket.objects.values().get(pk=live.pk)
    # when the agent is replayed over it
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        report = history_replay(node=mill)
    # then the rules caught both spells one reading after they began (10 s minimum duration)
    assert report.points == 180 and report.start == minute(0) and report.end == minute(179)
    crossed = [f for f in report.findings if f.source == "threshold"]
    assert [(f.at, f.severity) for f in crossed] == [
        (minute(31), "critical"),
        (minute(121), "critical"),
    ]
    assert crossed[0].text == "Temperature 90 °C above the critical limit of 85 °C"
    # one replayed ticket, opened at the first spell and seen again at the second
    assert [(t.number, t.issue_type, t.opened_at) for t in report.tickets] == [
        ("R1", "overheating", minute(31))
    ]
    assert report.tickets[0].occurrences == 2
    assert {f.ticket for f in crossed} == {"R1"}
    assert report.cadence_s == 60
    # and nothing was sent, stored or touched
    assert callbacks == [] and mail.outbox == []
    assert Notification.objects.count() == notifications
    assert list(Ticket.objects.values_list("pk", flat=True)) == [live.pk]
    assert Ticket.objects.values().get(pk=live.pk) == live_before
    assert not Alert.objects.exists() and not SignalState.objects.exists()
    assert not Prediction.objects.exists() and not NodeHealth.objects.exists()
    assert FabricationNode.objects.count() == 1


def test_score_history_replays_a_range_and_the_command_prints_when(
    fleet: Fleet, mill, default_rules, capsys
):
    _last_year(mill)
    report = history_replay(node=mill, start=minute(60), end=minute(179))
    assert report.points == 120
    assert [f.at for f in report.findings] == [minute(121)]
    call_command(
        "score_history",
        node=mill.pk,
        start=minute(0).isoformat(),
        end=minute(100).isoformat(),
    )
    out = capsys.readouterr().out
    assert "101 readings" in out
    assert f"{minute(31):%Y-%m-%d %H:%M}" in out and "R1" in out
    assert "Nothing was stored or sent" in out
    assert not Ticket.objects.exists()
    # in words, as the pages say it: no codes
    finding = next(line for line in out.splitlines() if f"{minute(31):%Y-%m-%d %H:%M}" in line)
    assert "Threshold rule" in finding and "Critical" in finding
    assert "Temperature 90 °C above the critical limit of 85 °C -> R1" in finding
    assert "  R1: Overheating, critical, opened" in out
    codes = set(re.findall(r"\b[a-z0-9]+(?:_[a-z0-9]+)+\b", out))
    assert not codes & codes_never_shown(), codes & codes_never_shown()


def test_score_history_rejects_an_unknown_node_and_a_bad_range(db):
    from django.core.management.base import CommandError

    with pytest.raises(CommandError, match="No node 123456"):
        call_command("score_history", node=123456)
    with pytest.raises(ValueError, match="end is before its start"):
        history_replay(node=FabricationNode(pk=1), start=minute(10), end=minute(0))


def test_score_history_rules_on_the_newest_reading_of_each_interval(
    fleet: Fleet, mill, default_rules
):
    # given the same history, the rules run as ingest would on 10-minute batches
    _last_year(mill)
    report = history_replay(
        node=mill, models=False, rules_every=timedelta(minutes=10), start=minute(0)
    )
    # then the rules see only the newest reading of each batch (minutes 39 and 129 are normal):
    # both 5-minute spells are missed, as 10-minute gateway batches would miss them
    assert report.points == 180 and report.findings == []
    # with 2-minute batches, the newest readings 31 and 33 (121 and 123) are in the spells: the
    # level is pending at the first and confirmed at the second
    two = history_replay(node=mill, models=False, rules_every=timedelta(minutes=2))
    assert [f.at for f in two.findings] == [minute(33), minute(123)]


def _import(node, machine, *, start, seconds: int, every: int, offset: float = 0) -> None:
    points = [
        {
            "node": node.pk,
            "time": (start + timedelta(seconds=t)).isoformat(),
            **machine.sample(offset + t),
        }
        for t in range(0, seconds, every)
    ]
    for i in range(0, len(points), 5000):
        report = telemetry_import_history(points=points[i : i + 5000], node_id=node.pk)
        assert not report.rejected, report.rejected[:3]


def test_score_history_runs_the_models_at_their_historical_times(mill, settings):
    from apps.core.models import TrainedModel
    from apps.maintenance.services.training import anomaly_model_train_and_register
    from edge.simulators.machines import Fault, MachineModel

    # given last year: six healthy hours of a mill, a detector trained on them as the nightly
    # task would have then, and 26 minutes of a bearing going an hour later
    settings.MAINTENANCE_ANOMALY_SUSTAIN_MINUTES = 10
    end = START + timedelta(days=10)
    healthy = MachineModel(kind="cnc_mill", rated_power_kw=7.5, seed=1)
    _import(mill, healthy, start=end - timedelta(hours=7), seconds=6 * 3600, every=10)
    model = anomaly_model_train_and_register(kind="cnc_mill", now=end - timedelta(minutes=30))
    assert isinstance(model, TrainedModel) and model.is_active, model
    worn = MachineModel(kind="cnc_mill", rated_power_kw=7.5, fault=Fault.BEARING_WEAR, seed=2)
    worn_from = end - timedelta(minutes=26)
    _import(mill, worn, start=worn_from, seconds=26 * 60, every=5, offset=600)
    # when the agent is replayed over the last healthy half hour and the worn bearing
    report = history_replay(node=mill, start=end - timedelta(minutes=90))
    # then the models scored every 2 minutes of it, and the anomaly was found once it had
    # lasted the sustain time, not before the bearing went
    assert report.scorings >= 25
    assert all(f.at > worn_from for f in report.findings), report.findings
    anomalies = [f for f in report.findings if f.source == "anomaly"]
    assert anomalies, report.findings
    assert worn_from + timedelta(minutes=10) <= anomalies[0].at <= end + timedelta(minutes=2)
    assert anomalies[0].ticket.startswith("R")
    assert not Ticket.objects.exists() and not Prediction.objects.exists()


def test_score_history_finds_an_injected_anomaly_of_a_five_minute_sensor(mill, settings):
    import numpy as np

    from apps.core.models import TrainedModel
    from apps.maintenance.services.training import anomaly_model_train_and_register

    # given last year: a sensor reporting every 5 minutes (a daily cycle and some noise), a
    # detector trained on its first 8 days, then 12 healthy hours and 2 hours of it shaking
    # (the same level, eight times the spread) before it calms down again
    settings.MAINTENANCE_ANOMALY_SUSTAIN_MINUTES = 10
    settings.MAINTENANCE_ANOMALY_SUSTAIN_SAMPLES = 3
    settings.MAINTENANCE_ANOMALY_WINDOW_SAMPLES = 12
    rng = np.random.default_rng(7)
    trained_at = START + timedelta(days=8)
    shaking_from = trained_at + timedelta(hours=12)
    shaking_to = shaking_from + timedelta(hours=2)
    points = []
    for i in range(int((shaking_to - START).total_seconds() // 300) + 24):
        at = START + timedelta(seconds=300 * i)
        spread = 4.0 if shaking_from <= at < shaking_to else 0.5
        day = (at - START).total_seconds() / 86400
        value = 50 + 5 * np.sin(2 * np.pi * day) + rng.normal(0, spread)
        points.append({"node": mill.pk, "time": at.isoformat(), "extra": {"value": value}})
    for i in range(0, len(points), 5000):
        assert not telemetry_import_history(points=points[i : i + 5000], node_id=mill.pk).rejected
    model = anomaly_model_train_and_register(kind=mill.kind, now=trained_at)
    assert isinstance(model, TrainedModel) and model.is_active, model
    # an hour of readings per window, one reading apart: what a 10-minute window was not
    assert model.training["windows"][str(mill.pk)] == {
        "cadence_s": 300.0,
        "window_s": 3600.0,
        "step_s": 300.0,
        "alarm_after_windows": 3,  # the sustain rule's 10 minutes: 3 windows 5 minutes apart
    }

    # when the agent is replayed over the six hours before and the shaking
    report = history_replay(node=mill, start=shaking_from - timedelta(hours=6))

    # then the shaking is found once it lasted 3 readings, and nothing before it
    assert report.cadence_s == 300
    assert report.findings, "the shaking was not found"
    assert all(f.at > shaking_from for f in report.findings), report.findings
    first = report.findings[0]
    assert first.source == "anomaly"
    assert shaking_from + timedelta(minutes=10) <= first.at <= shaking_from + timedelta(hours=1)
    assert not Ticket.objects.exists() and not Prediction.objects.exists()
