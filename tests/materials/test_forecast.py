"""The forecasting formulas on series worked out by hand."""

from __future__ import annotations

import math
from datetime import date, timedelta

import numpy as np
import pytest

from apps.materials.forecast import daily_usage, days_until_stockout, reorder_point, usage_stats

# Daily usage 2, 4, 4, 4, 5, 5, 7, 9: mean 5, squared deviations 9+1+1+1+0+0+4+16 = 32, so the
# sample variance is 32/7 (std 2.13809) and the population one 32/8 = 4 (std 2).
SERIES = [2, 4, 4, 4, 5, 5, 7, 9]


def test_reorder_point_uses_the_sample_standard_deviation():
    # lead time 4 days: 5 x 4 + 1.65 x sqrt(32/7) x sqrt(4) = 20 + 1.65 x 2.13809 x 2
    expected = 20 + 1.65 * math.sqrt(32 / 7) * 2
    assert expected == pytest.approx(27.0557, abs=1e-4)
    assert reorder_point(SERIES, 4) == pytest.approx(expected)
    # not the population deviation: that would give 20 + 1.65 x 2 x 2 = 26.6
    assert reorder_point(SERIES, 4) != pytest.approx(26.6)


def test_reorder_point_of_a_steady_or_empty_history():
    assert reorder_point([3, 3, 3], 9) == pytest.approx(27.0)  # no variation: mean x lead time
    assert reorder_point([], 7) == 0.0
    assert reorder_point([5], 4) == pytest.approx(20.0)  # one day: no deviation to speak of
    with pytest.raises(ValueError):
        reorder_point(SERIES, -1)


def test_daily_usage_fills_days_without_usage_with_zero_and_adds_up_a_day():
    end = date(2026, 3, 10)
    rows = [
        (end, 1.5),
        (end, 0.5),  # the same day adds up
        (end - timedelta(days=2), 4.0),
        (end - timedelta(days=5), 9.0),  # outside a 5-day window
        (end + timedelta(days=1), 7.0),  # after it
    ]
    series = daily_usage(rows, end=end, days=5)
    assert series.tolist() == [0.0, 0.0, 4.0, 0.0, 2.0]
    mean, std = usage_stats(series)
    assert mean == pytest.approx(1.2)
    assert std == pytest.approx(float(np.std([0, 0, 4, 0, 2], ddof=1)))


def test_days_until_stockout():
    assert days_until_stockout(10, SERIES) == pytest.approx(2.0)  # 10 / mean 5
    assert days_until_stockout(10, [0, 0, 0]) is None
    assert days_until_stockout(-3, [1, 1]) == 0.0
