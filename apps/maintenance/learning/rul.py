"""Vibration trend and remaining useful life (RUL) for the maintenance agent.

`vibration_trend` fits a robust straight line (Theil-Sen) through recent vibration readings and
extrapolates it to a limit: simple, explainable, and blind to acceleration (a bearing's
vibration grows roughly exponentially, so a straight line is late; `exponential=True` fits the
line through the logarithm instead).

The RUL regressor is XGBoost trained on run-to-failure histories (`Run`) cut at many points,
as the literature does on run-to-failure data (e.g. the turbofan and bearing benchmarks):

- Time unit: a history is indexed by seconds (a clock; RUL in hours) or by cycles (a counter of
  operations, flights, strokes...; RUL in cycles). Windows, cuts, the cap, the target and the
  metrics are in the history's own unit (`UNITS`); runs of both units never mix in one model.
- Operating-condition normalisation: when a history has setting columns (named `setting...` or
  `op_setting...`), the rows are clustered into operating regimes on those settings (k-means, at
  most REGIMES regimes) and every other signal is standardised per regime (`Conditions`), so
  a change of operating point is not read as wear; the settings themselves are not features.
- Rolling-window features (`rul_features`): per signal the last window's level, spread, 90th
  percentile and slope, a slope over LONG_WINDOWS windows, the drift since the first window, and
  the time in service.
- Capped piecewise-linear target: min(RUL, cap). A healthy machine shows no sign of how long it
  will last, so the target is flat at the cap while healthy and falls linearly to 0 at failure
  (cap: 200 h for clock histories, where simulated bearings degrade over 70-290 h; 125 cycles
  for cycle histories, the value common on the turbofan benchmark). A prediction at the cap
  reads "at least the cap". Metrics are on the capped target, the model's and the baseline's.
- Early stopping on held-out UNITS: a fifth of the units (when there are 5 or more) is the
  validation set for xgboost's `early_stopping_rounds`; the model is then refit on all units
  with the number of trees found, and the validation residuals give the prediction interval
  (`RulModel.predict_interval`: 5-95% residual quantiles per tercile of the prediction).

Scored on held-out UNITS (`split_units`), never on held-out rows of a unit it was trained on,
against the mean capped training RUL as the baseline in the same call (`rul_metrics`).

Pure Python (numpy, scikit-learn, xgboost): no Django.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
import struct
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import xgboost as xgb
from sklearn.cluster import KMeans
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
HOURS = "h"
CYCLES = "cycles"


@dataclass(frozen=True)
class TimeUnit:
    clock_per_unit: float  # clock units (seconds or cycles) per unit of RUL
    window: float  # in clock units
    every: float  # cuts of a training run, in clock units
    cap: float  # target cap, in RUL units
    near: float  # "near failure" in the metrics, in RUL units


UNITS = {
    HOURS: TimeUnit(
        clock_per_unit=3600.0, window=24 * 3600.0, every=6 * 3600.0, cap=200.0, near=48.0
    ),
    CYCLES: TimeUnit(clock_per_unit=1.0, window=30.0, every=5.0, cap=125.0, near=30.0),
}
WINDOW_S = UNITS[HOURS].window
EVERY_S = UNITS[HOURS].every
REGIMES = 6
SETTING = re.compile(r"^(op_)?setting", re.IGNORECASE)
VALIDATION_SHARE = 0.2
MIN_UNITS_FOR_EARLY_STOPPING = 5
EARLY_STOPPING_ROUNDS = 30
MAX_TREES = 800
INTERVAL = (0.05, 0.95)
MIN_ROWS = 20
# Bump when the features, target or training procedure change: the registry stores a new
# version only when this or the training data changed (services/training.py).
CODE_VERSION = "rul-2"
ARTIFACT_MAGIC = b"IMEWE-RUL2"
OLD_MAGIC = b"IMEWE-RUL1"
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
    times_s: Array,
    values: Array,
    signals: list[str],
    *,
    window_s: float = WINDOW_S,
    time_unit: str = HOURS,
) -> tuple[list[str], Array]:
    """Features of a history up to its newest reading ('now'), for every signal given
    (telemetry columns and extra ones alike): the last window's mean, std, 90th percentile and
    slope per RUL unit (hour or cycle), the slope over LONG_WINDOWS windows, the drift of the
    mean since the history's first window, and the time in service: the span of the history in
    hours, or for a cycle history its newest cycle (cycles count from the unit's start or last
    repair). `times_s` and `window_s` are in the history's clock (seconds or cycles)."""
    times_s = np.asarray(times_s, dtype=float)
    values = np.asarray(values, dtype=float).reshape(len(times_s), len(signals))
    names = [*feature_names(signals, RUL_STATS), "service_h"]
    if len(times_s) == 0:
        return names, np.full(len(names), np.nan)
    per_unit = UNITS[time_unit].clock_per_unit
    # nan_slope_per_h divides seconds by 3600: scale the clock so its slope is per RUL unit
    slope_clock = times_s * (3600.0 / per_unit)
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
        nan_slope_per_h(slope_clock[last:], values[last:]),
        nan_slope_per_h(slope_clock[long:], values[long:]),
        mean - first_mean,
    ]
    row = np.column_stack(stats).reshape(-1)
    service = now if time_unit == CYCLES else (now - times_s[0]) / per_unit
    return names, np.append(row, service)


