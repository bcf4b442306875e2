"""A node's reporting cadence: offline, a sustained anomaly and the anomaly detector's window are
counted in its samples."""

from __future__ import annotations

from datetime import timedelta

import numpy as np
import pytest
from django.core.exceptions import ValidationError
from django.utils import timezone

from apps.maintenance.cadence import anomaly_window
from apps.maintenance.learning.anomaly import windows
from apps.maintenance.models import NodeHealth, Ticket
from apps.maintenance.selectors import node_risks
from apps.maintenance.services import fleet_monitor
from apps.maintenance.services.monitor import node_cadence_set
from apps.maintenance.services.scoring import NodeScore, node_score_apply
from apps.telemetry.services import telemetry_ingest

pytestmark = pytest.mark.django_db


def _report_every(node, *, seconds: float, count: int, last):
    points = [
        {
            "node": node.pk,
            "time": (last - timedelta(seconds=seconds * i)).isoformat(),
            "power_kw": 1,
        }
        for i in range(count)
    ]
    assert telemetry_ingest(points=points, node_id=node.pk).accepted == count


def test_a_five_minute_node_is_learned_and_not_offline_after_six_minutes(mill, settings):
    # given a node that reports every 5 minutes, the default limits (5 min, 3 samples)
    settings.MAINTENANCE_OFFLINE_MINUTES = 5
    settings.MAINTENANCE_OFFLINE_SAMPLES = 3
    last = timezone.now().replace(microsecond=0) - timedelta(hours=1)
    _report_every(mill, seconds=300, count=12, last=last)
    # when the monitor runs 6 minutes after its last reading
    report = fleet_monitor(now=last + timedelta(minutes=6))
    # then its cadence is learned and it is online, for the scheduler too
    health = NodeHealth.objects.get(node=mill)
    assert health.cadence_s == 300 and health.online and report.went_offline == 0
    assert not node_risks(node_ids=[mill.pk], now=last + timedelta(minutes=6))[mill.pk].offline
    # and three missed samples later it is offline
    report = fleet_monitor(now=last + timedelta(minutes=16))
    assert report.went_offline == 1 and not NodeHealth.objects.get(node=mill).online
    assert node_risks(node_ids=[mill.pk], now=last + timedelta(minutes=16))[mill.pk].offline


def test_a_fast_node_keeps_the_minute_limit_and_a_configured_cadence_wins(mill, settings):
    settings.MAINTENANCE_OFFLINE_MINUTES = 5
    last = timezone.now().replace(microsecond=0) - timedelta(hours=1)
    _report_every(mill, seconds=10, count=30, last=last)
    fleet_monitor(now=last + timedelta(minutes=6))
    assert not NodeHealth.objects.get(node=mill).online  # 10 s cadence: the 5-minute floor
    # configured: it reports every 10 minutes (whatever the last burst looked like)
    node_cadence_set(node=mill, expected_s=600)
    assert fleet_monitor(now=last + timedelta(minutes=20)).came_online == 1
    assert NodeHealth.objects.get(node=mill).cadence == 600
    with pytest.raises(ValidationError):
        node_cadence_set(node=mill, expected_s=-1)


def _flagged(node, at):
    score = NodeScore(node=node.pk, anomaly_score=0.9, anomaly_threshold=0.5)
    return node_score_apply(node=node, score=score, now=at)


