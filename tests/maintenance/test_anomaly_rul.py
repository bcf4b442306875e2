"""The maintenance agent's learning core without a database: window features, the anomaly
detector, the vibration trend, the RUL regressor and the run-to-failure simulator. Floors below
were measured on these seeds (noted next to each) and leave a margin; the code is deterministic
for a seed, so a drop below one is a regression, not noise."""

from __future__ import annotations

import numpy as np
import pytest
import xgboost as xgb

from apps.maintenance.learning.anomaly import (
    AnomalyModel,
    alarm_count,
    alarm_rate_lower_bound,
    align_columns,
    anomaly_metrics,
    anomaly_model_train,
    exposure_node_weeks,
    threshold_for_alarm_rate,
    window_features,
    window_rows,
    windows,
)
from apps.maintenance.learning.rul import (
    RulModel,
    Run,
    rul_features,
    rul_metrics,
    rul_model_train,
    rul_training_rows,
    split_units,
    vibration_trend,
)
from apps.maintenance.learning.runs import SIGNALS, simulate_runs, to_csv_rows

HOUR = 3600.0
WINDOW_S = 6 * HOUR
VIBRATION = SIGNALS.index("vibration_mm_s")
RPM = SIGNALS.index("spindle_rpm")


@pytest.fixture(scope="module")
def runs() -> list[Run]:
    return simulate_runs(20, seed=3)


@pytest.fixture(scope="module")
def split(runs: list[Run]) -> tuple[list[Run], list[Run]]:
    return split_units(runs, test_share=0.25, seed=3)


def healthy_rows(runs: list[Run]) -> tuple[list[str], np.ndarray]:
    blocks = []
    names: list[str] = []
    for run in runs:
        names, rows, ends = window_rows(
            run.times_s, run.values, run.signals, width_s=WINDOW_S, step_s=HOUR
        )
        assert run.onset_s is not None
        blocks.append(rows[ends < run.onset_s])
    return names, np.vstack(blocks)


def with_vibration_ramp(runs: list[Run], rise_mm_s: float) -> np.ndarray:
    """Healthy 6 h windows of `runs` with a vibration ramp from 0 to `rise_mm_s` added to the
    readings under load: a fault the detector has never seen."""
    rows = []
    for run in runs:
        assert run.onset_s is not None
        healthy = run.times_s < run.onset_s
        times, values = run.times_s[healthy], run.values[healthy]
        for start, stop in windows(times, values, width_s=WINDOW_S, step_s=WINDOW_S):
            t, v = times[start:stop], values[start:stop].copy()
            ramp = rise_mm_s * (t - t[0]) / (t[-1] - t[0])
            v[:, VIBRATION] += np.where(v[:, RPM] > 0, ramp, 0.0)
            rows.append(window_features(t, v, run.signals)[1])
    return np.array(rows)


@pytest.fixture(scope="module")
def detector(split: tuple[list[Run], list[Run]]) -> AnomalyModel:
    names, rows = healthy_rows(split[0])
    return anomaly_model_train(rows, names, seed=0)


@pytest.fixture(scope="module")
def rul_model(split: tuple[list[Run], list[Run]]) -> RulModel:
    return rul_model_train(split[0], seed=0, params={"n_estimators": 150})


# --- window features ---------------------------------------------------------------------------


def test_window_features_per_signal_with_nan_column_and_extra_signal():
    times = np.arange(7, dtype=np.float64) * 600.0  # one hour, 10-minute steps
    vibration = 1.0 + 0.6 * times / HOUR  # +0.6 mm/s per hour
    values = np.column_stack(
        [vibration, np.full(7, np.nan), [np.nan, 40, np.nan, 42, 43, np.nan, np.nan]]
    )
    signals = ["vibration_mm_s", "torque_nm", "bearing_temp_c"]

    names, row = window_features(times, values, signals)
    features = dict(zip(names, row, strict=True))

    assert len(row) == 12
    assert features["vibration_mm_s__mean"] == pytest.approx(1.3)
    assert features["vibration_mm_s__last"] == pytest.approx(1.6)
    assert features["vibration_mm_s__slope_h"] == pytest.approx(0.6)
    assert features["vibration_mm_s__std"] == pytest.approx(np.std(vibration))
    assert all(np.isnan(features[f"torque_nm__{stat}"]) for stat in ("mean", "std", "last"))
    assert np.isnan(features["torque_nm__slope_h"])
    assert features["bearing_temp_c__mean"] == pytest.approx(125 / 3)
    assert features["bearing_temp_c__last"] == 43  # the last reading that has a value
    assert features["bearing_temp_c__slope_h"] > 0


