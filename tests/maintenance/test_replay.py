"""score_history: the agent replayed over a node's past telemetry opens the tickets it would
have opened, at the times it would have, sends nothing, and leaves the live tickets alone."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.core import mail
from django.core.management import call_command
from django.utils import timezone

from apps.core.models import Notification
from apps.maintenance.models import Alert, NodeHealth, Prediction, SignalState, Ticket
from apps.maintenance.services import ticket_raise
from apps.maintenance.services.replay import history_replay
from apps.telemetry.services import telemetry_import_history
from apps.vendors.models import FabricationNode

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
    fleet, mill, default_rules, django_capture_on_commit_callbacks
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
    assert "temperature_c 90" in crossed[0].text
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
    fleet, mill, default_rules, capsys
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


def test_score_history_rejects_an_unknown_node_and_a_bad_range(db):
    from django.core.management.base import CommandError

    with pytest.raises(CommandError, match="No node 123456"):
        call_command("score_history", node=123456)
    with pytest.raises(ValueError, match="end is before its start"):
        history_replay(node=FabricationNode(pk=1), start=minute(10), end=minute(0))


def test_score_history_rules_on_the_newest_reading_of_each_interval(fleet, mill, default_rules):
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
