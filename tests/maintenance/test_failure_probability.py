"""The failure probability with its interval and evidence (issue 20): the held-out calibration
it rests on, smoothing, the evidence floors, the node page and the API, and a failure model
trained on simulated run-to-failure mills as seed_demo gives the demo."""

from __future__ import annotations

from datetime import timedelta

import numpy as np
import pytest
from django.utils import timezone

from apps.core.ml import Comparison, model_register
from apps.core.models import TrainedModel
from apps.maintenance.learning.calibration import (
    Bin,
    bin_for,
    brier_score,
    calibration_report,
    clopper_pearson,
    reliability_bins,
)
from apps.maintenance.learning.features import Table
from apps.maintenance.learning.runs import simulate_runs, to_csv_rows
from apps.maintenance.models import HistorySet, NodeHealth
from apps.maintenance.services.failure_risk import (
    CRITICAL_FLOOR,
    TREND_FLOOR,
    FailureEstimate,
    failure_inapplicable,
    failure_not_applied_fields,
    failure_reconcile,
)
from apps.maintenance.services.history import history_import
from apps.maintenance.services.scoring import nodes_score
from apps.maintenance.services.training import (
    FAILURE,
    failure_model_train_and_register,
    failure_split,
    rul_model_train_and_register,
)
from apps.telemetry.services import telemetry_ingest
from edge.simulators.machines import Fault, MachineModel
from tests.conftest import portal_client
from tests.fixtures.fleet import Fleet
from tests.fixtures.machines import in_service
from tests.maintenance.factories import AlertFactory, NodeHealthFactory, PredictionFactory

# --- The interval's arithmetic ------------------------------------------------------------------


def test_clopper_pearson_on_known_counts():
    # none of 10 failed: the upper end solves (1 - p)^10 = 0.05, i.e. 1 - 0.05 ** (1 / 10)
    assert clopper_pearson(0, 10) == (0.0, pytest.approx(1 - 0.05 ** (1 / 10)))
    assert clopper_pearson(10, 10) == (pytest.approx(0.05 ** (1 / 10)), 1.0)
    low, high = clopper_pearson(5, 10)
    assert low == pytest.approx(0.2224, abs=1e-4) and high == pytest.approx(1 - low)
    # more rows, a narrower interval around the same rate
    wide, narrow = clopper_pearson(20, 100), clopper_pearson(200, 1000)
    assert narrow[1] - narrow[0] < wide[1] - wide[0]
    with pytest.raises(ValueError):
        clopper_pearson(3, 2)


def test_reliability_bins_merge_until_each_has_enough_rows():
    # 100 rows scored 1% (1 failed), 5 scored 15% (2 failed), 30 scored 95% (28 failed)
    p = np.array([0.01] * 100 + [0.15] * 5 + [0.95] * 30)
    y = np.array([1] + [0] * 99 + [1, 1, 0, 0, 0] + [1] * 28 + [0] * 2)
    bins = reliability_bins(p, y, min_rows=20)
    assert [(b.start, b.end, b.rows, b.failures) for b in bins] == [
        (0.0, 0.02, 100, 1),
        (0.02, 1.0, 35, 30),  # the sparse 10-20% bin joined the bins above it
    ]
    assert (bins[1].low, bins[1].high) == pytest.approx(clopper_pearson(30, 35))
    assert bins[1].predicted == pytest.approx((5 * 0.15 + 30 * 0.95) / 35)
    assert bin_for(0.5, bins) is bins[1] and bin_for(1.0, bins) is bins[1]
    assert bin_for(0.0, bins) is bins[0]
    # a short last bin joins the one before it
    p = np.array([0.01] * 30 + [0.5] * 25 + [0.95] * 3)
    y = np.array([0] * 30 + [1] * 10 + [0] * 15 + [1] * 3)
    bins = reliability_bins(p, y, min_rows=20)
    assert [(b.start, b.end, b.rows, b.failures) for b in bins] == [
        (0.0, 0.02, 30, 0),
        (0.02, 1.0, 28, 13),
    ]
    # too few rows for two bins: one
    assert [(b.start, b.end, b.rows) for b in reliability_bins(p[:10], y[:10])] == [(0, 1, 10)]


