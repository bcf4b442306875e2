"""Maintenance learning benchmark: the anomaly detector, the remaining-useful-life (RUL) regressor
and the vibration trend on simulated run-to-failure histories of CNC mills
(apps/maintenance/learning/runs.py), scored on held-out UNITS, with the baselines in the same run.

    .venv/bin/python -m bench.rul [--units 60] [--cycle-units 60] [--seed 7] [--kind cnc_mill]

- anomaly: Isolation Forest on 6 h windows (every hour) of the training units' healthy
  operation (before the simulated degradation onset); held out: healthy windows of the other
  units, and their windows ending in the last 24 h before failure as the faulty ones.
- RUL: XGBoost on the training units cut every 6 h; RMSE / MAE in hours on the held-out units
  against the mean training RUL (the baseline), overall and in the last 48 h before failure.
- trend: Theil-Sen line through the last 24 h of vibration under load (and through its
  logarithm: exponential growth), extrapolated to 4.5 mm/s (ISO 10816 zone D), at cuts 96 / 48 /
  24 / 12 h before failure, against the hours until the observed vibration (centred 6 h median
  under load) actually reached 4.5 mm/s.

- rul, cycles: the same simulator as cycle-indexed histories (one row per hour of cutting, a
  few hundred cycles per unit, the spindle speed as the operating setting `setting_rpm` and
  `bearing_temp_c` among the sensors; `--cycle-units`), train and test units apart. Each test
  unit is cut at a random cycle (15-95% of its life, as the turbofan benchmark's test units
  are); scored by RMSE at each test unit's last cycle against the true RUL, against the
  mean-life baseline (the training units' mean life minus the cycles already run), and with
  the target capped (the model) and uncapped (the same model without the cap).

No database, no Django: it measures the learning code the maintenance tasks call.
"""

from __future__ import annotations

import argparse
import math
import statistics
import time

import numpy as np
from numpy.typing import NDArray

from apps.maintenance.learning.anomaly import (
    Array,
    anomaly_metrics,
    anomaly_model_train,
    window_rows,
)
from apps.maintenance.learning.rul import (
    RulModel,
    Run,
    rul_metrics,
    rul_model_train,
    split_units,
    vibration_trend,
)
from apps.maintenance.learning.runs import simulate_cycle_runs, simulate_runs

HOUR = 3600.0
WINDOW_S = 6 * HOUR
STEP_S = 1 * HOUR
FAULTY_WITHIN_H = 24.0
HORIZON_H = 96.0
TREND_LIMIT = 4.5
TREND_WINDOW_S = 24 * HOUR
TREND_CUTS_H = (96.0, 48.0, 24.0, 12.0)
MAX_FALSE_ALARM = 0.02


def labelled_windows(runs: list[Run]) -> tuple[list[str], Array, Array, Array]:
    """Feature rows of the windows before the degradation onset (healthy), and of those ending
    within HORIZON_H of failure with their hours to failure (the last FAULTY_WITHIN_H of them
    are the faulty ones)."""
    healthy, late, hours_left = [], [], []
    names: list[str] = []
    for run in runs:
        names, rows, ends = window_rows(
            run.times_s, run.values, run.signals, width_s=WINDOW_S, step_s=STEP_S
        )
        assert run.onset_s is not None
        left = (run.failure_s - ends) / HOUR
        healthy.append(rows[ends < run.onset_s])
        late.append(rows[left <= HORIZON_H])
        hours_left.append(left[left <= HORIZON_H])
    return names, np.vstack(healthy), np.vstack(late), np.concatenate(hours_left)


def under_load(run: Run) -> tuple[Array, Array]:
    """Times and vibration of the readings taken with the spindle turning."""
    rpm = run.values[:, run.signals.index("spindle_rpm")]
    vibration = run.values[:, run.signals.index("vibration_mm_s")]
    keep = (rpm > 0) & ~np.isnan(vibration)
    return run.times_s[keep], vibration[keep]


