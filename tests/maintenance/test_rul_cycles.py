"""Remaining useful life that tracks reality (issue 20): cycle-indexed histories train and score
in cycles end to end; one model's failure does not stop the others; the interval holds the
prediction; predictions are smoothed and capped by the evidence; one training per model at a
time; a registry version only when data or code changed."""

from __future__ import annotations

import csv
import threading
from datetime import timedelta
from pathlib import Path

import numpy as np
import pytest
from django.core.management import CommandError, call_command
from django.db import connection
from django.utils import timezone

from apps.core.models import TrainedModel
from apps.maintenance.learning import rul
from apps.maintenance.learning.anomaly import align_columns
from apps.maintenance.learning.runs import simulate_cycle_runs, to_csv_rows
from apps.maintenance.models import HistorySet, NodeHealth, Prediction
from apps.maintenance.services.remaining_life import RulEstimate, rul_reconcile
from apps.maintenance.services.scoring import nodes_score
from apps.maintenance.services.training import (
    RUL_CYCLES,
    models_train_outcomes,
    rul_model_train_and_register,
    training_slot,
)
from apps.telemetry.services import telemetry_ingest
from tests.conftest import portal_client
from tests.fixtures.fleet import Fleet
from tests.maintenance.factories import PredictionFactory

pytestmark = pytest.mark.django_db

SAMPLE = Path(__file__).parent / "data" / "ai4i_sample.csv"
BUILT_IN = ("vibration_mm_s", "power_kw", "torque_nm", "temperature_c")


def write_csv(path: Path, runs: list[rul.Run]) -> Path:
    rows = to_csv_rows(runs)
    with path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows({k: "" if v is None else v for k, v in row.items()} for row in rows)
    return path


def ingest_cycles(node, run: rul.Run, *, upto: int, per_cycle: int) -> None:
    """The run's first `upto` cycles as live telemetry ending now, each cycle `per_cycle`
    points 6 s apart (one cycle a minute at 10): the platform's columns as columns, the cycle
    counter and other sensors in `extra`."""
    now = timezone.now()
    total = upto * per_cycle
    points = []
    for i in range(upto):
        values = dict(zip(run.signals, run.values[i], strict=True))
        for k in range(per_cycle):
            step = i * per_cycle + k
            points.append(
                {
                    "node": node.pk,
                    "time": (now - timedelta(seconds=6 * (total - step))).isoformat(),
                    **{s: round(float(values[s]), 4) for s in BUILT_IN if np.isfinite(values[s])},
                    "extra": {
                        "cycle": float(run.times_s[i]),
                        **{
                            s: round(float(v), 4)
                            for s, v in values.items()
                            if s not in BUILT_IN and np.isfinite(v)
                        },
                    },
                }
            )
    for at in range(0, len(points), 5000):
        report = telemetry_ingest(points=points[at : at + 5000], node_id=node.pk)
        assert not report.rejected, report.rejected[:3]


def test_a_cycle_history_with_extra_sensors_imports_trains_and_scores_in_cycles(
    tmp_path, capsys, mill, fleet: Fleet
):
    # given: 12 simulated units, one row per cycle (a few hundred each), with sensors beyond
    # the platform's columns (setting_rpm, bearing_temp_c); 10 imported, 2 kept apart
    runs = simulate_cycle_runs(12, seed=11)
    assert min(len(r.times_s) for r in runs) > 90
    path = write_csv(tmp_path / "cycles.csv", runs[:10])
    call_command("import_history", "--csv", str(path), "--kind", "run_to_failure")
    assert "in cycles" in capsys.readouterr().out
    history = HistorySet.objects.get()
    assert history.time_unit == "cycles" and {"setting_rpm", "bearing_temp_c"} <= set(
        history.signals
    )

    # when: every model trains as documented
    call_command("evaluate_models", "--train")
    out = capsys.readouterr().out

    # then: the cycles model is active, its RMSE in cycles beats the mean-life baseline on
    # held-out units, and it normalised by the operating setting
    model = TrainedModel.objects.get(name=RUL_CYCLES)
    assert model.is_active, model.decision
    assert model.metrics["unit"] == "cycles" and model.training["time_unit"] == "cycles"
    assert model.metrics["rmse_cycles"] < 0.6 * model.metrics["baseline_rmse_cycles"]
    assert model.training["operating_settings"] == ["setting_rpm"]
    assert model.training["units"] == 10 and model.training["rows"] > 400  # refit on all
    assert f"trained {RUL_CYCLES}: v1: activated" in out
    assert "maintenance.rul.cycles v1 (active): rmse_cycles" in out

    # when: a held-out unit reports live, 45 cycles before its failure, densely (ten points a
    # cycle: more than the 10-minute slices of a time-indexed node's RUL read)
    unseen = runs[10]
    upto = len(unseen.times_s) - 45
    ingest_cycles(mill, unseen, upto=upto, per_cycle=10)
    assert upto * 10 > 14 * 144
    scored = nodes_score(now=timezone.now())

    # then: its RUL is in cycles, near the truth, inside its interval, and stored as such
    assert scored and scored[0].models[RUL_CYCLES] == model.version
    health = NodeHealth.objects.get(node=mill)
    truth = unseen.failure_s - unseen.times_s[upto - 1]
    assert health.rul_unit == "cycles"
    assert health.rul_value is not None and health.rul_low is not None
    assert health.rul_high is not None
    assert health.rul_low <= health.rul_value <= health.rul_high
    assert abs(health.rul_value - truth) < 25, (health.rul_value, truth)
    assert health.rul_hours == pytest.approx(health.rul_value / 60, abs=0.06)  # 1 cycle/min
    prediction = Prediction.objects.get(node=mill)
    assert prediction.rul_evidence["at_cycle"] == float(unseen.times_s[upto - 1])
    page = portal_client(fleet.admin).get(f"/maintenance/nodes/{mill.pk}/")
    assert page.status_code == 200
    text = page.content.decode()
    assert f"{health.rul_value:.0f} cycles" in text and "90% interval" in text


