"""Import of external history, training and registration of the maintenance models, and
scoring nodes with them."""

from __future__ import annotations

import csv
import io
from datetime import timedelta
from pathlib import Path

import pytest
from django.core.management import call_command
from django.utils import timezone

from apps.core.models import TrainedModel
from apps.maintenance.learning.runs import simulate_runs, to_csv_rows
from apps.maintenance.models import (
    HistoryRow,
    HistorySet,
    NodeHealth,
    Prediction,
    Ticket,
)
from apps.maintenance.services import ticket_raise, ticket_transition
from apps.maintenance.services.history import history_import
from apps.maintenance.services.scoring import nodes_score
from apps.maintenance.services.training import (
    anomaly_model_train_and_register,
    failure_model_train_and_register,
    rul_model_train_and_register,
)
from apps.telemetry.services import telemetry_ingest
from edge.simulators.machines import Fault, MachineModel
from tests.fixtures.fleet import Fleet
from tests.maintenance.factories import AlertFactory

pytestmark = pytest.mark.django_db


def test_import_stores_good_rows_and_reports_bad_ones_by_line():
    text = (
        "unit,time,temperature_c,vibration_mm_s,failure\n"
        "m1,2026-11-01T10:00:00Z,40.5,1.2,0\n"
        "m1,not-a-time,41,1.3,0\n"
        "m1,2026-11-01T10:10:00Z,abc,1.3,1\n"
        ",2026-11-01T10:20:00Z,40,1.3,0\n"
        "m2,2026-11-01T10:00:00Z,39,,maybe\n"
        "m2,2026-11-01T10:10:00Z,39,0.9,1\n"
    )
    reader = csv.DictReader(io.StringIO(text))
    report = history_import(
        rows=reader, columns=list(reader.fieldnames or []), kind="failures", name="plant A"
    )
    assert report.stored == 2
    assert [r["line"] for r in report.rejected] == [3, 4, 5, 6]
    assert set(report.rejected[1]["errors"]) == {"temperature_c"}
    history = report.history
    assert history is not None
    assert (history.rows, history.units, history.signals) == (
        2,
        2,
        ["temperature_c", "vibration_mm_s"],
    )
    assert list(HistoryRow.objects.values_list("failed", flat=True)) == [False, True]
    with pytest.raises(ValueError, match="failure"):
        history_import(rows=[], columns=["unit", "time", "x"], kind="failures", name="bad")


def write_runs(path: Path, n_units: int, seed: int) -> Path:
    rows = to_csv_rows(simulate_runs(n_units, seed=seed))
    with path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows({k: "" if v is None else v for k, v in row.items()} for row in rows)
    return path


def test_rul_model_from_an_imported_run_to_failure_export(tmp_path, capsys):
    path = write_runs(tmp_path / "runs.csv", 12, seed=3)
    call_command("import_history", "--csv", str(path), "--kind", "run_to_failure")
    out = capsys.readouterr().out
    assert "Imported" in out and "12 units" in out
    assert HistorySet.objects.get().kind == "run_to_failure"
    model = rul_model_train_and_register()
    assert isinstance(model, TrainedModel), model
    assert model.name == "maintenance.rul" and model.is_active
    # scored on held-out units, against the mean-RUL baseline on the same rows
    assert model.metrics["units"] == 3 and model.metrics["rows"] > 0
    assert model.metrics["rmse_h"] < model.metrics["baseline_rmse_h"]
    call_command("evaluate_models")
    assert "maintenance.rul v1 (active): rmse_h" in capsys.readouterr().out


def test_too_little_history_is_said_not_trained():
    rul, anomaly = rul_model_train_and_register(), anomaly_model_train_and_register(kind="cnc_mill")
    assert isinstance(rul, str) and "not enough run-to-failure history" in rul
    assert isinstance(anomaly, str) and "not enough healthy history" in anomaly
    assert not TrainedModel.objects.exists()


def _stream(node, model: MachineModel, *, start, seconds: int, every: int, offset: float = 0):
    points = []
    for t in range(0, seconds, every):
        values = model.sample(offset + t)
        points.append(
            {"node": node.pk, "time": (start + timedelta(seconds=t)).isoformat(), **values}
        )
    for i in range(0, len(points), 5000):
        report = telemetry_ingest(points=points[i : i + 5000], node_id=node.pk)
        assert not report.rejected, report.rejected[:3]