def rolling_median(times: Array, values: Array, half_width_s: float) -> Array:
    """Median of the values within +/- half_width_s of each reading (centred)."""
    low = np.searchsorted(times, times - half_width_s, side="left")
    high = np.searchsorted(times, times + half_width_s, side="right")
    return np.array([np.median(values[a:b]) for a, b in zip(low, high, strict=True)])


def trend_errors(
    runs: list[Run], cut_h: float, *, exponential: bool
) -> tuple[int, list[float], int]:
    """(units scored, predicted - observed hours to the limit, units whose trend gave none).
    A unit is scored when it has a full trend window before the cut, was still below the limit
    at the cut and the observed vibration reached the limit before failure."""
    errors, no_trend, scored = [], 0, 0
    for run in runs:
        times, vibration, at_limit = _under_load_at_limit(run)
        cut = run.failure_s - cut_h * HOUR
        recent = (times > cut - TREND_WINDOW_S) & (times <= cut)
        if cut < times[0] + TREND_WINDOW_S or not recent.any():
            continue
        if at_limit[np.flatnonzero(recent)[-1]]:
            continue
        crossed = np.flatnonzero(at_limit & (times > cut))
        if len(crossed) == 0:
            continue
        scored += 1
        trend = vibration_trend(
            times[recent], vibration[recent], limit=TREND_LIMIT, exponential=exponential
        )
        if trend is None or trend.hours_to_limit is None:
            no_trend += 1
            continue
        errors.append(trend.hours_to_limit - (times[crossed[0]] - cut) / HOUR)
    return scored, errors, no_trend


_at_limit: dict[str, tuple[Array, Array, NDArray[np.bool_]]] = {}


def _under_load_at_limit(run: Run) -> tuple[Array, Array, NDArray[np.bool_]]:
    if run.unit not in _at_limit:
        times, vibration = under_load(run)
        at_limit = rolling_median(times, vibration, 3 * HOUR) >= TREND_LIMIT
        _at_limit[run.unit] = (times, vibration, at_limit)
    return _at_limit[run.unit]


def last_cycle_scores(
    model: RulModel, test: list[Run], *, mean_life: float, seed: int
) -> dict[str, float]:
    """RMSE at each test unit's last cycle (cut at 15-95% of its life) of the model and of the
    mean-life baseline, against the true RUL and against it capped; interval coverage."""
    rng = np.random.default_rng(seed)
    truth, predicted, lows, highs, baseline = [], [], [], [], []
    for run in test:
        stop = int(rng.uniform(0.15, 0.95) * len(run.times_s))
        stop = max(stop, 2)
        times, values = run.times_s[:stop], run.values[:stop]
        value, low, high = model.predict_interval(model.history_row(times, values, run.signals))
        truth.append(run.failure_s - times[-1])
        predicted.append(float(value[0]))
        lows.append(float(low[0]))
        highs.append(float(high[0]))
        baseline.append(max(mean_life - times[-1], 0.0))
    t, p, b = np.array(truth), np.array(predicted), np.array(baseline)
    capped = np.minimum(t, model.cap)

    def rmse(a: Array, b: Array) -> float:
        return float(np.sqrt(np.mean((a - b) ** 2)))

    return {
        "units": len(t),
        "rmse": rmse(p, t),
        "rmse_capped": rmse(p, capped),
        "baseline_rmse": rmse(b, t),
        "baseline_rmse_capped": rmse(b, capped),
        "coverage": float(np.mean((np.array(lows) <= capped) & (capped <= np.array(highs)))),
        "median_truth": float(np.median(t)),
    }