def test_a_model_that_cannot_train_does_not_stop_the_others(tmp_path, capsys):
    # given: labelled failures for the failure model, and a cycle history far too short
    call_command("import_history", "--csv", str(SAMPLE), "--preset", "ai4i2020")
    short = [
        rul.Run(f"u{i}", np.arange(1.0, 11.0), np.ones((10, 1)) * i, ["s1"], 11.0, None, rul.CYCLES)
        for i in range(5)
    ]
    call_command(
        "import_history",
        "--csv",
        str(write_csv(tmp_path / "short.csv", short)),
        "--kind",
        "run_to_failure",
    )
    capsys.readouterr()
    # when / then: the command says which failed and why, without a traceback, and exits 1
    with pytest.raises(CommandError, match=f"1 model\\(s\\) failed to train: {RUL_CYCLES}"):
        call_command("evaluate_models", "--train")
    out = capsys.readouterr().out
    assert f"trained {RUL_CYCLES}: failed: need at least 20 training rows, got 0" in out
    assert "Traceback" not in out
    # the failure model queued before it trained, and the anomaly models after it ran
    assert "trained maintenance.failure: v1" in out
    assert "trained maintenance.rul: not enough run-to-failure history" in out
    assert TrainedModel.objects.filter(name="maintenance.failure").exists()


def test_the_interval_holds_the_prediction_and_most_held_out_truths():
    runs = simulate_cycle_runs(16, seed=4)
    train, test = rul.split_units(runs, test_share=0.25, seed=0)
    model = rul.rul_model_train(train, seed=0)
    assert model.interval and 0 < model.trees <= rul.MAX_TREES  # early-stopped
    names, x, y, _ = rul.rul_training_rows(
        test, every_s=1.0, window_s=model.window_s, conditions=model.conditions
    )
    predicted, low, high = model.predict_interval(align_columns(names, x, model.features))
    assert np.all((low <= predicted) & (predicted <= high))
    assert np.all(low >= 0) and np.any(high > low)
    truth = np.minimum(y, model.cap)
    coverage = np.mean((low <= truth) & (truth <= high))
    # a 5-95% interval from other held-out units: measured 0.82 on seed 4
    assert coverage > 0.7, coverage
    metrics = rul.rul_metrics(model, test)
    assert metrics["interval_coverage"] > 0.7
    restored = rul.RulModel.from_bytes(model.to_bytes())
    np.testing.assert_array_equal(
        restored.predict_interval(align_columns(names, x, model.features))[2], high
    )


def estimate(value: float, **extra) -> RulEstimate:
    return RulEstimate(
        unit="h",
        value=value,
        low=value * 0.7,
        high=value * 1.3,
        model="maintenance.rul",
        version=1,
        cap=200.0,
        evidence={"raw": value},
        **extra,
    )


def test_consecutive_predictions_are_smoothed_by_the_time_between_them(mill):
    now = timezone.now()
    first = rul_reconcile(
        node=mill,
        estimate=estimate(180.0),
        now=now - timedelta(minutes=2),
        failure_probability=None,
        vibration_hours_to_limit=None,
    )
    PredictionFactory.create(node=mill, at=now - timedelta(minutes=2), **first.fields())
    # a jump two minutes later barely moves it, and it stays inside its interval
    jumped = rul_reconcile(
        node=mill,
        estimate=estimate(250.0),
        now=now,
        failure_probability=None,
        vibration_hours_to_limit=None,
    )
    # weight 1 - exp(-2 min / 30 min) = 6.4% on the new one: 180 - 0.03 + 0.064 * 70
    assert jumped.value == pytest.approx(184.5, abs=0.1)
    assert jumped.low <= jumped.value <= jumped.high
    # a fall is followed three times as fast
    PredictionFactory.create(node=mill, at=now, **jumped.fields())
    fallen = rul_reconcile(
        node=mill,
        estimate=estimate(100.0),
        now=now + timedelta(minutes=2),
        failure_probability=None,
        vibration_hours_to_limit=None,
    )
    assert fallen.value == pytest.approx(184.5 - 0.03 - 0.181 * 84.5, abs=0.3)
    # after a long gap the new prediction stands
    later = rul_reconcile(
        node=mill,
        estimate=estimate(100.0),
        now=now + timedelta(days=3),
        failure_probability=None,
        vibration_hours_to_limit=None,
    )
    assert later.value == 100.0


