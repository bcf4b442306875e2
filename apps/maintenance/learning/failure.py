"""The failure classifier: XGBoost on a machine's signals plus engineered features
(apps.maintenance.learning.features), predicting whether a process ends in a machine failure.

The decision threshold is chosen from out-of-fold probabilities on the training rows alone, so a
held-out score measures the whole procedure: features, booster and threshold. The booster is
stored as UBJSON bytes; the caller keeps the feature list and threshold next to it.
"""

from __future__ import annotations

import csv
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import xgboost as xgb
from sklearn.metrics import precision_recall_curve, roc_auc_score
from sklearn.model_selection import StratifiedKFold, train_test_split

from apps.maintenance.learning.features import VARIANTS, Table, engineer

MIN_PRECISION = 0.92  # the threshold keeps at least this precision on out-of-fold rows
FOLDS = 5
PARAMS: dict[str, Any] = {
    "n_estimators": 300,
    "max_depth": 4,
    "learning_rate": 0.05,
    "reg_lambda": 5.0,
    "subsample": 0.9,
    "colsample_bytree": 0.9,
    # exact splits: failures sit just past sharp limits, and 256 histogram bins blur them
    "tree_method": "exact",
    "eval_metric": "logloss",
    # One thread per model and WORKERS models at a time: with n_jobs=2 the exact method's
    # OpenMP threads spin at every split, and a fit took 10-20 s instead of 1 s whenever
    # other processes shared the two cores.
    "n_jobs": 1,
}
WORKERS = 2


@dataclass(frozen=True, eq=False)
class FailureModel:
    booster: xgb.Booster
    features: list[str]  # columns after engineer() that held values in training, matrix order
    threshold: float  # on the probability; chosen on training rows only

    def probability(self, table: Table) -> np.ndarray:
        """Probability of failure per row; columns are matched by name, absent ones are NaN."""
        matrix = _matrix(engineer(table), self.features)
        if not len(matrix):
            return np.zeros(0)
        return np.asarray(self.booster.inplace_predict(matrix), dtype=np.float64)

    def predict(self, table: Table) -> np.ndarray:
        return self.probability(table) >= self.threshold

    def to_bytes(self) -> bytes:
        return bytes(self.booster.save_raw("ubj"))

    @classmethod
    def from_bytes(cls, raw: bytes, *, features: list[str], threshold: float) -> FailureModel:
        booster = xgb.Booster()
        booster.load_model(bytearray(raw))
        return cls(booster=booster, features=list(features), threshold=threshold)


@dataclass(frozen=True)
class Metrics:
    """Scores for the failure class at the model's threshold."""

    precision: float
    recall: float
    f1: float
    roc_auc: float  # NaN when the rows hold only one class
    threshold: float
    positives: int
    rows: int

    def as_dict(self) -> dict[str, float | int]:
        return asdict(self)


def _matrix(table: Table, features: list[str]) -> np.ndarray:
    matrix = np.empty((len(table), len(features)))
    for i, name in enumerate(features):
        matrix[:, i] = table.column(name)
    return matrix


def _check_labels(table: Table, labels: np.ndarray) -> np.ndarray:
    labels = np.asarray(labels)
    if labels.shape != (len(table),):
        raise ValueError(f"{labels.shape[0] if labels.ndim else 0} labels for {len(table)} rows")
    if not np.isin(labels, (0, 1)).all():
        raise ValueError("labels must be 0 (no failure) or 1 (failure)")
    return labels.astype(np.int64)


def stratified_split(
    labels: np.ndarray, *, test_share: float = 0.2, seed: int = 42
) -> tuple[np.ndarray, np.ndarray]:
    """Row indices (train, held out), both classes in the same proportion in each."""
    rows = np.arange(len(labels))
    train, held_out = train_test_split(
        rows, test_size=test_share, random_state=seed, stratify=labels
    )
    return np.sort(train), np.sort(held_out)


def failure_threshold(
    labels: np.ndarray, probabilities: np.ndarray, *, min_precision: float = MIN_PRECISION
) -> float:
    """The threshold that catches the most failures while keeping `min_precision`; of equally
    good ones, the highest. If no threshold is that precise, the one with the best F1."""
    precision, recall, thresholds = precision_recall_curve(labels, probabilities)
    precision, recall = precision[:-1], recall[:-1]  # the last point has no threshold
    precise = precision >= min_precision
    if precise.any():
        best_recall = recall[precise].max()
        return float(thresholds[precise & (recall == best_recall)].max())
    f1 = 2 * precision * recall / np.maximum(precision + recall, 1e-12)
    return float(thresholds[np.argmax(f1)])