def test_window_features_of_one_reading_has_no_slope():
    names, row = window_features(np.array([0.0]), np.array([[2.0]]), ["vibration_mm_s"])
    assert row[:3].tolist() == [2.0, 0.0, 2.0]
    assert np.isnan(row[3])


def test_window_rows_match_window_features_of_each_window(runs: list[Run]):
    run = runs[0]
    values = run.values.copy()
    values[:200, SIGNALS.index("bearing_temp_c")] = np.nan  # a sensor fitted late
    names, rows, ends = window_rows(run.times_s, values, SIGNALS, width_s=WINDOW_S, step_s=HOUR)
    bounds = windows(run.times_s, values, width_s=WINDOW_S, step_s=HOUR)

    one_by_one = np.array(
        [window_features(run.times_s[a:b], values[a:b], SIGNALS)[1] for a, b in bounds]
    )

    assert rows.shape == one_by_one.shape == (len(bounds), 4 * len(SIGNALS))
    np.testing.assert_allclose(rows, one_by_one, rtol=1e-6, atol=1e-6)
    assert ends[-1] == run.times_s[-1]  # the newest window ends 'now'
    assert np.all(np.diff(ends) == HOUR)


def test_windows_are_whole_and_anchored_at_the_newest_reading():
    times = np.arange(0, 10 * HOUR + 1, 600.0)
    bounds = windows(times, np.ones((len(times), 1)), width_s=2 * HOUR, step_s=HOUR)
    assert len(bounds) == 9
    assert bounds[-1][1] == len(times)
    assert all(times[b - 1] - times[a] < 2 * HOUR for a, b in bounds)
    assert windows(times[:5], np.ones((5, 1)), width_s=2 * HOUR, step_s=HOUR) == []


def test_align_columns_fills_missing_features_with_nan():
    aligned = align_columns(["b", "a"], np.array([[2.0, 1.0]]), ["a", "c", "b"])
    assert aligned[0, 0] == 1.0 and aligned[0, 2] == 2.0 and np.isnan(aligned[0, 1])


# --- anomaly detector -------------------------------------------------------------------------


def test_anomaly_model_scores_injected_vibration_ramps_higher(
    detector: AnomalyModel, split: tuple[list[Run], list[Run]]
):
    # given: healthy held-out windows, and the same kind of windows with a ramp to +1.5 mm/s
    # (zone B/C of a mill that runs at ~1.2 mm/s)
    _, healthy = healthy_rows(split[1])
    faulty = with_vibration_ramp(split[1], 1.5)

    # when
    metrics = anomaly_metrics(detector, healthy, faulty)

    # then (measured on seed 3: ROC-AUC 0.999, recall 98%, false alarms 0.8%; without the
    # whitening step recall was ~15%)
    assert metrics["roc_auc"] >= 0.98
    assert metrics["recall"] >= 0.85
    assert metrics["false_alarm_rate"] <= 0.03
    assert np.median(detector.score(faulty)) > np.quantile(detector.score(healthy), 0.99)


def test_anomaly_model_flags_the_last_day_before_failure(
    detector: AnomalyModel, split: tuple[list[Run], list[Run]]
):
    rows = []
    for run in split[1]:
        _, window, ends = window_rows(
            run.times_s, run.values, run.signals, width_s=WINDOW_S, step_s=HOUR
        )
        rows.append(window[ends > run.failure_s - 24 * HOUR])
    # measured on seed 3: all of them
    assert detector.is_anomalous(np.vstack(rows)).mean() >= 0.9


def test_anomaly_model_round_trips_through_bytes(
    detector: AnomalyModel, split: tuple[list[Run], list[Run]]
):
    _, rows = healthy_rows(split[1][:1])
    loaded = AnomalyModel.from_bytes(detector.to_bytes())
    assert loaded.features == detector.features
    assert loaded.threshold == detector.threshold
    np.testing.assert_array_equal(loaded.score(rows), detector.score(rows))
    with pytest.raises(ValueError):
        RulModel.from_bytes(detector.to_bytes())