def test_evidence_caps_the_remaining_life_and_the_page_says_why(
    mill, fleet: Fleet, send, default_rules
):
    # given: vibration past the default critical limit long enough to open a critical alert
    send(mill, 0, vibration_mm_s=11.0)
    send(mill, 20, vibration_mm_s=11.5)
    send(mill, 25, vibration_mm_s=0.2)  # back within the limit, not yet for its minimum duration
    assert mill.alerts.filter(severity="critical", resolved_at=None).exists()
    now = timezone.now()
    # when: the model still says a week
    capped = rul_reconcile(
        node=mill,
        estimate=estimate(168.0),
        now=now,
        failure_probability=None,
        vibration_hours_to_limit=None,
    )
    # then: no life left, and why
    assert (capped.value, capped.low, capped.high) == (0.0, 0.0, 0.0)
    assert "Vibration past its critical limit" in capped.evidence["caps"][0]
    assert "(worst 11.5 mm/s, limit 4 mm/s;" in capped.evidence["caps"][0]  # not the latest 0.2
    NodeHealth.objects.update_or_create(node=mill, defaults=capped.fields())
    text = portal_client(fleet.admin).get(f"/maintenance/nodes/{mill.pk}/").content.decode()
    assert "capped at 0 h: Vibration past its critical limit" in text
    # a high failure probability caps at the failure model's horizon; the trend at its time
    mill.alerts.update(resolved_at=now)
    risky = rul_reconcile(
        node=mill,
        estimate=estimate(150.0),
        now=now + timedelta(days=3),
        failure_probability=0.9,
        vibration_hours_to_limit=40.0,
    )
    assert risky.value == 24.0 and risky.low <= 24.0 and risky.high == 24.0
    assert len(risky.evidence["caps"]) == 2


def test_one_training_per_model_at_a_time(tmp_path):
    # given: another worker holds the cycles model's training
    taken, release = threading.Event(), threading.Event()

    def other_worker() -> None:
        try:
            with training_slot(RUL_CYCLES):
                taken.set()
                release.wait(30)
        finally:
            connection.close()

    worker = threading.Thread(target=other_worker)
    worker.start()
    assert taken.wait(30)
    try:
        # when: training is triggered again
        outcomes = {o.name: o for o in models_train_outcomes()}
    finally:
        release.set()
        worker.join(30)
    # then: that model answers "already running", the others run as usual
    assert outcomes[RUL_CYCLES].busy and "already running" in outcomes[RUL_CYCLES].text
    assert not outcomes[RUL_CYCLES].failed
    assert not outcomes["maintenance.rul"].busy
    assert "not enough" in outcomes["maintenance.rul"].text
    # and once released it runs
    again = {o.name: o for o in models_train_outcomes()}
    assert not again[RUL_CYCLES].busy


def test_a_version_is_stored_only_when_data_or_code_changed(tmp_path, monkeypatch):
    runs = simulate_cycle_runs(7, seed=21)
    call_command(
        "import_history",
        "--csv",
        str(write_csv(tmp_path / "a.csv", runs[:6])),
        "--kind",
        "run_to_failure",
    )
    first = rul_model_train_and_register(time_unit=rul.CYCLES)
    assert isinstance(first, TrainedModel), first
    same = rul_model_train_and_register(time_unit=rul.CYCLES)
    assert same == "unchanged: same data and code as v1, no new version"
    # new code: a new version
    monkeypatch.setattr(rul, "CODE_VERSION", "rul-test")
    recoded = rul_model_train_and_register(time_unit=rul.CYCLES)
    assert isinstance(recoded, TrainedModel) and recoded.version == 2
    # v1 was refit on every unit, those held out now included: its registered score stands in
    assert "v1's registered held-out RMSE (cycles)" in recoded.training["compared_with"]
    assert recoded.metrics["comparison"]["active"] == first.metrics["rmse_cycles"]
    # new data: a new version
    call_command(
        "import_history",
        "--csv",
        str(write_csv(tmp_path / "b.csv", runs[6:])),
        "--kind",
        "run_to_failure",
    )
    more = rul_model_train_and_register(time_unit=rul.CYCLES)
    assert isinstance(more, TrainedModel) and more.version == 3
    assert more.training["units"] == 7
    assert TrainedModel.objects.filter(name=RUL_CYCLES).count() == 3
