"""How far the failure classifier's probabilities can be trusted: its reliability on held-out
rows, and the interval of one probability.

The interval of a probability p is the 90% Clopper-Pearson interval of the failure rate
observed on the held-out rows the model scored in the same bin as p ("of the 52 held-out
processes scored 90-100%, 49 failed: 85-98%"). Chosen over the alternatives because it is
measured on rows the model never saw and says what an operator asks of the number (how often
does a prediction like this come true), where a bootstrap ensemble's spread would only measure
how much the model's training varies, and could be narrow around a badly calibrated value.
Clopper-Pearson (exact binomial, from the Beta distribution) because bins at the ends hold 0
or only failures, where the normal approximation gives an empty interval; it is conservative,
never narrower than the rows can support. 90% (5-95%) as the remaining life's interval.

Bins have fixed edges, dense near 0 where most rows of an imbalanced problem fall
(EDGES), merged with their upper neighbour until each holds MIN_BIN_ROWS held-out rows (the
last with its lower one), so no interval rests on a handful of rows. The report stored with the
model (`calibration_report`) holds the bins with their intervals, the Brier score and the
baseline's (always predicting the held-out failure rate), and the expected calibration error.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from scipy.stats import beta

EDGES = (0.0, 0.02, 0.05, 0.1, 0.2, 0.3, 0.5, 0.7, 0.9, 1.0)
MIN_BIN_ROWS = 20
LEVEL = 0.9


@dataclass(frozen=True)
class Bin:
    """Held-out rows scored in [start, end) (the last bin includes 1): how many, how many
    failed, their mean predicted probability, the observed failure rate and its interval."""

    start: float
    end: float
    rows: int
    failures: int
    predicted: float
    observed: float
    low: float
    high: float

    def holds(self, probability: float) -> bool:
        return self.start <= probability < self.end or (self.end >= 1.0 and probability >= 1.0)

    def as_dict(self) -> dict[str, Any]:
        return {k: round(v, 6) if isinstance(v, float) else v for k, v in asdict(self).items()}

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> Bin:
        return cls(**{name: raw[name] for name in cls.__dataclass_fields__})


def clopper_pearson(failures: int, rows: int, *, level: float = LEVEL) -> tuple[float, float]:
    """The exact two-sided `level` interval of a failure rate seen as `failures` of `rows`."""
    if rows <= 0 or not 0 <= failures <= rows:
        raise ValueError(f"{failures} failures of {rows} rows")
    tail = (1.0 - level) / 2
    low = 0.0 if failures == 0 else float(beta.ppf(tail, failures, rows - failures + 1))
    high = 1.0 if failures == rows else float(beta.ppf(1 - tail, failures + 1, rows - failures))
    return low, high


def _check(probabilities: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    p = np.asarray(probabilities, dtype=np.float64)
    y = np.asarray(labels)
    if p.shape != y.shape or p.ndim != 1 or not len(p):
        raise ValueError(f"{p.size} probabilities for {y.size} labels")
    if not np.isin(y, (0, 1)).all():
        raise ValueError("labels must be 0 (no failure) or 1 (failure)")
    if np.isnan(p).any() or (p < 0).any() or (p > 1).any():
        raise ValueError("probabilities must lie in [0, 1]")
    return p, y.astype(np.int64)


def reliability_bins(
    probabilities: np.ndarray,
    labels: np.ndarray,
    *,
    edges: tuple[float, ...] = EDGES,
    min_rows: int = MIN_BIN_ROWS,
    level: float = LEVEL,
) -> list[Bin]:
    """The held-out rows in bins of `edges`, each merged with the next until it holds
    `min_rows` (a short last bin joins the one before it); with fewer rows in all, one bin."""
    p, y = _check(probabilities, labels)
    if min_rows < 1:
        raise ValueError("a bin needs at least one row")
    index = np.clip(np.searchsorted(edges, p, side="right") - 1, 0, len(edges) - 2)
    groups: list[list[int]] = []  # runs of fixed bins, merged
    current: list[int] = []
    for i in range(len(edges) - 1):
        current.append(i)
        if int(np.isin(index, current).sum()) >= min_rows:
            groups.append(current)
            current = []
    if current:
        if groups:
            groups[-1].extend(current)
        else:
            groups.append(current)
    bins = []
    for group in groups:
        inside = np.isin(index, group)
        rows, failures = int(inside.sum()), int(y[inside].sum())
        low, high = clopper_pearson(failures, rows, level=level)
        bins.append(
            Bin(
                start=float(edges[group[0]]),
                end=float(edges[group[-1] + 1]),
                rows=rows,
                failures=failures,
                predicted=float(p[inside].mean()),
                observed=failures / rows,
                low=low,
                high=high,
            )
        )
    return bins


def bin_for(probability: float, bins: list[Bin]) -> Bin:
    """The bin `probability` falls in."""
    for b in bins:
        if b.holds(probability):
            return b
    raise ValueError(f"no bin holds {probability}")


def brier_score(probabilities: np.ndarray, labels: np.ndarray) -> float:
    p, y = _check(probabilities, labels)
    return float(np.mean((p - y) ** 2))


def calibration_report(
    probabilities: np.ndarray, labels: np.ndarray, *, min_rows: int = MIN_BIN_ROWS
) -> dict[str, Any]:
    """What the registry stores of a failure model's held-out reliability."""
    p, y = _check(probabilities, labels)
    bins = reliability_bins(p, y, min_rows=min_rows)
    rate = float(y.mean())
    brier = brier_score(p, y)
    baseline = rate * (1 - rate)  # always predicting the held-out failure rate
    ece = sum(b.rows * abs(b.predicted - b.observed) for b in bins) / len(p)
    return {
        "brier": round(brier, 6),
        "brier_baseline": round(baseline, 6),
        "brier_skill": round(1 - brier / baseline, 4) if baseline > 0 else None,
        "expected_calibration_error": round(float(ece), 6),
        "level": LEVEL,
        "interval": "Clopper-Pearson interval of the held-out failure rate in the bin",
        "min_bin_rows": min_rows,
        "rows": int(len(p)),
        "bins": [b.as_dict() for b in bins],
    }