@dataclass(frozen=True, eq=False)
class Run:
    """One run-to-failure history: readings from the unit's start (or last repair) until it
    failed at `failure_s` (same clock as `times_s`: seconds, or cycles when `time_unit` is
    CYCLES)."""

    unit: str
    times_s: Array
    values: Array
    signals: list[str]
    failure_s: float
    onset_s: float | None = None  # when degradation began, if known (simulated runs only)
    time_unit: str = HOURS


def _signals_of(runs: Sequence[Run]) -> list[str]:
    signals: list[str] = []
    for run in runs:
        signals.extend(s for s in run.signals if s not in signals)
    return signals


def time_unit_of(runs: Sequence[Run]) -> str:
    units = {run.time_unit for run in runs}
    if len(units) > 1:
        raise ValueError("runs indexed by time and by cycles cannot train one model")
    unit = units.pop() if units else HOURS
    if unit not in UNITS:
        raise ValueError(f"unknown time unit {unit!r}; known: {', '.join(UNITS)}")
    return unit


def run_fingerprint(runs: Sequence[Run]) -> str:
    """A digest of the runs' data (units, clocks, signals, values, failures), in unit order."""
    digest = hashlib.sha256()
    for run in sorted(runs, key=lambda r: (r.unit, r.failure_s)):
        digest.update(f"{run.unit}|{run.time_unit}|{run.failure_s!r}|{run.signals}".encode())
        digest.update(np.ascontiguousarray(run.times_s, dtype=float).tobytes())
        digest.update(np.ascontiguousarray(run.values, dtype=float).tobytes())
    return digest.hexdigest()


# --- operating conditions -----------------------------------------------------------------------


@dataclass(frozen=True)
class Conditions:
    """Operating regimes found on the setting columns, and each other signal's mean and
    standard deviation per regime (fitted on training runs)."""

    settings: list[str]
    setting_mean: list[float]
    setting_std: list[float]
    centres: list[list[float]]  # regimes, in standardised setting space
    signals: list[str]
    mean: list[list[float]]  # [regime][signal]
    std: list[list[float]]

    def regimes(self, settings: Array) -> Array:
        scaled = (np.asarray(settings, dtype=float) - self.setting_mean) / self.setting_std
        scaled = np.where(np.isnan(scaled), 0.0, scaled)
        distance = ((scaled[:, None, :] - np.asarray(self.centres)[None]) ** 2).sum(axis=2)
        return np.asarray(np.argmin(distance, axis=1))

    def apply(self, values: Array, signals: list[str]) -> tuple[Array, list[str]]:
        """The signals other than the settings, standardised per regime (a signal not seen in
        training passes unchanged); settings dropped."""
        values = np.asarray(values, dtype=float)
        settings = align_columns(signals, values, self.settings)
        regime = self.regimes(settings)
        kept = [s for s in signals if s not in self.settings]
        out = align_columns(signals, values, kept)
        mean, std = np.asarray(self.mean), np.asarray(self.std)
        for j, name in enumerate(kept):
            if name in self.signals:
                k = self.signals.index(name)
                out[:, j] = (out[:, j] - mean[regime, k]) / std[regime, k]
        return out, kept

    def as_dict(self) -> dict[str, Any]:
        return {
            "settings": self.settings,
            "setting_mean": self.setting_mean,
            "setting_std": self.setting_std,
            "centres": self.centres,
            "signals": self.signals,
            "mean": self.mean,
            "std": self.std,
        }