def test_anomaly_model_trains_with_a_signal_no_window_had():
    rng = np.random.default_rng(0)
    rows = rng.normal(size=(200, 8))
    rows[:, 3] = np.nan  # e.g. bearing_temp_c: no node of this kind reports it
    rows[:20, 5] = np.nan
    model = anomaly_model_train(rows, [f"f{i}" for i in range(8)])
    scores = model.score(rows)
    assert np.isfinite(scores).all()
    assert np.mean(scores > model.threshold) <= 0.01
    outlier = rows[:1].copy()
    outlier[0, [0, 1]] = [8.0, -8.0]
    assert model.is_anomalous(outlier)[0]


# --- vibration trend --------------------------------------------------------------------------


def line_with_outliers(slope: float, *, outliers: float, seed: int = 0) -> tuple:
    rng = np.random.default_rng(seed)
    times = np.arange(0, 48 * HOUR, 600.0)  # 48 h of 10-minute readings
    values = 1.0 + slope * times / HOUR + rng.normal(0, 0.05, len(times))
    # gross outliers (a loose sensor, a tool crash) bunched in the first third: they would
    # flatten a least-squares line
    hit = rng.choice(len(times) // 3, size=int(outliers * len(times)), replace=False)
    values[hit] += rng.uniform(3, 8, len(hit))
    return times, values


def test_vibration_trend_recovers_the_slope_despite_gross_outliers():
    times, values = line_with_outliers(0.05, outliers=0.10)

    trend = vibration_trend(times, values, limit=4.5)

    assert trend is not None
    assert trend.slope_per_h == pytest.approx(0.05, rel=0.1)
    # the true line is at 1 + 0.05 * 47.8 = 3.39 mm/s now and reaches 4.5 in 22.2 h
    assert trend.level_now == pytest.approx(3.39, abs=0.1)
    assert trend.hours_to_limit == pytest.approx(22.2, rel=0.15)
    # the same data misleads least squares: the outliers are what the test is about
    least_squares = np.polyfit(times / HOUR, values, 1)[0]
    assert abs(least_squares - 0.05) > 0.015


def test_vibration_trend_without_a_rise_has_no_hours_to_limit():
    times, values = line_with_outliers(-0.02, outliers=0.0)
    falling = vibration_trend(times, values, limit=4.5)
    flat = vibration_trend(times, np.full(len(times), 2.0), limit=4.5)
    assert falling is not None and falling.slope_per_h < 0 and falling.hours_to_limit is None
    assert flat is not None and flat.hours_to_limit is None


def test_vibration_trend_above_the_limit_is_zero_hours_and_needs_ten_readings():
    times, values = line_with_outliers(0.05, outliers=0.0)
    above = vibration_trend(times, values + 5, limit=4.5)
    assert above is not None and above.hours_to_limit == 0.0
    assert vibration_trend(times[:9], values[:9], limit=4.5) is None
    with_gaps = values.copy()
    with_gaps[9:] = np.nan
    assert vibration_trend(times, with_gaps, limit=4.5) is None


def test_exponential_trend_extrapolates_growth():
    times = np.arange(0, 24 * HOUR, 600.0)
    values = 1.0 * np.exp(0.04 * times / HOUR)  # 2.6 mm/s now, 4.5 in ~13.7 h
    exponential = vibration_trend(times, values, limit=4.5, exponential=True)
    linear = vibration_trend(times, values, limit=4.5)
    assert exponential is not None and linear is not None
    assert exponential.hours_to_limit == pytest.approx(np.log(4.5) / 0.04 - 23.83, rel=0.02)
    assert linear.hours_to_limit is not None and exponential.hours_to_limit is not None
    assert linear.hours_to_limit > exponential.hours_to_limit * 1.3


# --- remaining useful life ----------------------------------------------------------------------


def test_rul_features_cover_every_signal_given():
    times = np.arange(0, 60 * HOUR, 600.0)
    values = np.column_stack([np.linspace(1, 3, len(times)), np.full(len(times), np.nan)])
    names, row = rul_features(times, values, ["vibration_mm_s", "spindle_oil_bar"])
    features = dict(zip(names, row, strict=True))
    assert names[-1] == "service_h"
    assert features["service_h"] == pytest.approx(59.83, abs=0.01)
    assert features["vibration_mm_s__slope_h"] == pytest.approx(2 / 59.83, rel=1e-3)
    assert features["vibration_mm_s__drift"] > 1.0
    assert {f"spindle_oil_bar__{s}" for s in ("mean", "q90", "slope_h")} <= set(names)
    assert np.isnan(features["spindle_oil_bar__mean"])


def test_rul_training_rows_target_hours_to_failure(runs: list[Run]):
    features, x, y, units = rul_training_rows(runs[:3], every_s=6 * HOUR, window_s=24 * HOUR)
    assert x.shape == (len(y), len(features)) and len(units) == len(y)
    for unit in {run.unit for run in runs[:3]}:
        mine = y[np.array(units) == unit]
        assert np.all(np.diff(mine) < 0)  # later cuts, fewer hours left
        assert 0 <= mine[-1] < 6.0 + 1 / 6
    run = runs[0]
    assert y[0] == pytest.approx((run.failure_s - 24 * HOUR) / HOUR, abs=1 / 6)


def test_split_units_never_puts_a_unit_on_both_sides(runs: list[Run]):
    # a unit that failed twice (two runs, one name) must stay on one side
    again = Run(runs[0].unit, runs[1].times_s, runs[1].values, SIGNALS, runs[1].failure_s)
    train, test = split_units([*runs, again], test_share=0.25, seed=1)
    train_units, test_units = {r.unit for r in train}, {r.unit for r in test}
    assert not train_units & test_units
    assert train_units | test_units == {r.unit for r in runs}
    assert len(test_units) == 5
    assert len(train) + len(test) == len(runs) + 1


def test_rul_model_beats_the_mean_baseline_on_held_out_units(
    rul_model: RulModel, split: tuple[list[Run], list[Run]]
):
    metrics = rul_metrics(rul_model, split[1])

    # measured on seed 3: RMSE 47 h against the baseline's 87 h; last 48 h: 6 against 96
    assert metrics["units"] == 5
    assert metrics["rmse_h"] < 0.8 * metrics["baseline_rmse_h"]
    assert metrics["mae_h"] < metrics["baseline_mae_h"]
    near = metrics["near_failure"]
    assert near["rmse_h"] < 0.3 * near["baseline_rmse_h"]


def test_rul_predictions_are_never_negative(
    rul_model: RulModel, split: tuple[list[Run], list[Run]]
):
    names, x, _, _ = rul_training_rows(split[1], every_s=3 * HOUR, window_s=rul_model.window_s)
    assert rul_model.predict(align_columns(names, x, rul_model.features)).min() >= 0.0
    # a booster that does go below zero (the RUL model above stays at >= 4 h on these rows)
    rng = np.random.default_rng(0)
    x = rng.normal(size=(200, 2))
    booster = xgb.XGBRegressor(n_estimators=20).fit(x, x[:, 0] * 10).get_booster()
    model = RulModel(booster, ["a", "b"], 24 * HOUR, 6 * HOUR, 5.0, 200)
    raw = booster.inplace_predict(x)
    assert (raw < 0).any()
    np.testing.assert_array_equal(model.predict(x), np.clip(raw, 0.0, None))


def test_rul_model_round_trips_through_bytes(
    rul_model: RulModel, split: tuple[list[Run], list[Run]]
):
    run = split[1][0]
    names, x, _, _ = rul_training_rows([run])
    rows = align_columns(names, x, rul_model.features)
    loaded = RulModel.from_bytes(rul_model.to_bytes())
    assert loaded.features == rul_model.features
    assert (loaded.window_s, loaded.baseline_h) == (rul_model.window_s, rul_model.baseline_h)
    np.testing.assert_array_equal(loaded.predict(rows), rul_model.predict(rows))
    history = loaded.predict_history(run.times_s, run.values, run.signals)
    assert history == rul_model.predict_history(run.times_s, run.values, run.signals)
    with pytest.raises(ValueError):
        AnomalyModel.from_bytes(rul_model.to_bytes())


# --- simulator ----------------------------------------------------------------------------------


def test_simulated_units_are_seeded_and_fail_in_zone_d(runs: list[Run]):
    again = simulate_runs(3, seed=3)
    np.testing.assert_array_equal(again[2].values, runs[2].values)  # unit 3 whatever n_units
    assert not np.array_equal(simulate_runs(1, seed=4)[0].values[:10], runs[0].values[:10])
    lives = [run.failure_s / HOUR for run in runs]
    assert min(lives) > 100 and max(lives) < 550 and len({round(life) for life in lives}) == 20
    for run in runs:
        cutting = run.values[:, RPM] > 0
        vibration = run.values[:, VIBRATION]
        assert run.times_s[-1] < run.failure_s
        assert np.nanmedian(vibration[cutting][:50]) < 2.0  # zone A/B when new
        assert np.nanmax(vibration[cutting][-12:]) > 4.0  # near zone D at the end


def test_csv_rows_use_iso_times_and_one_failure_time_per_unit(runs: list[Run]):
    rows = to_csv_rows(runs[:2])
    assert len(rows) == len(runs[0].times_s) + len(runs[1].times_s)
    assert list(rows[0]) == ["unit", "time", *SIGNALS, "failure_time"]
    assert rows[0]["time"] == "2026-01-05T00:00:00Z"
    assert rows[1]["time"] == "2026-01-05T00:10:00Z"
    first = [row for row in rows if row["unit"] == runs[0].unit]
    assert len({row["failure_time"] for row in first}) == 1
    assert str(first[-1]["time"]) < str(first[0]["failure_time"])
    assert any(row["vibration_mm_s"] is None for row in rows)  # dropouts are empty cells


# --- false alarms per node-week --------------------------------------------------------------

STEP = 300.0  # the training service's window step


def test_alarms_are_runs_of_consecutive_flagged_windows_per_node():
    nodes = np.array([1, 1, 1, 1, 1, 2, 2, 2])
    ends = np.array([0, 300, 600, 900, 1500, 0, 300, 600], dtype=float)
    flagged = np.array([True, True, False, True, True, True, False, True])
    # node 1: [0, 300] one run, [900] another, [1500] after a gap another; node 2: two runs
    assert alarm_count(flagged, nodes=nodes, ends=ends, step_s=STEP) == 5
    # row order does not matter
    order = np.array([7, 3, 0, 5, 1, 6, 4, 2])
    assert alarm_count(flagged[order], nodes=nodes[order], ends=ends[order], step_s=STEP) == 5
    assert exposure_node_weeks(2016, step_s=STEP) == pytest.approx(1.0)


def _healthy_scores(weeks_per_node: float, nodes: int, seed: int):
    rng = np.random.default_rng(seed)
    per_node = int(round(weeks_per_node * 2016))
    node_ids = np.repeat(np.arange(nodes), per_node)
    ends = np.tile(np.arange(per_node) * STEP, nodes)
    # autocorrelated like window scores (overlapping windows): a smoothed random walk
    noise = rng.normal(size=(nodes, per_node))
    kernel = np.ones(4) / 4
    smooth = np.array([np.convolve(row, kernel, mode="same") for row in noise]).reshape(-1)
    return smooth, node_ids, ends


def test_threshold_is_the_lowest_with_the_allowed_alarms():
    scores, nodes, ends = _healthy_scores(2.0, nodes=3, seed=1)  # 6 node-weeks
    # bound 1 per node-week at half of it on these windows: 3 alarms allowed
    threshold = threshold_for_alarm_rate(
        scores, nodes=nodes, ends=ends, step_s=STEP, alarms_per_node_week=1.0
    )
    alarms = alarm_count(scores > threshold, nodes=nodes, ends=ends, step_s=STEP)
    assert alarms <= 3
    # the next score down raises more: it is the lowest such threshold
    lower = scores[scores < threshold].max()
    assert alarm_count(scores > lower, nodes=nodes, ends=ends, step_s=STEP) > 3
    # too little history for one allowed alarm: nothing healthy is flagged
    few, few_nodes, few_ends = scores[:500], nodes[:500], ends[:500]
    strict = threshold_for_alarm_rate(
        few, nodes=few_nodes, ends=few_ends, step_s=STEP, alarms_per_node_week=1.0
    )
    assert strict == few.max() and not (few > strict).any()


def test_held_out_false_alarms_pass_the_bound_on_like_data_and_fail_on_shifted_data():
    """A detector's threshold chosen on calibration windows for one alarm per node-week: newer
    windows of the same machines stay under the bound; windows of machines run differently
    (no fault, just not what it learned) do not, and the measure says so."""
    rng = np.random.default_rng(3)
    load = rng.normal(size=(4 * 2016, 1))
    rows = np.hstack([load + 0.1 * rng.normal(size=(len(load), 1)) for _ in range(6)])
    names = [f"f{i}" for i in range(6)]
    nodes = np.repeat(np.arange(4), 2016)
    ends = np.tile(np.arange(2016) * STEP, 4)
    fit = ends < 0.6 * 2016 * STEP
    calibrate = (ends >= 0.6 * 2016 * STEP) & (ends < 0.8 * 2016 * STEP)
    held = ends >= 0.8 * 2016 * STEP
    model = anomaly_model_train(rows[fit], names, seed=0)
    threshold = threshold_for_alarm_rate(
        model.score(rows[calibrate]),
        nodes=nodes[calibrate],
        ends=ends[calibrate],
        step_s=STEP,
        alarms_per_node_week=1.0,
    )

    def per_week(held_rows):
        alarms = alarm_count(
            model.score(held_rows) > threshold, nodes=nodes[held], ends=ends[held], step_s=STEP
        )
        return alarms / exposure_node_weeks(int(held.sum()), step_s=STEP)

    assert per_week(rows[held]) <= 1.0
    shifted = rows[held].copy()
    shifted[:, :3] += 0.6  # three features leave the others: the correlation breaks
    assert per_week(shifted) > 1.0


@pytest.mark.parametrize(
    ("alarms", "hours", "refused"),
    [
        (0, 1.0, False),  # nothing seen: nothing against it
        (1, 9.8, False),  # 17 per week observed, yet a detector at 1/week does it 6% of the time
        (1, 5.0, True),  # one alarm in 5 hours: above the bound even at 95% confidence
        (2, 24.0, True),
        (3, 2 * 168.0, False),  # 1.5 per week over two weeks: not shown to be above 1
        (6, 2 * 168.0, True),  # 3 per week over two weeks: it is
        (30, 4 * 168.0, True),
    ],
)
def test_the_false_alarm_bound_is_judged_by_the_rates_lower_confidence_bound(
    alarms, hours, refused
):
    low = alarm_rate_lower_bound(alarms, hours / 168.0)
    assert (low > 1.0) is refused
    assert low <= alarms / (hours / 168.0)  # never above the observed rate


def test_the_lower_bound_is_the_rate_a_detector_shows_that_often():
    # a detector at exactly the lower bound raises at least this many alarms in 5% of such spans
    from scipy.stats import poisson

    for alarms, weeks in [(1, 0.06), (2, 0.5), (5, 3.0)]:
        low = alarm_rate_lower_bound(alarms, weeks)
        assert poisson.sf(alarms - 1, low * weeks) == pytest.approx(0.05, abs=1e-6)


def test_alarms_and_exposure_follow_each_nodes_own_step():
    # node 1 reports every 5 minutes (windows 300 s apart), node 2 hourly (3600 s apart)
    nodes = np.array([1, 1, 1, 2, 2, 2])
    ends = np.array([0, 300, 600, 0, 3600, 7200], dtype=float)
    steps = np.array([300, 300, 300, 3600, 3600, 3600], dtype=float)
    flagged = np.array([True, False, True, True, True, True])
    # node 1: two runs; node 2: one run of three hourly windows (one step each, not a gap)
    assert alarm_count(flagged, nodes=nodes, ends=ends, step_s=steps) == 3
    assert alarm_count(flagged, nodes=nodes, ends=ends, step_s=STEP) == 5  # as 5-minute gaps
    assert exposure_node_weeks(6, step_s=steps) == pytest.approx((900 + 3 * 3600) / (7 * 86400))


def test_only_runs_the_sustain_rule_would_ticket_count_with_a_minimum_run():
    nodes = np.array([1] * 8 + [2] * 4)
    ends = np.concatenate([np.arange(8) * STEP, np.arange(4) * 3600.0])
    steps = np.array([STEP] * 8 + [3600.0] * 4)
    flagged = np.array([1, 1, 0, 1, 1, 1, 0, 1, 1, 1, 1, 0], dtype=bool)
    # node 1: runs of 2, 3 and 1 windows; node 2: one run of 3 hourly windows
    assert alarm_count(flagged, nodes=nodes, ends=ends, step_s=steps) == 4
    assert alarm_count(flagged, nodes=nodes, ends=ends, step_s=steps, min_run=3) == 2
    # per window: node 2 needs 4 (a slower sustain), so only node 1's run of 3 counts
    needed = np.array([3] * 8 + [4] * 4)
    order = np.array([11, 3, 0, 8, 5, 1, 9, 6, 4, 2, 10, 7])
    assert (
        alarm_count(
            flagged[order],
            nodes=nodes[order],
            ends=ends[order],
            step_s=steps[order],
            min_run=needed[order],
        )
        == 1
    )