def test_brier_score_and_the_report_stored_with_a_model():
    p, y = np.array([0.1, 0.9, 0.2, 0.8]), np.array([0, 1, 0, 1])
    assert brier_score(p, y) == pytest.approx((0.01 + 0.01 + 0.04 + 0.04) / 4)
    report = calibration_report(p, y, min_rows=2)
    assert report["brier_baseline"] == 0.25  # always saying the failure rate, 50%
    assert report["brier_skill"] == pytest.approx(1 - 0.025 / 0.25)
    # a bin closes once it holds 2 rows: [0, 0.3) with 0.1, 0.2 (none failed), the rest with
    # 0.8, 0.9 (both failed)
    assert [(b["start"], b["end"], b["failures"]) for b in report["bins"]] == [
        (0.0, 0.3, 0),
        (0.3, 1.0, 2),
    ]
    assert report["expected_calibration_error"] == pytest.approx(0.15)
    with pytest.raises(ValueError):
        calibration_report(np.array([0.5, 1.5]), np.array([0, 1]))


def test_the_held_out_split_keeps_each_unit_on_one_side():
    labels = np.array([0, 1] * 20 + [0, 0, 0, 1] * 10, dtype=float)
    units = np.array([""] * 40 + [f"u{i // 4}" for i in range(40)], dtype=object)
    train, test = failure_split(labels, units, test_share=0.2, seed=42)
    assert sorted(np.concatenate([train, test]).tolist()) == list(range(80))
    assert not set(units[train][units[train] != ""]) & set(units[test][units[test] != ""])
    assert len(set(units[test][units[test] != ""])) == 2  # 20% of 10 units
    assert (units[test] == "").sum() == 8  # 20% of the single rows, stratified
    assert labels[test][units[test] == ""].sum() == 4


# --- Smoothing and the evidence ---------------------------------------------------------------

BINS = [
    Bin(
        start=0.0,
        end=0.2,
        rows=500,
        failures=5,
        predicted=0.02,
        observed=0.01,
        low=0.005,
        high=0.02,
    ),
    Bin(start=0.2, end=0.7, rows=60, failures=24, predicted=0.4, observed=0.4, low=0.3, high=0.51),
    Bin(start=0.7, end=1.0, rows=40, failures=36, predicted=0.9, observed=0.9, low=0.8, high=0.96),
]


def estimate(value: float, version: int = 1) -> FailureEstimate:
    e = FailureEstimate(
        value=value,
        low=None,
        high=None,
        model=FAILURE,
        version=version,
        bins=list(BINS),
        evidence={"raw": value, "version": version},
    )
    e.place()
    return e


def test_the_interval_is_the_held_out_rate_of_the_predictions_bin():
    e = estimate(0.85)
    assert (e.low, e.high) == (0.8, 0.96)
    assert e.evidence["interval"] == (
        "36 of the 40 held-out rows the model scored 70%-100% failed within 24 h "
        "(90%; 90% interval 80%-96%)"
    )
    bare = FailureEstimate(value=0.3, low=None, high=None, model=FAILURE, version=1)
    bare.place()
    assert (
        bare.low is None
        and "registered before the held-out calibration" in (bare.evidence["interval"])
    )


def test_consecutive_probabilities_are_smoothed_by_the_time_between_them(mill):
    now = timezone.now()
    first = failure_reconcile(
        node=mill,
        estimate=estimate(0.1),
        now=now - timedelta(minutes=2),
        vibration_hours_to_limit=None,
    )
    PredictionFactory.create(node=mill, at=now - timedelta(minutes=2), **first.fields())
    # a jump two minutes later moves it by 1 - exp(-2 / 10) (rising: tau 30 min / 3)
    risen = failure_reconcile(
        node=mill, estimate=estimate(0.9), now=now, vibration_hours_to_limit=None
    )
    assert risen.value == pytest.approx(0.1 + 0.1813 * 0.8, abs=1e-3)
    assert (risen.low, risen.high) == (BINS[1].low, BINS[1].high)  # the smoothed value's bin
    assert "weight 0.18" in risen.evidence["smoothing"]
    PredictionFactory.create(node=mill, at=now, **risen.fields())
    # a fall follows at tau 30 min: 1 - exp(-2 / 30)
    fallen = failure_reconcile(
        node=mill,
        estimate=estimate(0.1),
        now=now + timedelta(minutes=2),
        vibration_hours_to_limit=None,
    )
    assert fallen.value == pytest.approx(risen.value - 0.0645 * (risen.value - 0.1), abs=1e-3)
    PredictionFactory.create(node=mill, at=now + timedelta(minutes=2), **fallen.fields())
    # a new model version starts afresh, and so does a scoring after a long gap
    fresh = failure_reconcile(
        node=mill,
        estimate=estimate(0.05, version=2),
        now=now + timedelta(minutes=4),
        vibration_hours_to_limit=None,
    )
    assert fresh.value == 0.05 and fresh.evidence["smoothing"].startswith("restarted")
    later = failure_reconcile(
        node=mill,
        estimate=estimate(0.05),
        now=now + timedelta(days=3),
        vibration_hours_to_limit=None,
    )
    assert later.value == 0.05