@pytest.mark.parametrize(
    ("cadence_s", "first_ticket_after_min"),
    [(300, 10), (3600, 120)],  # 3 samples: 5-minute and hourly sensors
)
def test_an_anomaly_sustains_after_n_samples_of_the_cadence(
    mill, settings, cadence_s, first_ticket_after_min
):
    # given the sustain rule of 10 minutes and 3 samples, and a node's cadence
    settings.MAINTENANCE_ANOMALY_SUSTAIN_MINUTES = 10
    settings.MAINTENANCE_ANOMALY_SUSTAIN_SAMPLES = 3
    node_cadence_set(node=mill, expected_s=cadence_s)
    start = timezone.now().replace(microsecond=0) - timedelta(days=1)
    # when the detector flags every sample
    opened_at = None
    for sample in range(4):
        at = start + timedelta(seconds=sample * cadence_s)
        if _flagged(mill, at).tickets and opened_at is None:
            opened_at = at
        elif opened_at is None:
            assert not Ticket.objects.filter(node=mill).exists()
        if cadence_s == 3600 and sample == 0:  # 10 minutes of one hourly reading: no ticket
            assert not _flagged(mill, at + timedelta(minutes=10)).tickets
    # then the ticket opens at the third flagged sample, not before
    assert opened_at == start + timedelta(minutes=first_ticket_after_min)
    assert Ticket.objects.filter(node=mill, issue_type="anomaly").count() == 1


def test_node_cadence_command_configures_and_shows_the_limits(mill, settings, capsys):
    from django.core.management import call_command
    from django.core.management.base import CommandError

    settings.MAINTENANCE_OFFLINE_MINUTES = 5
    settings.MAINTENANCE_OFFLINE_SAMPLES = 3
    settings.MAINTENANCE_ANOMALY_SUSTAIN_MINUTES = 10
    settings.MAINTENANCE_ANOMALY_SUSTAIN_SAMPLES = 3
    _report_every(mill, seconds=60, count=10, last=timezone.now() - timedelta(minutes=1))
    call_command("node_cadence", node=mill.pk)
    assert "configured no, learned 60 s; offline after 5 min" in capsys.readouterr().out
    call_command("node_cadence", node=mill.pk, seconds=3600)
    out = capsys.readouterr().out
    assert "configured 3600 s" in out and "offline after 180 min" in out
    assert "sustained after 120 min" in out
    assert "the anomaly detector reads windows of 720 min" in out  # 12 hourly readings
    call_command("node_cadence", node=mill.pk, learn=True)
    assert NodeHealth.objects.get(node=mill).expected_cadence_s is None
    with pytest.raises(CommandError, match="Between 0"):
        call_command("node_cadence", node=mill.pk, seconds=0)


@pytest.mark.parametrize(
    ("cadence_s", "width_s", "step_s", "history_days"),
    [
        (None, 600, 300, 7),  # unknown: the floors
        (1, 600, 300, 7),  # a live simulator: 10-minute windows 5 minutes apart, as always
        (60, 720, 300, 7),  # 12 one-minute readings
        (300, 3600, 300, 7),  # a 5-minute sensor: an hour
        (3600, 12 * 3600, 3600, 84),  # an hourly one: half a day, over its last 2,016 readings
    ],
)
def test_the_detectors_window_is_n_samples_of_the_cadence(
    settings, cadence_s, width_s, step_s, history_days
):
    settings.MAINTENANCE_ANOMALY_WINDOW_SAMPLES = 12
    window = anomaly_window(cadence_s)
    assert (window.width_s, window.step_s) == (width_s, step_s)
    assert window.history_s == history_days * 86400


@pytest.mark.parametrize("cadence_s", [1.0, 300.0, 3600.0])
def test_every_training_window_holds_the_samples_scoring_reads(settings, cadence_s):
    # given a day of readings at the cadence (30 s slices for the fast one, as training reads)
    settings.MAINTENANCE_ANOMALY_WINDOW_SAMPLES = 12
    window = anomaly_window(cadence_s)
    every = max(cadence_s, 30.0)
    times = np.arange(0, 2 * 86400, every)
    values = np.sin(times / 5000.0).reshape(-1, 1)
    # when training cuts it into windows
    bounds = windows(times, values, width_s=window.width_s, step_s=window.step_s)
    # then each holds N samples of a slow sensor (20 of the fast one's 30 s slices, as before)
    held = {b - a for a, b in bounds}
    assert held == ({20} if cadence_s < 30 else {12})
    # and windows are one sample apart: a slow sensor's day is 24 hourly windows, not 288
    assert len(bounds) == int((times[-1] - times[0] - window.width_s) // window.step_s) + 1
