"""Vibration trend and remaining useful life (RUL) for the maintenance agent.

`vibration_trend` fits a robust straight line (Theil-Sen) through recent vibration readings and
extrapolates it to a limit: simple, explainable, and blind to acceleration (a bearing's
vibration grows roughly exponentially, so a straight line is late; `exponential=True` fits the
line through the logarithm instead).

The RUL regressor is XGBoost on features of a node's history up to 'now' (`rul_features`: per
signal the last window's level, spread, 90th percentile and slope, a longer slope, the drift
since the first window; hours in service), trained on run-to-failure histories (`Run`) cut at
many points, the target being the hours from the cut to the failure. It is scored on held-out
UNITS (`split_units`), never on held-out rows of a unit it was trained on, against the mean
training RUL as the baseline in the same call (`rul_metrics`).

Pure Python (numpy, scikit-learn, xgboost): no Django.
"""

from __future__ import annotations

import json
import math
import struct
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import xgboost as xgb
from sklearn.linear_model import TheilSenRegressor

from apps.maintenance.learning.anomaly import (
    Array,
    align_columns,
    feature_names,
    nan_slope_per_h,
    nan_stats,
)

TREND_MIN_POINTS = 10
RUL_STATS = ("mean", "std", "q90", "slope_h", "slope_long_h", "drift")
LONG_WINDOWS = 4  # the long slope spans this many windows
WINDOW_S = 24 * 3600.0
EVERY_S = 6 * 3600.0
ARTIFACT_MAGIC = b"IMEWE-RUL1"
PARAMS: dict[str, Any] = {
    "n_estimators": 300,
    "max_depth": 4,
    "learning_rate": 0.05,
    "subsample": 0.8,
    "colsample_bytree": 0.8,
    "min_child_weight": 5,
    "tree_method": "hist",
    "n_jobs": 1,
}


@dataclass(frozen=True)
class Trend:
    slope_per_h: float  # value units per hour, now (an exponential trend steepens)
    intercept: float  # fitted value at the first reading
    level_now: float  # fitted value at the newest reading
    hours_to_limit: float | None  # 0.0 when already at the limit, None when not rising


def vibration_trend(
    times_s: Array, values: Array, *, limit: float, exponential: bool = False
) -> Trend | None:
    """Theil-Sen line through (hours, value), NaN readings dropped; None with fewer than
    TREND_MIN_POINTS readings. Pass the window to extrapolate from (e.g. the last 24 h) and,
    where a machine idles often, only readings taken under load.

    `exponential` fits the line through (hours, ln value) instead (readings <= 0 dropped) and
    extrapolates the growth: a bearing's vibration grows roughly exponentially, and on the
    simulated mills that cut the median error of hours-to-limit 24 h before failure from ~11 h
    late to ~1 h (bench/rul.py)."""
    times_s = np.asarray(times_s, dtype=float)
    values = np.asarray(values, dtype=float)
    seen = np.isfinite(times_s) & np.isfinite(values)
    if exponential:
        seen &= values > 0
    times_s, values = times_s[seen], values[seen]
    if len(values) < TREND_MIN_POINTS or times_s[-1] <= times_s[0]:
        return None
    hours = (times_s - times_s[0]) / 3600.0
    target = np.log(values) if exponential else values
    # 2,000 random pairs instead of sklearn's 10,000: ~0.1 s instead of ~0.6 s for a few
    # hundred readings, and the same slope to a few percent
    fit = TheilSenRegressor(random_state=0, max_subpopulation=2000).fit(hours[:, None], target)
    slope = float(fit.coef_[0])
    start = float(fit.intercept_)
    now = start + slope * float(hours[-1])
    if exponential:
        level_now, slope_now, intercept = math.exp(now), slope * math.exp(now), math.exp(start)
    else:
        level_now, slope_now, intercept = now, slope, start
    if level_now >= limit:
        hours_to_limit: float | None = 0.0
    elif slope > 1e-9:  # not a numerically flat line
        gap = math.log(limit) - now if exponential else limit - now
        hours_to_limit = gap / slope
    else:
        hours_to_limit = None
    return Trend(slope_now, intercept, level_now, hours_to_limit)


def _nan_quantile(values: Array, q: float) -> Array:
    out = np.full(values.shape[1], np.nan)
    for j in range(values.shape[1]):
        column = values[:, j]
        column = column[~np.isnan(column)]
        if len(column):
            out[j] = np.quantile(column, q)
    return out