def test_a_node_past_a_critical_limit_cannot_have_a_low_probability(
    mill, fleet: Fleet, send, default_rules
):
    # given: vibration past the default critical limit long enough to open a critical alert
    send(mill, 0, vibration_mm_s=11.0)
    send(mill, 20, vibration_mm_s=11.5)
    assert mill.alerts.filter(severity="critical", resolved_at=None).exists()
    now = timezone.now()
    # when: the model says 1%
    floored = failure_reconcile(
        node=mill, estimate=estimate(0.01), now=now, vibration_hours_to_limit=None
    )
    # then: at least the floor, its interval lifted with it, and why
    assert floored.value == CRITICAL_FLOOR and floored.evidence["floored_at"] == CRITICAL_FLOOR
    assert floored.low == CRITICAL_FLOOR and floored.high == 1.0  # "at least"
    assert floored.evidence["raw"] == 0.01
    assert "Vibration past its critical limit" in floored.evidence["floors"][0]
    assert "(worst 11.5 mm/s, limit 4 mm/s;" in floored.evidence["floors"][0]
    # the model not asked about the node (outside its training): the floor alone, no interval
    alone = failure_not_applied_fields(node=mill, why="maintenance.failure v1: outside")
    assert (alone["failure_probability"], alone["failure_low"], alone["failure_high"]) == (
        CRITICAL_FLOOR,
        None,
        None,
    )
    assert alone["failure_evidence"]["not_applied"] == "maintenance.failure v1: outside"
    # a vibration trend reaching its limit within the horizon: at least even odds
    mill.alerts.update(resolved_at=now)
    quiet = failure_not_applied_fields(node=mill, why="outside")
    assert quiet["failure_probability"] is None and quiet["failure_evidence"]["floors"] == []
    trend = failure_reconcile(
        node=mill, estimate=estimate(0.01), now=now + timedelta(days=3), vibration_hours_to_limit=10
    )
    assert trend.value == TREND_FLOOR and "within the 24 h horizon" in trend.evidence["floors"][0]
    # a probability already above every floor is left as it is
    high = failure_reconcile(
        node=mill, estimate=estimate(0.95), now=now + timedelta(days=6), vibration_hours_to_limit=10
    )
    assert high.value == 0.95 and high.evidence["floors"] == []


def test_the_model_is_not_asked_about_readings_unlike_its_training(mill):
    row = TrainedModel(
        name=FAILURE,
        version=4,
        training={
            "inputs": {
                "spindle_rpm": {"present": 1.0, "low": 1000.0, "high": 3000.0},
                "ambient_c": {"present": 0.3, "low": 18.0, "high": 30.0},
                "temperature_c": {"present": 1.0, "low": 20.0, "high": 50.0},
            }
        },
    )
    like = Table(["spindle_rpm", "temperature_c"], np.array([[2500.0, 52.0]]))
    assert failure_inapplicable(row=row, levels=like) == ""  # 52 is within the 10% margin
    printer = Table(["temperature_c"], np.array([[210.0]]))
    assert failure_inapplicable(row=row, levels=printer) == (
        "the node does not report Spindle speed (rpm), which its training held; the node's "
        "readings are outside its training data: Temperature (°C) 210 (trained on 20 to 50)"
    )
    # a version stored before the ranges were is asked about anything
    assert failure_inapplicable(row=TrainedModel(name=FAILURE, training={}), levels=printer) == ""


# --- The page and the API ----------------------------------------------------------------------


