"""The ageing laws against their closed forms and independent computations."""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import pytest

from apps.twins.ageing import (
    BOLTZMANN_EV,
    DEFAULTS,
    AgeingError,
    Conditions,
    arrhenius_factor,
    paris_crack_length,
    simulate,
    trajectory_csv,
    weibull_failure_probability,
)

BEARING = DEFAULTS["bearing"]


def test_paris_law_matches_a_step_by_step_integration():
    """Integrating da/dN = C (Y dS sqrt(pi a))^m cycle block by cycle block (RK4) lands where
    the closed form says."""
    c, stress = BEARING, 120.0
    total, blocks = 2.0e6, 20_000
    dn = total / blocks

    def rate(a: float) -> float:
        return c.paris_c * (c.geometry_y * stress * math.sqrt(math.pi * a)) ** c.paris_m

    a = c.initial_crack_mm
    for _ in range(blocks):
        k1 = rate(a)
        k2 = rate(a + dn * k1 / 2)
        k3 = rate(a + dn * k2 / 2)
        k4 = rate(a + dn * k3)
        a += dn * (k1 + 2 * k2 + 2 * k3 + k4) / 6
    closed = paris_crack_length(np.array([total]), c, stress)[0]
    assert closed == pytest.approx(a, rel=1e-6)
    assert closed > 5 * c.initial_crack_mm


def test_paris_law_with_m_2_is_exponential_and_growth_runs_away():
    c = replace(BEARING, paris_m=2.0)
    n = np.array([0.0, 1e6])
    a = paris_crack_length(n, c, 100.0)
    rate = c.paris_c * (c.geometry_y * 100.0) ** 2 * math.pi
    assert a[1] == pytest.approx(c.initial_crack_mm * math.exp(rate * 1e6))
    assert math.isinf(paris_crack_length(np.array([1e30]), BEARING, 500.0)[0])


def test_arrhenius_factor():
    assert arrhenius_factor(40.0, 0.7) == pytest.approx(1.0)
    expected = math.exp(0.7 / BOLTZMANN_EV * (1 / 313.15 - 1 / 353.15))  # 80 C vs 40 C
    assert arrhenius_factor(80.0, 0.7) == pytest.approx(expected)
    assert arrhenius_factor(20.0, 0.7) < 1


def test_weibull_probability():
    assert weibull_failure_probability(np.array([0.0]), 1.5, 1000.0)[0] == 0
    at_eta = weibull_failure_probability(np.array([1000.0]), 1.5, 1000.0)[0]
    assert at_eta == pytest.approx(1 - math.exp(-1))
    # beta = 1 is the exponential distribution
    assert weibull_failure_probability(np.array([500.0]), 1.0, 1000.0)[0] == pytest.approx(
        1 - math.exp(-0.5)
    )


def test_the_predicted_failure_time_is_where_weibull_crosses_the_threshold():
    """A light load keeps the crack far from critical: failure comes from the Weibull law,
    at t = eta (-ln(1 - p))^(1/beta) / (duty x thermal x load factor)."""
    conditions = Conditions(
        avg_rpm=100, load_n=4000, temperature_c=80, duty_cycle=0.8, threshold=0.5, steps=2000
    )
    result = simulate("bearing", conditions)
    thermal = arrhenius_factor(80, BEARING.activation_ev)
    load = (4000 / BEARING.rated_load_n) ** BEARING.load_life_exponent
    expected = BEARING.weibull_eta_h * (-math.log(0.5)) ** (1 / BEARING.weibull_beta)
    expected /= 0.8 * thermal * load
    assert expected < conditions.horizon_h
    assert result["predicted_failure_hours"] == pytest.approx(expected, rel=0.01)
    points = result["trajectory"]
    assert (
        len(points) == 2001 and points[0]["time_hours"] == 0 and points[-1]["time_hours"] == 43800
    )
    probabilities = [p["failure_probability"] for p in points]
    assert probabilities == sorted(probabilities)  # never gets younger
    assert result["constants"]["source"] == "defaults"
    assert [z["zone"] for z in result["heatmap"]][0] == "rolling elements"  # highest Kt
    assert trajectory_csv(result).splitlines()[0] == (
        "time_hours,wear_percent,crack_length_mm,failure_probability"
    )


def test_hotter_and_heavier_fails_sooner_and_a_crack_can_end_it():
    mild = simulate(
        "spindle", Conditions(avg_rpm=8000, load_n=7000, temperature_c=40, duty_cycle=0.4)
    )
    hot = simulate(
        "spindle", Conditions(avg_rpm=8000, load_n=7000, temperature_c=85, duty_cycle=0.4)
    )
    assert mild["predicted_failure_hours"] is None  # outlives the 5-year horizon
    assert hot["predicted_failure_hours"] < 43800
    cracked = simulate(
        "seal", Conditions(avg_rpm=20000, load_n=400, temperature_c=90, duty_cycle=1)
    )
    last = cracked["trajectory"][-1]
    assert last["failure_probability"] == 1 and last["wear_percent"] == 100
    assert last["crack_length_mm"] == DEFAULTS["seal"].critical_crack_mm


def test_bad_conditions_are_named():
    with pytest.raises(AgeingError, match="horizon_h: above 0 and at most 43,800 h"):
        simulate(
            "gear", Conditions(avg_rpm=10, load_n=10, temperature_c=20, duty_cycle=1, horizon_h=5e4)
        )
    with pytest.raises(AgeingError, match="duty_cycle.*threshold"):
        simulate(
            "gear", Conditions(avg_rpm=10, load_n=10, temperature_c=20, duty_cycle=2, threshold=1)
        )
    with pytest.raises(AgeingError, match="component: one of bearing, spindle, gear, seal"):
        simulate("wheel", Conditions(avg_rpm=10, load_n=10, temperature_c=20, duty_cycle=1))