def conditions_fit(runs: Sequence[Run], *, seed: int = 0) -> Conditions | None:
    """None when the runs have no setting column."""
    signals = _signals_of(runs)
    settings = [s for s in signals if SETTING.match(s)]
    if not settings:
        return None
    values = np.vstack([align_columns(run.signals, run.values, signals) for run in runs])
    raw = align_columns(signals, values, settings)
    setting_mean = np.nan_to_num(np.nanmean(raw, axis=0))
    setting_std = np.nan_to_num(np.nanstd(raw, axis=0))
    setting_std = np.where(setting_std > 1e-12, setting_std, 1.0)
    scaled = np.nan_to_num((raw - setting_mean) / setting_std)
    distinct = len(np.unique(np.round(scaled, 6), axis=0))
    k = max(1, min(REGIMES, distinct))
    centres = KMeans(n_clusters=k, n_init=3, random_state=seed).fit(scaled).cluster_centers_
    partial = Conditions(
        settings, setting_mean.tolist(), setting_std.tolist(), centres.tolist(), [], [], []
    )
    regime = partial.regimes(raw)
    others = [s for s in signals if s not in settings]
    data = align_columns(signals, values, others)
    mean = np.zeros((k, len(others)))
    std = np.ones((k, len(others)))
    for r in range(k):
        block = data[regime == r]
        if len(block):
            m, s, _ = nan_stats(block)
            mean[r] = np.nan_to_num(m)
            std[r] = np.where(np.nan_to_num(s) > 1e-9, np.nan_to_num(s), 1.0)
    return Conditions(
        settings,
        setting_mean.tolist(),
        setting_std.tolist(),
        centres.tolist(),
        others,
        mean.tolist(),
        std.tolist(),
    )


def _conditioned(
    conditions: Conditions | None, values: Array, signals: list[str]
) -> tuple[Array, list[str]]:
    if conditions is None:
        return np.asarray(values, dtype=float), list(signals)
    return conditions.apply(values, signals)


# --- training rows -----------------------------------------------------------------------------


def rul_training_rows(
    runs: Sequence[Run],
    *,
    every_s: float | None = None,
    window_s: float | None = None,
    conditions: Conditions | None = None,
) -> tuple[list[str], Array, Array, list[str]]:
    """Each run cut every `every_s` clock units from one window after its start until its
    failure; a row is `rul_features` of the (condition-normalised) history up to the cut
    (columns of the union of the runs' signals, NaN where a run lacks one) and its target the
    time from the cut to the failure, in RUL units (hours or cycles), uncapped.
    Returns (features, X, y, unit of each row)."""
    time_unit = time_unit_of(runs)
    spec = UNITS[time_unit]
    every = spec.every if every_s is None else every_s
    window = spec.window if window_s is None else window_s
    blocks: list[Array] = []
    targets: list[float] = []
    units: list[str] = []
    features: list[str] = []
    per_run = []
    for run in runs:
        values, signals = _conditioned(conditions, run.values, run.signals)
        per_run.append((run, values, signals))
        features.extend(s for s in signals if s not in features)
    features = [*feature_names(features, RUL_STATS), "service_h"]
    for run, values, signals in per_run:
        times = np.asarray(run.times_s, dtype=float)
        if len(times) == 0:
            continue
        cuts = np.arange(times[0] + window, min(run.failure_s, times[-1] + 1e-9), every)
        stops = np.unique(np.searchsorted(times, cuts, side="right"))
        rows = []
        names = features
        for stop in stops:
            names, row = rul_features(
                times[:stop], values[:stop], signals, window_s=window, time_unit=time_unit
            )
            rows.append(row)
            targets.append((run.failure_s - times[stop - 1]) / spec.clock_per_unit)
            units.append(run.unit)
        if rows:
            blocks.append(align_columns(names, np.array(rows), features))
    x = np.vstack(blocks) if blocks else np.empty((0, len(features)))
    return features, x, np.array(targets, dtype=float), units


