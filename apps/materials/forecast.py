"""Predictive reordering, as plain numbers (no database): a daily usage series, the reorder
point for a 95 % service level, and the days left until stock runs out."""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from datetime import date, timedelta

import numpy as np

# z for a 95 % one-sided service level (the figure; the exact quantile is 1.6449)
SERVICE_Z = 1.65


def daily_usage(rows: Iterable[tuple[date, float]], *, end: date, days: int) -> np.ndarray:
    """Usage per day over the `days` days ending with `end` (inclusive), oldest first. Rows are
    (day, amount); several rows on one day add up, days without a row are 0, rows outside the
    window are ignored."""
    if days < 1:
        raise ValueError("days must be at least 1")
    start = end - timedelta(days=days - 1)
    series = np.zeros(days, dtype=float)
    for day, amount in rows:
        if start <= day <= end:
            series[(day - start).days] += float(amount)
    return series


def usage_stats(daily: Sequence[float] | np.ndarray) -> tuple[float, float]:
    """Mean and *sample* standard deviation (ddof=1: the series is a sample of the demand
    process) of daily usage; the deviation is 0 for fewer than two days."""
    values = np.asarray(daily, dtype=float)
    if values.size == 0:
        return 0.0, 0.0
    mean = float(values.mean())
    std = float(values.std(ddof=1)) if values.size > 1 else 0.0
    return mean, std


def reorder_point(daily: Sequence[float] | np.ndarray, lead_time_days: float) -> float:
    """mean daily usage x lead time + 1.65 x std of daily usage x sqrt(lead time).

    The standard deviation is the sample one (ddof=1), see `usage_stats`. With L the lead time
    in days, d the mean and s the deviation: ROP = d*L + 1.65*s*sqrt(L)."""
    if lead_time_days < 0:
        raise ValueError("lead time cannot be negative")
    mean, std = usage_stats(daily)
    return mean * lead_time_days + SERVICE_Z * std * math.sqrt(lead_time_days)


def days_until_stockout(quantity: float, daily: Sequence[float] | np.ndarray) -> float | None:
    """How many days `quantity` lasts at the mean daily usage; None without usage."""
    mean, _ = usage_stats(daily)
    if mean <= 0:
        return None
    return max(float(quantity), 0.0) / mean