def rul_features(
    times_s: Array, values: Array, signals: list[str], *, window_s: float = WINDOW_S
) -> tuple[list[str], Array]:
    """Features of a history up to its newest reading ('now'), for every signal given
    (telemetry columns and extra ones alike): the last window's mean, std, 90th percentile and
    slope per hour, the slope over LONG_WINDOWS windows, the drift of the mean since the
    history's first window, and the hours in service (span of the history)."""
    times_s = np.asarray(times_s, dtype=float)
    values = np.asarray(values, dtype=float).reshape(len(times_s), len(signals))
    names = [*feature_names(signals, RUL_STATS), "service_h"]
    if len(times_s) == 0:
        return names, np.full(len(names), np.nan)
    now = times_s[-1]
    last = int(np.searchsorted(times_s, now - window_s, side="right"))
    long = int(np.searchsorted(times_s, now - LONG_WINDOWS * window_s, side="right"))
    first = int(np.searchsorted(times_s, times_s[0] + window_s, side="right"))
    mean, std, _ = nan_stats(values[last:])
    first_mean, _, _ = nan_stats(values[:first])
    stats = [
        mean,
        std,
        _nan_quantile(values[last:], 0.9),
        nan_slope_per_h(times_s[last:], values[last:]),
        nan_slope_per_h(times_s[long:], values[long:]),
        mean - first_mean,
    ]
    row = np.column_stack(stats).reshape(-1)
    return names, np.append(row, (now - times_s[0]) / 3600.0)


@dataclass(frozen=True, eq=False)
class Run:
    """One run-to-failure history: readings from the unit's start (or last repair) until it
    failed at `failure_s` (same clock as `times_s`)."""

    unit: str
    times_s: Array
    values: Array
    signals: list[str]
    failure_s: float
    onset_s: float | None = None  # when degradation began, if known (simulated runs only)


def _signals_of(runs: Sequence[Run]) -> list[str]:
    signals: list[str] = []
    for run in runs:
        signals.extend(s for s in run.signals if s not in signals)
    return signals


def rul_training_rows(
    runs: Sequence[Run], *, every_s: float = EVERY_S, window_s: float = WINDOW_S
) -> tuple[list[str], Array, Array, list[str]]:
    """Each run cut every `every_s` seconds from one window after its start until its failure;
    a row is `rul_features` of the history up to the cut (columns of the union of the runs'
    signals, NaN where a run lacks one) and its target the hours from the cut to the failure.
    Returns (features, X, y_hours, unit of each row)."""
    features = [*feature_names(_signals_of(runs), RUL_STATS), "service_h"]
    blocks: list[Array] = []
    targets: list[float] = []
    units: list[str] = []
    for run in runs:
        times = np.asarray(run.times_s, dtype=float)
        if len(times) == 0:
            continue
        cuts = np.arange(times[0] + window_s, min(run.failure_s, times[-1] + 1e-9), every_s)
        stops = np.unique(np.searchsorted(times, cuts, side="right"))
        rows = []
        for stop in stops:
            names, row = rul_features(
                times[:stop], run.values[:stop], run.signals, window_s=window_s
            )
            rows.append(row)
            targets.append((run.failure_s - times[stop - 1]) / 3600.0)
            units.append(run.unit)
        if rows:
            blocks.append(align_columns(names, np.array(rows), features))
    x = np.vstack(blocks) if blocks else np.empty((0, len(features)))
    return features, x, np.array(targets, dtype=float), units