# --- the model ---------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class RulModel:
    booster: xgb.Booster
    features: list[str]
    window_s: float  # in the clock of its histories (seconds or cycles)
    every_s: float
    baseline_h: float  # mean capped RUL of the training rows: the constant guess to beat
    training_rows: int
    time_unit: str = HOURS
    cap: float = math.inf
    conditions: Conditions | None = None
    # (upper edge of the predicted value, low residual, high residual), ascending edges
    interval: list[tuple[float, float, float]] = field(default_factory=list)
    trees: int = 0

    @property
    def unit(self) -> str:
        """How the RUL reads: "h" or "cycles"."""
        return self.time_unit

    def predict(self, rows: Array) -> Array:
        """RUL per row (aligned to `features`), in the model's unit, within [0, cap]."""
        rows = np.atleast_2d(np.asarray(rows, dtype=float))
        raw = np.asarray(self.booster.inplace_predict(rows), dtype=float)
        clipped: Array = np.clip(raw, 0.0, self.cap)
        return clipped

    def predict_interval(self, rows: Array) -> tuple[Array, Array, Array]:
        """(prediction, low, high): the prediction plus the 5% and 95% residuals of held-out
        units whose prediction fell in the same tercile; low <= prediction <= high."""
        predicted = self.predict(rows)
        low, high = predicted.copy(), predicted.copy()
        if self.interval:
            edges = np.array([edge for edge, _, _ in self.interval])
            bins = np.minimum(np.searchsorted(edges, predicted), len(edges) - 1)
            lows = np.array([lo for _, lo, _ in self.interval])[bins]
            highs = np.array([hi for _, _, hi in self.interval])[bins]
            low = np.clip(predicted + np.minimum(lows, 0.0), 0.0, None)
            high = predicted + np.maximum(highs, 0.0)
        return predicted, low, high

    def history_row(self, times_s: Array, values: Array, signals: list[str]) -> Array:
        values, signals = _conditioned(self.conditions, values, signals)
        names, row = rul_features(
            times_s, values, signals, window_s=self.window_s, time_unit=self.time_unit
        )
        return align_columns(names, row, self.features)

    def predict_history(self, times_s: Array, values: Array, signals: list[str]) -> float:
        return float(self.predict(self.history_row(times_s, values, signals))[0])

    def to_bytes(self) -> bytes:
        """Magic, header length, JSON header, then xgboost's own UBJSON (no pickle)."""
        header = json.dumps(
            {
                "features": self.features,
                "window_s": self.window_s,
                "every_s": self.every_s,
                "baseline_h": self.baseline_h,
                "training_rows": self.training_rows,
                "time_unit": self.time_unit,
                "cap": None if math.isinf(self.cap) else self.cap,
                "conditions": None if self.conditions is None else self.conditions.as_dict(),
                "interval": self.interval,
                "trees": self.trees,
                "xgboost": xgb.__version__,
            }
        ).encode()
        booster = bytes(self.booster.save_raw("ubj"))
        return ARTIFACT_MAGIC + struct.pack(">I", len(header)) + header + booster

    @classmethod
    def from_bytes(cls, raw: bytes) -> RulModel:
        magic = next((m for m in (ARTIFACT_MAGIC, OLD_MAGIC) if raw.startswith(m)), None)
        if magic is None:
            raise ValueError("not a RUL model artifact")
        at = len(magic)
        (size,) = struct.unpack(">I", raw[at : at + 4])
        header = json.loads(raw[at + 4 : at + 4 + size])
        booster = xgb.Booster()
        booster.load_model(bytearray(raw[at + 4 + size :]))
        conditions = header.get("conditions")
        cap = header.get("cap")
        return cls(
            booster=booster,
            features=list(header["features"]),
            window_s=float(header["window_s"]),
            every_s=float(header["every_s"]),
            baseline_h=float(header["baseline_h"]),
            training_rows=int(header["training_rows"]),
            time_unit=header.get("time_unit", HOURS),
            cap=math.inf if cap is None else float(cap),
            conditions=None if conditions is None else Conditions(**conditions),
            interval=[tuple(b) for b in header.get("interval", [])],
            trees=int(header.get("trees", 0)),
        )


def _interval_bins(predicted: Array, actual: Array) -> list[tuple[float, float, float]]:
    """Residual (actual - predicted) quantiles per tercile of the prediction."""
    if len(predicted) < 9:
        return []
    edges = np.quantile(predicted, [1 / 3, 2 / 3, 1.0])
    bins = np.minimum(np.searchsorted(edges, predicted), 2)
    out = []
    residual = actual - predicted
    for b, edge in enumerate(edges):
        mine = residual[bins == b]
        if len(mine) == 0:
            mine = residual
        lo, hi = np.quantile(mine, INTERVAL)
        out.append((float(edge), round(float(lo), 3), round(float(hi), 3)))
    out[-1] = (math.inf, out[-1][1], out[-1][2])
    return out