def test_the_node_page_and_the_api_give_the_interval_and_its_evidence(mill, fleet: Fleet, as_user):
    # given: no failure model was ever trained
    client = portal_client(fleet.vendor)
    NodeHealthFactory.create(node=mill, score=90.0)
    text = client.get(f"/maintenance/nodes/{mill.pk}/").content.decode()
    assert "No failure model is active: none has been trained, for want of labelled" in text
    # a version kept inactive: its decision is the reason
    model_register(
        name=FAILURE,
        algorithm="test",
        artifact=b"x",
        features=["a"],
        metrics={"f1": 0.1},
        training={},
        comparison=Comparison(metric="1 - f1", candidate=0.9, baseline=0.8),
    )
    text = client.get(f"/maintenance/nodes/{mill.pk}/").content.decode()
    assert "No failure model is active: the newest, v1, was kept inactive: 1 - F1 0.9 is worse" in (
        text
    )
    # when: the node was scored by an active model and floored by a critical alert
    e = estimate(0.01)
    e.evidence.update(
        model="maintenance.failure v2",
        smoothed=0.01,
        smoothing="weight 0.06 on the new probability after 2 min",
        missing_inputs=["ambient_c"],
        trained_on=["history #1 AI4I 2020 (10000 rows)"],
        floors=["vibration_mm_s past its critical limit since 2026-12-07 08:00 (worst 11.5)"],
        floored_at=0.9,
    )
    e.value, e.low, e.high = 0.9, 0.9, 1.0
    NodeHealth.objects.filter(node=mill).update(**e.fields())
    text = client.get(f"/maintenance/nodes/{mill.pk}/").content.decode()
    # then: the page says it in words
    assert "90% within 24 h (at least: the evidence below)" in text
    assert "(90% interval 90%–100%)" in text
    assert "maintenance.failure v2: 1% predicted, smoothed to 1% (weight 0.06" in text
    assert "raised to 90%: vibration_mm_s past its critical limit" in text
    assert "interval: 5 of the 500 held-out rows the model scored 0%-20% failed within 24 h" in text
    missing = "inputs of the model this node does not report (scored as missing): Ambient"
    assert f"{missing} temperature (°C)" in text
    assert "trained on history #1 AI4I 2020 (10000 rows)" in text
    assert "No failure model is active" not in text
    # and the API the numbers and keys
    rows = as_user(fleet.operator).get("/api/v1/maintenance/fleet/").json()["results"]
    health = rows[0]["health"]
    assert (health["failure_probability"], health["failure_low"], health["failure_high"]) == (
        0.9,
        0.9,
        1.0,
    )
    assert health["failure_evidence"]["floored_at"] == 0.9
    assert health["failure_evidence"]["raw"] == 0.01
    # a node of another vendor: neither page nor API
    assert portal_client(fleet.rival).get(f"/maintenance/nodes/{mill.pk}/").status_code in (
        403,
        404,
    )
    assert as_user(fleet.rival).get("/api/v1/maintenance/fleet/").json()["count"] == 0


# --- The demo's failure model: simulated run-to-failure mills ----------------------------------