@dataclass(frozen=True, eq=False)
class RulModel:
    booster: xgb.Booster
    features: list[str]
    window_s: float
    every_s: float
    baseline_h: float  # mean RUL of the training rows: the constant guess to beat
    training_rows: int

    def predict(self, rows: Array) -> Array:
        """Hours to failure per row (aligned to `features`), never negative."""
        rows = np.atleast_2d(np.asarray(rows, dtype=float))
        return np.clip(np.asarray(self.booster.inplace_predict(rows), dtype=float), 0.0, None)

    def predict_history(self, times_s: Array, values: Array, signals: list[str]) -> float:
        names, row = rul_features(times_s, values, signals, window_s=self.window_s)
        return float(self.predict(align_columns(names, row, self.features))[0])

    def to_bytes(self) -> bytes:
        """Magic, header length, JSON header, then xgboost's own UBJSON (no pickle)."""
        header = json.dumps(
            {
                "features": self.features,
                "window_s": self.window_s,
                "every_s": self.every_s,
                "baseline_h": self.baseline_h,
                "training_rows": self.training_rows,
                "xgboost": xgb.__version__,
            }
        ).encode()
        booster = bytes(self.booster.save_raw("ubj"))
        return ARTIFACT_MAGIC + struct.pack(">I", len(header)) + header + booster

    @classmethod
    def from_bytes(cls, raw: bytes) -> RulModel:
        if not raw.startswith(ARTIFACT_MAGIC):
            raise ValueError("not a RUL model artifact")
        at = len(ARTIFACT_MAGIC)
        (size,) = struct.unpack(">I", raw[at : at + 4])
        header = json.loads(raw[at + 4 : at + 4 + size])
        booster = xgb.Booster()
        booster.load_model(bytearray(raw[at + 4 + size :]))
        return cls(
            booster=booster,
            features=list(header["features"]),
            window_s=float(header["window_s"]),
            every_s=float(header["every_s"]),
            baseline_h=float(header["baseline_h"]),
            training_rows=int(header["training_rows"]),
        )


def rul_model_train(
    runs: Sequence[Run],
    *,
    seed: int = 0,
    every_s: float = EVERY_S,
    window_s: float = WINDOW_S,
    params: dict[str, Any] | None = None,
) -> RulModel:
    features, x, y, _ = rul_training_rows(runs, every_s=every_s, window_s=window_s)
    if len(y) < 20:
        raise ValueError(f"need at least 20 training rows, got {len(y)}")
    regressor = xgb.XGBRegressor(**{**PARAMS, **(params or {}), "random_state": seed})
    regressor.fit(x, y)
    return RulModel(
        booster=regressor.get_booster(),
        features=features,
        window_s=window_s,
        every_s=every_s,
        baseline_h=float(np.mean(y)),
        training_rows=len(y),
    )


def _errors(predicted: Array, actual: Array) -> tuple[float, float]:
    if len(actual) == 0:
        return math.nan, math.nan
    error = predicted - actual
    return float(np.sqrt(np.mean(error**2))), float(np.mean(np.abs(error)))


def rul_metrics(model: RulModel, runs: Sequence[Run], *, near_h: float = 48.0) -> dict[str, Any]:
    """RMSE and MAE in hours on `runs` (held-out units), cut as in training, for the model and
    for the baseline (the mean training RUL) on the same rows; also on the rows within
    `near_h` hours of failure, where a prediction matters most."""
    names, x, y, units = rul_training_rows(runs, every_s=model.every_s, window_s=model.window_s)
    predicted = model.predict(align_columns(names, x, model.features)) if len(y) else y
    baseline = np.full(len(y), model.baseline_h)
    near = y <= near_h
    rmse, mae = _errors(predicted, y)
    baseline_rmse, baseline_mae = _errors(baseline, y)
    near_rmse, near_mae = _errors(predicted[near], y[near])
    near_baseline_rmse, near_baseline_mae = _errors(baseline[near], y[near])
    return {
        "rmse_h": round(rmse, 2),
        "mae_h": round(mae, 2),
        "baseline": "mean training RUL",
        "baseline_h": round(model.baseline_h, 2),
        "baseline_rmse_h": round(baseline_rmse, 2),
        "baseline_mae_h": round(baseline_mae, 2),
        "near_failure": {
            "within_h": near_h,
            "rows": int(near.sum()),
            "rmse_h": round(near_rmse, 2),
            "mae_h": round(near_mae, 2),
            "baseline_rmse_h": round(near_baseline_rmse, 2),
            "baseline_mae_h": round(near_baseline_mae, 2),
        },
        "rows": len(y),
        "units": len(set(units)),
    }


def split_units(
    runs: Sequence[Run], *, test_share: float = 0.25, seed: int = 0
) -> tuple[list[Run], list[Run]]:
    """(train, test) by unit: every run of a unit lands on the same side. At least one unit on
    each side when there are two or more."""
    units = sorted({run.unit for run in runs})
    if len(units) < 2:
        raise ValueError("need at least two units to hold one out")
    order = np.random.default_rng(seed).permutation(len(units))
    count = min(max(1, round(len(units) * test_share)), len(units) - 1)
    test_units = {units[i] for i in order[:count]}
    train = [run for run in runs if run.unit not in test_units]
    test = [run for run in runs if run.unit in test_units]
    return train, test
