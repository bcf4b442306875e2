"""Failure classifier benchmark on AI4I 2020: the maintenance agent's model
(apps/maintenance/learning/failure.py) trained cold on a stratified 80% and scored on the
held-out 20% of each of 10 splits (seeds 0-9), and on the split of `--seed` next to baselines
trained and scored on the same split in the same run.

    .venv/bin/python -m bench.failure_cold_start [--csv PATH] [--seed S] [--splits N]

Target (issue 20): over the 10 splits, mean precision >= 0.92 and mean recall >= 0.95 on the
failures with a rule-based mode (HDF, PWF, OSF); the mean recall of all failures is printed
beside it. Prints PASS or FAIL; exits 1 on FAIL. No database, no Django: the data set is read
from ../shared/data/ (the project keeps only a small sample of it, under
tests/maintenance/data/).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import xgboost as xgb
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from apps.maintenance.learning.failure import (
    AI4I_MIN_PRECISION,
    AI4I_MIN_RULE_RECALL,
    AI4I_RULE_MODES,
    AI4I_SPLITS,
    PARAMS,
    Metrics,
    ai4i_rule_mode_rows,
    ai4i_table,
    failure_evaluate_splits,
    failure_metrics,
    failure_model_train,
    metrics_at,
    stratified_split,
)
from apps.maintenance.learning.features import Table, engineer

DEFAULT_CSV = Path(__file__).resolve().parents[2] / "shared/data/ai4i2020.csv"
RULE_MODES = AI4I_RULE_MODES


def summary(name: str, m: Metrics) -> str:
    return (
        f"  {name:<46} precision {m.precision:.3f}  recall {m.recall:.3f}  F1 {m.f1:.3f}"
        f"  ROC-AUC {m.roc_auc:.3f}  threshold {m.threshold:.3f}"
    )


def xgboost_raw(train: Table, labels: np.ndarray, held_out: Table, seed: int) -> np.ndarray:
    """The same booster settings on the raw signals, no engineered features."""
    classifier = xgb.XGBClassifier(**PARAMS, random_state=seed)
    classifier.fit(train.values, labels)
    return np.asarray(classifier.predict_proba(held_out.values)[:, 1])


def logistic(train: Table, labels: np.ndarray, held_out: Table) -> np.ndarray:
    """Logistic regression on the standardised signals plus engineered features."""
    train, held_out = engineer(train), engineer(held_out)
    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000))
    model.fit(train.values, labels)
    return np.asarray(model.predict_proba(held_out.values)[:, 1])


def split_ceiling(labels: np.ndarray, flagged: np.ndarray, seed: int) -> float:
    """The recall of a model that catches exactly the rule-mode failures of a split's held-out
    rows: TWF is drawn at random in a wear band, RNF at random, and unflagged failures
    carry no mode, so beyond this a model only guesses."""
    _, held_out = stratified_split(labels, test_share=0.2, seed=seed)
    failures = labels[held_out] == 1
    return float((flagged[held_out] & failures).sum() / failures.sum())


def ceiling_spread(labels: np.ndarray, flagged: np.ndarray, splits: int = 100) -> None:
    """How that ceiling varies with the split's seed (cheap: no training)."""
    ceilings = np.array([split_ceiling(labels, flagged, s) for s in range(splits)])
    print(
        f"  that ceiling over the splits of seeds 0-{splits - 1}: min {ceilings.min():.3f}, "
        f"median {np.median(ceilings):.3f}, max {ceilings.max():.3f}; "
        f">= 0.85 in {(ceilings >= 0.85).mean():.0%} of them"
    )


def across_splits(table: Table, labels: np.ndarray, flagged: np.ndarray, splits: int) -> bool:
    """The bar: our model on the splits of seeds 0..N-1, each trained and scored apart."""
    print()
    evaluation = failure_evaluate_splits(table, labels, rule_mode=flagged, splits=splits)
    for s in evaluation.splits:
        print(
            f"  split {s.seed}: precision {s.precision:.3f}  recall on rule-mode failures "
            f"{s.rule_recall:.3f} ({s.rule_failures})  recall on all failures {s.recall:.3f} "
            f"({s.failures})"
        )
    passed = evaluation.passes()
    print(
        f"{'PASS' if passed else 'FAIL'}: over {splits} stratified splits, mean precision "
        f"{evaluation.mean_precision:.3f} (target >= {AI4I_MIN_PRECISION}), mean recall on "
        f"{'/'.join(RULE_MODES)} failures {evaluation.mean_rule_recall:.3f} (target >= "
        f"{AI4I_MIN_RULE_RECALL}); mean recall on all failures {evaluation.mean_recall:.3f}"
    )
    return passed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--csv", type=Path, default=DEFAULT_CSV)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument(
        "--splits",
        type=lambda raw: max(1, int(raw)),
        default=AI4I_SPLITS,
        help="the bar's stratified splits (seeds 0..N-1); the target is set for 10",
    )
    args = parser.parse_args()

    table, labels = ai4i_table(args.csv)
    train_idx, test_idx = stratified_split(labels, test_share=0.2, seed=args.seed)
    train, held_out = table.take(train_idx), table.take(test_idx)
    train_y, test_y = labels[train_idx], labels[test_idx]
    print(f"{args.csv.name}: {len(labels):,} rows, {int(labels.sum())} failures")
    print(
        f"  stratified split, seed {args.seed}: train {len(train_idx):,} rows "
        f"({int(train_y.sum())} failures), held out {len(test_idx):,} rows "
        f"({int(test_y.sum())} failures)"
    )

    started = time.perf_counter()
    model = failure_model_train(train, train_y, seed=args.seed)
    train_s = time.perf_counter() - started
    ours = failure_metrics(model, held_out, test_y)
    print(
        f"  training: {train_s:.1f} s (5-fold out-of-fold threshold + final booster), "
        f"features: {', '.join(model.features)}"
    )
    print()
    print(summary("imewe failure model (threshold from CV)", ours))
    at_half = metrics_at(test_y, model.probability(held_out), 0.5)
    print(summary("  same model at threshold 0.5", at_half))
    raw = xgboost_raw(train, train_y, held_out, args.seed)
    print(summary("baseline: xgboost, raw signals, threshold 0.5", metrics_at(test_y, raw, 0.5)))
    lr = logistic(train, train_y, held_out)
    print(summary("baseline: logistic regression, threshold 0.5", metrics_at(test_y, lr, 0.5)))

    flags = ai4i_rule_mode_rows(args.csv)
    flagged = flags[test_idx]
    ruled = int((flagged & (test_y == 1)).sum())
    print()
    print(
        f"  held-out failures with an {'/'.join(RULE_MODES)} flag (the generator's rule-based "
        f"modes): {ruled} of {int(test_y.sum())}; a model that predicts exactly those reaches "
        f"recall {ruled / test_y.sum():.3f}"
    )
    ceiling_spread(labels, flags)
    if not across_splits(table, labels, flags, args.splits):
        sys.exit(1)


if __name__ == "__main__":
    main()