def test_anomaly_detector_trained_on_healthy_history_flags_a_worn_bearing(
    mill, settings, django_capture_on_commit_callbacks
):
    # given: six healthy hours of a mill, then ten minutes with a bearing going
    now = timezone.now().replace(microsecond=0)
    healthy = MachineModel(kind="cnc_mill", rated_power_kw=7.5, seed=1)
    _stream(mill, healthy, start=now - timedelta(hours=7), seconds=6 * 3600, every=10)
    model = anomaly_model_train_and_register(kind="cnc_mill", now=now - timedelta(minutes=30))
    assert isinstance(model, TrainedModel), model
    assert model.is_active and model.metrics["false_alarm_rate"] <= 0.05
    worn = MachineModel(kind="cnc_mill", rated_power_kw=7.5, fault=Fault.BEARING_WEAR, seed=2)
    _stream(mill, worn, start=now - timedelta(minutes=26), seconds=26 * 60, every=5, offset=600)
    # when: the models score the node now, and again after the anomaly lasted long enough
    settings.MAINTENANCE_ANOMALY_SUSTAIN_MINUTES = 10
    with django_capture_on_commit_callbacks(execute=True):
        first = nodes_score(now=now - timedelta(minutes=11))
    assert first
    score, threshold = first[0].anomaly_score, first[0].anomaly_threshold
    assert score is not None and threshold is not None and score > threshold
    health = NodeHealth.objects.get(node=mill)
    assert health.anomaly_since == now - timedelta(minutes=11)
    assert not Ticket.objects.filter(issue_type="anomaly").exists()  # not sustained yet
    with django_capture_on_commit_callbacks(execute=True):
        nodes_score(now=now)
    # then
    assert Prediction.objects.filter(node=mill).count() == 2
    tickets = Ticket.objects.filter(node=mill)
    assert tickets.count() == 1  # the vibration alarm's ticket, if any, takes the finding
    ticket = tickets.get()
    anomaly = (
        ticket.evidence
        if ticket.issue_type == "anomaly"
        else ticket.evidence["findings"]["anomaly"]
    )
    assert anomaly["models"]["maintenance.anomaly.cnc_mill"] == model.version


SAMPLE = Path(__file__).parent / "data" / "ai4i_sample.csv"


def test_failure_model_cold_start_and_a_worse_retrain_does_not_replace_it(capsys):
    # given: the AI4I sample imported through its preset
    call_command("import_history", "--csv", str(SAMPLE), "--preset", "ai4i2020")
    assert "Imported 1200 rows" in capsys.readouterr().out
    # when: trained as the nightly task does
    first = failure_model_train_and_register()
    assert isinstance(first, TrainedModel), first
    assert first.is_active and first.training["held_out_rows"] == 240
    assert first.metrics["recall"] > 0.7 and first.metrics["precision"] > 0.8
    assert first.metrics["roc_auc"] > 0.9
    assert {"mech_power_kw", "temp_diff_c", "wear_torque"} <= set(first.features)
    # when: a retrain that is worse on the same held-out rows (a stump instead of trees)
    worse = failure_model_train_and_register(params={"n_estimators": 1, "max_depth": 1})
    # then: registered, kept inactive, and the first stays active
    assert isinstance(worse, TrainedModel)
    first.refresh_from_db()
    assert (worse.version, worse.is_active, first.is_active) == (2, False, True)
    comparison = worse.metrics["comparison"]
    assert comparison["candidate"] > comparison["active"]
    assert "worse than the active" in worse.decision
    # an equally good retrain (same data, same seed) is not worse: it takes over
    again = failure_model_train_and_register()
    assert isinstance(again, TrainedModel) and again.is_active
    assert again.metrics["comparison"]["candidate"] == comparison["active"]
    call_command("evaluate_models")
    out = capsys.readouterr().out
    assert "maintenance.failure v3 (active): precision" in out
    assert "maintenance.failure v2: precision" in out


def test_the_failure_model_scores_a_node_reporting_its_signals(
    mill, django_capture_on_commit_callbacks
):
    call_command("import_history", "--csv", str(SAMPLE), "--preset", "ai4i2020")
    model = failure_model_train_and_register()
    assert isinstance(model, TrainedModel)
    now = timezone.now().replace(microsecond=0)

    def send(torque: float, wear: float, start) -> None:
        points = [
            {
                "node": mill.pk,
                "time": (start + timedelta(seconds=10 * i)).isoformat(),
                "temperature_c": 37.0,
                "spindle_rpm": 1400.0,
                "torque_nm": torque,
                "extra": {"ambient_c": 27.0, "tool_wear_min": wear, "variant": 0},
            }
            for i in range(30)
        ]
        assert telemetry_ingest(points=points, node_id=mill.pk).accepted == 30

    # a light cut with a fresh tool, then the same mill overstrained with a worn tool
    send(30.0, 20.0, now - timedelta(minutes=40))
    with django_capture_on_commit_callbacks(execute=True):
        calm = nodes_score(now=now - timedelta(minutes=34))[0].failure_probability
    send(68.0, 230.0, now - timedelta(minutes=6))
    with django_capture_on_commit_callbacks(execute=True):
        strained = nodes_score(now=now)[0].failure_probability
    assert calm is not None and strained is not None
    assert calm < 0.2 < 0.7 < strained
    ticket = Ticket.objects.get(node=mill, issue_type="failure_risk")
    assert ticket.severity == "critical"
    assert ticket.evidence["models"]["maintenance.failure"] == model.version