def cycle_case(n_units: int, *, seed: int, kind: str) -> None:
    started = time.perf_counter()
    runs = simulate_cycle_runs(n_units, seed=seed, kind=kind)
    simulate_s = time.perf_counter() - started
    train, test = split_units(runs, test_share=0.25, seed=seed)
    lives = [run.failure_s for run in runs]
    mean_life = float(np.mean([run.failure_s for run in train]))
    print(
        f"rul, cycles: {len(runs)} cycle-indexed {kind} units (seed {seed}), lives"
        f" {min(lives):.0f}-{max(lives):.0f} cycles (median {statistics.median(lives):.0f}),"
        f" signals {', '.join(runs[0].signals)}; {len(train)} training units, {len(test)} held"
        f" out ({simulate_s:.2f} s)"
    )
    print(
        f"  {'at each test unit last cycle':34} {'RMSE':>8} {'RMSE vs capped':>15}"
        f" {'90% interval holds':>19}"
    )
    rows = []
    for label, cap in (("xgboost, capped target", None), ("xgboost, uncapped target", math.inf)):
        started = time.perf_counter()
        model = rul_model_train(train, seed=seed, cap=cap)
        train_s = time.perf_counter() - started
        scores = last_cycle_scores(model, test, mean_life=mean_life, seed=seed)
        rows.append((label, model, scores, train_s))
    base = rows[0][2]
    print(
        f"  {'mean-life baseline':34} {base['baseline_rmse']:8.1f}"
        f" {base['baseline_rmse_capped']:15.1f} {'':>19}"
    )
    for label, model, scores, train_s in rows:
        print(
            f"  {label:34} {scores['rmse']:8.1f} {scores['rmse_capped']:15.1f}"
            f" {scores['coverage']:19.0%}   ({model.trees} trees after early stopping,"
            f" {train_s:.1f} s)"
        )
    capped = rows[0][2]
    print(
        f"  {capped['units']} test units, median true RUL at the cut"
        f" {capped['median_truth']:.0f} cycles; cap {rows[0][1].cap:g} cycles; RMSE"
        f" {capped['rmse'] / capped['baseline_rmse']:.0%} of the mean-life baseline's:"
        f" {verdict(capped['rmse'] < capped['baseline_rmse'])}"
    )