def _fit(matrix: np.ndarray, labels: np.ndarray, seed: int, params: dict[str, Any]) -> xgb.Booster:
    classifier = xgb.XGBClassifier(**{**PARAMS, **params}, random_state=seed)
    classifier.fit(matrix, labels)
    return classifier.get_booster()


def failure_model_train(
    table: Table, labels: np.ndarray, *, seed: int = 42, params: dict[str, Any] | None = None
) -> FailureModel:
    """`params` override the booster's (PARAMS) for this training only."""
    params = params or {}
    labels = _check_labels(table, labels)
    positives = int(labels.sum())
    smaller_class = min(positives, len(labels) - positives)
    if smaller_class < 2:
        raise ValueError(f"need at least 2 rows of each class, got {positives} failures")
    engineered = engineer(table)
    features = [name for name in engineered.columns if engineered.has(name)]
    matrix = _matrix(engineered, features)

    # Out-of-fold probabilities: every training row scored by a model that never saw it. The
    # fold models and the final one are independent, so they train side by side.
    folds = StratifiedKFold(n_splits=min(FOLDS, smaller_class), shuffle=True, random_state=seed)
    splits = list(folds.split(matrix, labels))
    out_of_fold = np.zeros(len(labels))
    with ThreadPoolExecutor(max_workers=WORKERS) as pool:
        final = pool.submit(_fit, matrix, labels, seed, params)
        fold_models = [
            pool.submit(_fit, matrix[rows], labels[rows], seed, params) for rows, _ in splits
        ]
        for (_, scored), model in zip(splits, fold_models, strict=True):
            out_of_fold[scored] = model.result().inplace_predict(matrix[scored])
        booster = final.result()
    return FailureModel(
        booster=booster, features=features, threshold=failure_threshold(labels, out_of_fold)
    )


def failure_metrics(model: FailureModel, table: Table, labels: np.ndarray) -> Metrics:
    labels = _check_labels(table, labels)
    probabilities = model.probability(table)
    return metrics_at(labels, probabilities, model.threshold)


def metrics_at(labels: np.ndarray, probabilities: np.ndarray, threshold: float) -> Metrics:
    predicted = probabilities >= threshold
    true_pos = int((predicted & (labels == 1)).sum())
    flagged, positives = int(predicted.sum()), int(labels.sum())
    precision = true_pos / flagged if flagged else 0.0
    recall = true_pos / positives if positives else 0.0
    f1 = 2 * precision * recall / (precision + recall) if true_pos else 0.0
    both_classes = 0 < positives < len(labels)
    return Metrics(
        precision=precision,
        recall=recall,
        f1=f1,
        roc_auc=float(roc_auc_score(labels, probabilities)) if both_classes else float("nan"),
        threshold=float(threshold),
        positives=positives,
        rows=len(labels),
    )


# --- AI4I 2020 -------------------------------------------------------------------------------

AI4I_SIGNALS = {
    "Air temperature [K]": "ambient_c",
    "Process temperature [K]": "temperature_c",
    "Rotational speed [rpm]": "spindle_rpm",
    "Torque [Nm]": "torque_nm",
    "Tool wear [min]": "tool_wear_min",
}
KELVIN = 273.15


def ai4i_table(path: Path) -> tuple[Table, np.ndarray]:
    """The AI4I 2020 predictive maintenance CSV as canonical signals and `Machine failure`
    labels. The failure-mode columns (TWF, HDF, PWF, OSF, RNF) are parts of the label and are
    left out."""
    with path.open(encoding="utf-8-sig", newline="") as f:
        reader = csv.DictReader(f)
        missing = {"Type", "Machine failure", *AI4I_SIGNALS} - set(reader.fieldnames or [])
        if missing:
            raise ValueError(f"{path.name}: missing columns {sorted(missing)}")
        rows, labels = [], []
        for line, row in enumerate(reader, start=2):
            if row["Type"] not in VARIANTS:
                raise ValueError(f"{path.name}:{line}: unknown Type {row['Type']!r}")
            rows.append([VARIANTS[row["Type"]]] + [float(row[source]) for source in AI4I_SIGNALS])
            labels.append(int(row["Machine failure"]))
    values = np.array(rows, dtype=np.float64).reshape(len(rows), 1 + len(AI4I_SIGNALS))
    columns = ["variant", *AI4I_SIGNALS.values()]
    for name in ("ambient_c", "temperature_c"):
        values[:, columns.index(name)] -= KELVIN
    return Table(columns, values), np.array(labels, dtype=np.int64)