def _stream_shifts(node, model: MachineModel, *, start, hours: int, every: int = 10):
    """A mill that cuts for the second half of every hour and idles the first half."""
    points = []
    for t in range(0, hours * 3600, every):
        cutting = (t // 1800) % 2 == 1
        if cutting and not model.running:
            model.part_start(t)
        elif not cutting and model.running:
            model.part_stop(t)
        values = model.sample(t)
        points.append(
            {"node": node.pk, "time": (start + timedelta(seconds=t)).isoformat(), **values}
        )
    for i in range(0, len(points), 5000):
        report = telemetry_ingest(points=points[i : i + 5000], node_id=node.pk)
        assert not report.rejected, report.rejected[:3]


def test_a_rule_firing_on_normal_running_does_not_shrink_the_detectors_training_set(
    mill, fleet: Fleet
):
    # given: six hours of a healthy mill cutting half of every hour, and a badly set power rule
    # that fired on every cut (a critical alert per cut, and the agent's open ticket)
    now = timezone.now().replace(microsecond=0)
    start = now - timedelta(hours=6, minutes=30)
    _stream_shifts(
        mill, MachineModel(kind="cnc_mill", rated_power_kw=7.5, seed=4), start=start, hours=6
    )
    for hour in range(6):
        first = start + timedelta(hours=hour, minutes=30)
        AlertFactory.create(
            node=mill,
            signal="power_kw",
            severity="critical",
            value=4.0,
            peak=4.4,
            threshold=2.0,
            rule_text="power_kw critical > 2 (node)",
            first_seen=first,
            last_seen=first + timedelta(minutes=29),
            resolved_at=first + timedelta(minutes=30),
        )
    ticket, _ = ticket_raise(
        node=mill,
        issue_type="power_spike",
        severity="critical",
        title="power above its limit",
        evidence={},
        suggested_action="",
    )

    # when
    model = anomaly_model_train_and_register(kind="cnc_mill", now=now)

    # then: every window is healthy operation, the cuts included
    assert isinstance(model, TrainedModel), model
    assert model.training["excluded_windows"] == {}
    windows = (
        model.training["rows"]
        + model.training["calibration_rows"]
        + model.metrics["healthy_windows"]
    )
    assert windows >= 6 * 12 - 2  # 10-minute windows every 5 minutes over six hours
    # and the detector so trained does not flag normal cutting
    assert model.metrics["false_alarms_per_node_week"] <= 1.0 and model.is_active

    # a confirmed failure, by contrast, takes the day before it out of healthy operation
    ticket_transition(
        by=fleet.vendor, ticket=ticket, to="resolved", note="drive replaced", was_failure=True
    )
    again = anomaly_model_train_and_register(kind="cnc_mill", now=now)
    # (the failure is dated at the ticket's opening: all six hours were its last day)
    assert again == "not enough healthy history for cnc_mill: 0 windows"


def test_a_detector_over_the_false_alarm_bound_is_stored_but_not_activated(mill):
    # given: a mill that idled for five hours, then cut parts it never cut before: nothing
    # failed, so the detector flags held-out healthy operation
    now = timezone.now().replace(microsecond=0)
    machine = MachineModel(kind="cnc_mill", rated_power_kw=7.5, seed=5)
    start = now - timedelta(hours=6, minutes=30)
    _stream(mill, machine, start=start, seconds=5 * 3600, every=10)
    machine.part_start(5 * 3600)
    _stream(
        mill, machine, start=start + timedelta(hours=5), seconds=3600, every=10, offset=5 * 3600
    )

    # when
    model = anomaly_model_train_and_register(kind="cnc_mill", now=now)

    # then
    assert isinstance(model, TrainedModel), model
    assert not model.is_active
    assert model.metrics["false_alarms_per_node_week"] > 1.0
    assert model.metrics["false_alarm_bound_per_node_week"] == 1.0
    assert model.decision.startswith("kept inactive: ")
    assert "per node-week, above the bound of 1" in model.decision