def rul_model_train(
    runs: Sequence[Run],
    *,
    seed: int = 0,
    every_s: float | None = None,
    window_s: float | None = None,
    params: dict[str, Any] | None = None,
    cap: float | None = None,
) -> RulModel:
    """Trained on all of `runs`: with 5 or more units, a fifth of them (seed) first serve as
    the validation set for early stopping and for the interval's residuals, then the model is
    refit on every unit with the number of trees found. Raises ValueError, saying why, when
    the runs give fewer than MIN_ROWS rows."""
    time_unit = time_unit_of(runs)
    spec = UNITS[time_unit]
    every = spec.every if every_s is None else every_s
    window = spec.window if window_s is None else window_s
    cap = spec.cap if cap is None else cap
    conditions = conditions_fit(runs, seed=seed)
    features, x, y, units = rul_training_rows(
        runs, every_s=every, window_s=window, conditions=conditions
    )
    if len(y) < MIN_ROWS:
        span = max((run.failure_s - run.times_s[0] for run in runs if len(run.times_s)), default=0)
        raise ValueError(
            f"need at least {MIN_ROWS} training rows, got {len(y)}: runs are cut every "
            f"{every:g} {'s' if time_unit == HOURS else 'cycles'} from {window:g} into their "
            f"life, and the longest of {len(runs)} runs spans {span:g}"
        )
    y = np.minimum(y, cap)
    settings = {**PARAMS, **(params or {}), "random_state": seed}
    trees = int(settings["n_estimators"])
    interval: list[tuple[float, float, float]] = []
    names = sorted(set(units))
    if len(names) >= MIN_UNITS_FOR_EARLY_STOPPING:
        order = np.random.default_rng(seed).permutation(len(names))
        held = {names[i] for i in order[: max(1, round(len(names) * VALIDATION_SHARE))]}
        val = np.array([u in held for u in units])
        stopper = xgb.XGBRegressor(
            **{**settings, "n_estimators": max(trees, MAX_TREES)},
            early_stopping_rounds=EARLY_STOPPING_ROUNDS,
        )
        stopper.fit(x[~val], y[~val], eval_set=[(x[val], y[val])], verbose=False)
        trees = int(stopper.best_iteration) + 1
        predicted = np.clip(stopper.predict(x[val], iteration_range=(0, trees)), 0.0, cap)
        interval = _interval_bins(predicted, y[val])
    regressor = xgb.XGBRegressor(**{**settings, "n_estimators": trees})
    regressor.fit(x, y)
    return RulModel(
        booster=regressor.get_booster(),
        features=features,
        window_s=window,
        every_s=every,
        baseline_h=float(np.mean(y)),
        training_rows=len(y),
        time_unit=time_unit,
        cap=cap,
        conditions=conditions,
        interval=interval,
        trees=trees,
    )


def _errors(predicted: Array, actual: Array) -> tuple[float, float]:
    if len(actual) == 0:
        return math.nan, math.nan
    error = predicted - actual
    return float(np.sqrt(np.mean(error**2))), float(np.mean(np.abs(error)))


def rul_metrics(
    model: RulModel, runs: Sequence[Run], *, near: float | None = None
) -> dict[str, Any]:
    """RMSE and MAE in the model's unit (keys `rmse_h` or `rmse_cycles`, ...) on `runs`
    (held-out units), cut as in training, against the capped target, for the model and for the
    baseline (the mean capped training RUL) on the same rows; also on the rows within `near`
    of failure, where a prediction matters most; and how often the interval held the truth."""
    u = model.unit
    near = UNITS[model.time_unit].near if near is None else near
    names, x, y, units = rul_training_rows(
        runs, every_s=model.every_s, window_s=model.window_s, conditions=model.conditions
    )
    y = np.minimum(y, model.cap)
    rows = align_columns(names, x, model.features)
    if len(y):
        predicted, low, high = model.predict_interval(rows)
    else:
        predicted = low = high = y
    baseline = np.full(len(y), model.baseline_h)
    close = y <= near
    rmse, mae = _errors(predicted, y)
    baseline_rmse, baseline_mae = _errors(baseline, y)
    near_rmse, near_mae = _errors(predicted[close], y[close])
    near_baseline_rmse, near_baseline_mae = _errors(baseline[close], y[close])
    covered = float(np.mean((low <= y) & (y <= high))) if len(y) and model.interval else math.nan
    return {
        "unit": u,
        f"rmse_{u}": round(rmse, 2),
        f"mae_{u}": round(mae, 2),
        "baseline": "mean capped training RUL",
        f"baseline_{u}": round(model.baseline_h, 2),
        f"baseline_rmse_{u}": round(baseline_rmse, 2),
        f"baseline_mae_{u}": round(baseline_mae, 2),
        "cap": model.cap,
        "interval_coverage": None if math.isnan(covered) else round(covered, 3),
        "near_failure": {
            f"within_{u}": near,
            "rows": int(close.sum()),
            f"rmse_{u}": round(near_rmse, 2),
            f"mae_{u}": round(near_mae, 2),
            f"baseline_rmse_{u}": round(near_baseline_rmse, 2),
            f"baseline_mae_{u}": round(near_baseline_mae, 2),
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