def _stream(node, machine: MachineModel, *, start, seconds: int, since: int = 0) -> None:
    """The simulated machine cutting 20 minutes of every 30, a reading every 5 s."""
    points = []
    for t in range(since, since + seconds, 5):
        cutting = (t // 600) % 3 != 0
        if cutting and not machine.running:
            machine.part_start(t)
        elif not cutting and machine.running:
            machine.part_stop(t)
        at = start + timedelta(seconds=t)
        points.append({"node": node.pk, "time": at.isoformat(), **machine.sample(t)})
    for i in range(0, len(points), 5000):
        report = telemetry_ingest(points=points[i : i + 5000], node_id=node.pk)
        assert not report.rejected, report.rejected[:3]


def test_a_failure_model_trained_on_simulated_mills_speaks_for_mills_only(
    mill, fleet: Fleet, django_capture_on_commit_callbacks
):
    # given: the demo's cold-start history, simulated run-to-failure mills (seed_demo)
    rows = to_csv_rows(simulate_runs(8, seed=2026))
    history_import(
        rows=({k: "" if v is None else str(v) for k, v in row.items()} for row in rows),
        columns=list(rows[0]),
        kind=HistorySet.Kind.RUN_TO_FAILURE,
        name="Simulated mills",
        source="test",
    )
    # when: the failure model trains
    model = failure_model_train_and_register()
    # then: it beat flagging everything on held-out units, with its calibration stored
    assert isinstance(model, TrainedModel) and model.is_active, model
    calibration = model.metrics["calibration"]
    bins = calibration["bins"]
    assert bins[0]["start"] == 0.0 and bins[-1]["end"] == 1.0
    assert all(a["end"] == b["start"] for a, b in zip(bins, bins[1:], strict=False))
    assert sum(b["rows"] for b in bins) == model.training["held_out_rows"] == calibration["rows"]
    assert all(b["low"] <= b["observed"] <= b["high"] for b in bins)
    assert model.metrics["brier"] == calibration["brier"] < calibration["brier_baseline"]
    assert "run-to-failure histories (8 units" in model.training["sources"][0]
    assert model.training["inputs"]["vibration_mm_s"]["present"] > 0.99
    # and the remaining-life model on the same histories records what it may speak for too
    rul_row = rul_model_train_and_register()
    assert isinstance(rul_row, TrainedModel) and rul_row.is_active, rul_row
    assert rul_row.training["inputs"]["spindle_rpm"]["present"] > 0.99
    # and the registry page shows what the interval rests on
    page = portal_client(fleet.engineer).get("/maintenance/models/").content.decode()
    assert "Held-out calibration (the failure probability&#x27;s interval)" in page
    assert "Brier" in page

    # given: a healthy mill like the demo's, and a printer
    printer = in_service(fleet, name="Printer-01", kind="fdm_printer", rated_power_kw=0.35)
    now = timezone.now().replace(microsecond=0)
    start = now - timedelta(hours=1)
    machine = MachineModel(kind="cnc_mill", rated_power_kw=mill.rated_power_kw, seed=3)
    _stream(mill, machine, start=start, seconds=3000)
    _stream(
        printer,
        MachineModel(kind="fdm_printer", rated_power_kw=0.35, seed=3),
        start=start,
        seconds=3000,
    )
    with django_capture_on_commit_callbacks(execute=True):
        nodes_score(now=start + timedelta(seconds=3000))
    healthy = NodeHealth.objects.get(node=mill)
    # then: a low probability inside an interval measured on held-out rows
    assert healthy.failure_probability is not None and healthy.failure_probability < 0.2
    assert healthy.failure_low is not None and healthy.failure_high is not None
    assert healthy.failure_evidence["model"] == f"{FAILURE} v{model.version}"
    assert healthy.rul_value is not None and healthy.rul_low is not None
    assert "not_applied" not in healthy.rul_evidence
    # and the printer is not asked: it has no spindle, and its nozzle is no mill's housing
    printed = NodeHealth.objects.get(node=printer)
    assert printed.failure_probability is None
    not_applied = printed.failure_evidence["not_applied"]
    assert "does not report" in not_applied and "Spindle speed (rpm)" in not_applied
    assert "outside its training data: Temperature (°C) 210" in not_applied
    text = portal_client(fleet.vendor).get(f"/maintenance/nodes/{printer.pk}/").content.decode()
    assert "Not given: the failure model was not asked about this node" in text
    # nor is the remaining-life model: a printer got a mill's remaining life before
    assert printed.rul_value is None and printed.rul_hours is None
    assert "Spindle speed (rpm)" in printed.rul_evidence["not_applied"]
    assert "Not given: the remaining-life model was not asked about this node" in text

    # when: the mill's bearing wears, and it is scored again ten minutes later
    machine.inject(Fault.BEARING_WEAR, 3000)
    _stream(mill, machine, start=start, seconds=600, since=3000)
    with django_capture_on_commit_callbacks(execute=True):
        nodes_score(now=start + timedelta(seconds=3600))
    worn = NodeHealth.objects.get(node=mill)
    # then: the probability moved up (smoothed over the ten minutes), and the page says it
    assert worn.failure_probability is not None
    assert worn.failure_probability > healthy.failure_probability
    assert "smoothing" in worn.failure_evidence


def test_the_rul_model_is_not_asked_where_a_critical_alert_sets_the_life(mill):
    from apps.maintenance.services.remaining_life import rul_not_applied_fields

    fields = rul_not_applied_fields(node=mill, why="outside its training data")
    assert fields["rul_value"] is None and fields["rul_evidence"]["caps"] == []
    AlertFactory.create(
        node=mill, signal="vibration_mm_s", severity="critical", value=11.5, threshold=4.0
    )
    fields = rul_not_applied_fields(node=mill, why="outside its training data")
    # the failure is under way: no model needed to say there is no life left
    assert (fields["rul_value"], fields["rul_low"], fields["rul_evidence"]["capped_at"]) == (
        0.0,
        None,
        0.0,
    )
    assert fields["rul_evidence"]["not_applied"] == "outside its training data"