# The AI4I generator's failure modes decided by fixed rules on the signals (heat dissipation,
# power, overstrain); TWF is drawn at random in a tool-wear band, RNF at random, and a few
# failures carry no mode at all, so no model can do more than guess those.
AI4I_RULE_MODES = ("HDF", "PWF", "OSF")
# The bar (issue 20): over AI4I_SPLITS stratified splits, the means of precision (all failures)
# and of recall on failures with a rule-based mode. One split's recall of all failures depends
# on how many randomly drawn TWF/RNF failures it holds out (0.75-0.93), not on the model.
AI4I_SPLITS = 10
AI4I_MIN_PRECISION = 0.92
AI4I_MIN_RULE_RECALL = 0.95


def ai4i_rule_mode_rows(path: Path) -> np.ndarray:
    """Per row of the AI4I CSV, whether it carries an HDF, PWF or OSF flag. For scoring only:
    the flags are parts of the label, the model never sees them."""
    with path.open(encoding="utf-8-sig", newline="") as f:
        reader = csv.DictReader(f)
        missing = set(AI4I_RULE_MODES) - set(reader.fieldnames or [])
        if missing:
            raise ValueError(f"{path.name}: missing columns {sorted(missing)}")
        return np.array([any(row[m] == "1" for m in AI4I_RULE_MODES) for row in reader])


@dataclass(frozen=True)
class SplitScore:
    seed: int
    precision: float  # of every flagged held-out row
    recall: float  # of every held-out failure
    rule_recall: float  # of the held-out failures with a rule-based mode
    failures: int
    rule_failures: int


@dataclass(frozen=True)
class SplitEvaluation:
    splits: list[SplitScore]

    @property
    def mean_precision(self) -> float:
        return float(np.mean([s.precision for s in self.splits]))

    @property
    def mean_recall(self) -> float:
        return float(np.mean([s.recall for s in self.splits]))

    @property
    def mean_rule_recall(self) -> float:
        return float(np.mean([s.rule_recall for s in self.splits]))

    def passes(
        self,
        *,
        min_precision: float = AI4I_MIN_PRECISION,
        min_rule_recall: float = AI4I_MIN_RULE_RECALL,
    ) -> bool:
        return self.mean_precision >= min_precision and self.mean_rule_recall >= min_rule_recall


def failure_evaluate_splits(
    table: Table,
    labels: np.ndarray,
    *,
    rule_mode: np.ndarray,
    splits: int = AI4I_SPLITS,
    test_share: float = 0.2,
    params: dict[str, Any] | None = None,
) -> SplitEvaluation:
    """Train on the stratified split of seed s (0..splits-1) and score its held-out rows, for
    every s: the whole procedure (features, booster, threshold from the training rows' folds)
    each time. `rule_mode` marks the rows whose failure a rule-based mode explains."""
    labels = _check_labels(table, labels)
    rule_mode = np.asarray(rule_mode, dtype=bool)
    if rule_mode.shape != labels.shape:
        raise ValueError(f"{rule_mode.shape[0]} rule-mode flags for {len(labels)} rows")
    scores = []
    for seed in range(splits):
        train, held_out = stratified_split(labels, test_share=test_share, seed=seed)
        model = failure_model_train(table.take(train), labels[train], seed=seed, params=params)
        flagged = model.predict(table.take(held_out))
        failed = labels[held_out] == 1
        ruled = failed & rule_mode[held_out]
        caught = flagged & failed
        scores.append(
            SplitScore(
                seed=seed,
                precision=float(caught.sum() / flagged.sum()) if flagged.any() else 0.0,
                recall=float(caught.sum() / failed.sum()) if failed.any() else 0.0,
                rule_recall=float((flagged & ruled).sum() / ruled.sum()) if ruled.any() else 0.0,
                failures=int(failed.sum()),
                rule_failures=int(ruled.sum()),
            )
        )
    return SplitEvaluation(scores)