def verdict(ok: bool) -> str:
    return "PASS" if ok else "MISS"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--units", type=int, default=60)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--kind", default="cnc_mill")
    parser.add_argument("--cycle-units", type=int, default=60)
    args = parser.parse_args()

    started = time.perf_counter()
    runs = simulate_runs(args.units, seed=args.seed, kind=args.kind)
    simulate_s = time.perf_counter() - started
    train, test = split_units(runs, test_share=0.25, seed=args.seed)
    lives = [run.failure_s / HOUR for run in runs]
    readings = sum(len(run.times_s) for run in runs)
    print(
        f"{len(runs)} simulated {args.kind} units (seed {args.seed}): {readings:,} readings every"
        f" 10 min, lifetimes {min(lives):.0f}-{max(lives):.0f} h (median"
        f" {statistics.median(lives):.0f} h); {len(train)} training units, {len(test)} held out"
        f" ({simulate_s:.2f} s)"
    )

    print(
        f"anomaly: Isolation Forest (whitened features) on {WINDOW_S / HOUR:.0f} h windows every"
        f" {STEP_S / HOUR:.0f} h; healthy = before degradation onset, faulty = last"
        f" {FAULTY_WITHIN_H:.0f} h before failure"
    )
    started = time.perf_counter()
    names, healthy_train, _, _ = labelled_windows(train)
    _, healthy_test, late_test, hours_left = labelled_windows(test)
    faulty_test = late_test[hours_left <= FAULTY_WITHIN_H]
    windows_s = time.perf_counter() - started
    started = time.perf_counter()
    detector = anomaly_model_train(healthy_train, names, seed=args.seed)
    detector_s = time.perf_counter() - started
    scores = anomaly_metrics(detector, healthy_test, faulty_test)
    print(
        f"  windows   {windows_s:6.2f} s   train {detector_s:5.2f} s on {len(healthy_train):,}"
        f" healthy windows x {len(names)} features"
    )
    print(
        f"  held out  ROC-AUC {scores['roc_auc']:.3f}   recall {scores['recall']:.1%}"
        f"   false alarms {scores['false_alarm_rate']:.2%}"
        f" ({scores['healthy_windows']:,} healthy, {scores['faulty_windows']:,} faulty windows)"
        f"   false alarms <= {MAX_FALSE_ALARM:.0%}:"
        f" {verdict(scores['false_alarm_rate'] <= MAX_FALSE_ALARM)}"
    )
    flagged = detector.is_anomalous(late_test)
    by_horizon = "   ".join(
        f"{low:.0f}-{high:.0f} h {np.mean(flagged[(hours_left > low) & (hours_left <= high)]):.0%}"
        for low, high in ((0, 6), (6, 12), (12, 24), (24, 48), (48, 96))
    )
    print(f"  flagged by hours before failure: {by_horizon}")

    print("rul: XGBoost on histories cut every 6 h (24 h windows), held-out units")
    started = time.perf_counter()
    model = rul_model_train(train, seed=args.seed)
    rul_s = time.perf_counter() - started
    started = time.perf_counter()
    rul = rul_metrics(model, test)
    score_s = time.perf_counter() - started
    near = rul["near_failure"]
    print(
        f"  train {rul_s:5.2f} s on {model.training_rows:,} rows x {len(model.features)} features;"
        f" scoring {score_s:.2f} s on {rul['rows']:,} rows of {rul['units']} units"
    )
    print(f"  {'':34} {'RMSE h':>8} {'MAE h':>8}   last {near['within_h']:.0f} h: RMSE h   MAE h")
    print(
        f"  {'mean training RUL (baseline)':34} {rul['baseline_rmse_h']:8.1f}"
        f" {rul['baseline_mae_h']:8.1f}   {'':9}{near['baseline_rmse_h']:7.1f}"
        f" {near['baseline_mae_h']:7.1f}"
    )
    print(
        f"  {'xgboost':34} {rul['rmse_h']:8.1f} {rul['mae_h']:8.1f}   {'':9}"
        f"{near['rmse_h']:7.1f} {near['mae_h']:7.1f}"
    )
    print(
        f"  RMSE {rul['rmse_h'] / rul['baseline_rmse_h']:.0%} of the baseline's:"
        f" {verdict(rul['rmse_h'] < rul['baseline_rmse_h'])}"
    )

    print(
        f"trend: Theil-Sen on the last {TREND_WINDOW_S / HOUR:.0f} h of vibration under load,"
        f" hours to {TREND_LIMIT} mm/s vs when the observed 6 h median reached it"
    )
    print(
        f"  {'fit':<12} {'cut':>19} {'units':>6} {'no rise':>8} {'median |error| h':>17}"
        f" {'median error h':>15} {'late':>6}"
    )
    started = time.perf_counter()
    for exponential in (False, True):
        for cut_h in TREND_CUTS_H:
            scored, errors, no_trend = trend_errors(test, cut_h, exponential=exponential)
            if errors:
                line = (
                    f"{statistics.median(abs(e) for e in errors):17.1f}"
                    f" {statistics.median(errors):+15.1f}"
                    f" {sum(e > 0 for e in errors) / len(errors):6.0%}"
                )
            else:
                line = f"{'-':>17} {'-':>15} {'-':>6}"
            fit = "exponential" if exponential else "linear"
            cut = f"{cut_h:.0f} h before failure"
            print(f"  {fit:<12} {cut:>19} {scored:6} {no_trend:8} {line}")
    print(
        f"  ({time.perf_counter() - started:.2f} s; late = predicted after the observed crossing;"
        " exponential = the line through ln(vibration))"
    )
    cycle_case(args.cycle_units, seed=args.seed, kind=args.kind)


if __name__ == "__main__":
    main()
