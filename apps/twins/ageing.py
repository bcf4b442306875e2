"""4D ageing of a component (bearing, spindle, gear, seal) under operating conditions: three
laws combined over a horizon of up to 43,800 h (5 years).

- Paris law, fatigue crack growth per load cycle: da/dN = C (dK)^m with dK = Y dS sqrt(pi a),
  above the threshold dK_th (below it a crack does not grow).
  For a constant stress range it has a closed form (m != 2), used here exactly:
  a(N) = [a0^(1 - m/2) + (1 - m/2) C (Y dS sqrt(pi))^m N]^(1 / (1 - m/2)).
- Arrhenius thermal acceleration: AF = exp(Ea / k (1/T_ref - 1/T)), k = 8.617333262e-5 eV/K;
  hot running ages a component faster (lubricant, elastomers, fatigue).
- Weibull failure probability: F(t) = 1 - exp(-(t_eff / eta)^beta), with t_eff the running hours
  times the duty cycle, the thermal factor and the load-life factor (load / rated load)^p.

The failure probability at a time is the larger of the Weibull probability and 1 once the crack
reaches its critical length. Pure functions (numpy), no Django.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from typing import Any

import numpy as np

BOLTZMANN_EV = 8.617333262e-5  # eV/K
T_REF_K = 313.15  # 40 C: the temperature the rated lives are quoted at
MAX_HORIZON_H = 43_800.0


@dataclass(frozen=True)
class Constants:
    """Material and design constants of a component kind. Stress in MPa, lengths in mm,
    C in mm/cycle / (MPa sqrt(mm))^m."""

    paris_c: float
    paris_m: float
    threshold_dk: float  # stress-intensity range below which a crack does not grow
    geometry_y: float
    initial_crack_mm: float
    critical_crack_mm: float
    section_mm2: float  # load-bearing cross-section: stress range = load / section
    activation_ev: float
    weibull_beta: float
    weibull_eta_h: float  # characteristic life at rated load, 40 C, full duty
    rated_load_n: float
    load_life_exponent: float
    zones: dict[str, float] = field(default_factory=dict)  # zone -> stress concentration Kt


# Defaults per component (bearing steel 52100, 4140 shafts, case-hardened gears, NBR seals);
# a materials catalog entry overrides them (apps.materials), and the output says which.
DEFAULTS: dict[str, Constants] = {
    "bearing": Constants(
        paris_c=3.0e-13,
        paris_m=3.0,
        threshold_dk=150.0,
        geometry_y=1.12,
        initial_crack_mm=0.02,
        critical_crack_mm=1.5,
        section_mm2=40.0,
        activation_ev=0.7,
        weibull_beta=1.5,
        weibull_eta_h=30_000.0,
        rated_load_n=5_000.0,
        load_life_exponent=3.0,
        zones={"inner race": 1.6, "outer race": 1.3, "rolling elements": 1.8, "cage": 0.7},
    ),
    "spindle": Constants(
        paris_c=4.0e-13,
        paris_m=3.0,
        threshold_dk=160.0,
        geometry_y=1.0,
        initial_crack_mm=0.05,
        critical_crack_mm=3.0,
        section_mm2=120.0,
        activation_ev=0.6,
        weibull_beta=2.0,
        weibull_eta_h=40_000.0,
        rated_load_n=8_000.0,
        load_life_exponent=3.0,
        zones={"front bearing": 1.7, "rear bearing": 1.4, "shaft": 1.0, "taper": 1.5},
    ),
    "gear": Constants(
        paris_c=2.0e-13,
        paris_m=3.3,
        threshold_dk=150.0,
        geometry_y=1.2,
        initial_crack_mm=0.03,
        critical_crack_mm=2.0,
        section_mm2=60.0,
        activation_ev=0.5,
        weibull_beta=2.5,
        weibull_eta_h=50_000.0,
        rated_load_n=10_000.0,
        load_life_exponent=3.33,
        zones={"tooth root": 2.0, "flank": 1.5, "hub": 0.8},
    ),
    "seal": Constants(
        paris_c=1.0e-9,
        paris_m=2.5,
        threshold_dk=5.0,
        geometry_y=1.0,
        initial_crack_mm=0.05,
        critical_crack_mm=1.0,
        section_mm2=15.0,
        activation_ev=0.9,
        weibull_beta=1.2,
        weibull_eta_h=20_000.0,
        rated_load_n=500.0,
        load_life_exponent=1.5,
        zones={"lip": 1.8, "body": 1.0, "spring": 1.2},
    ),
}


class AgeingError(ValueError):
    """Conditions outside what the model accepts."""


@dataclass(frozen=True)
class Conditions:
    avg_rpm: float
    load_n: float
    temperature_c: float
    duty_cycle: float  # share of the time running, 0-1
    horizon_h: float = MAX_HORIZON_H
    threshold: float = 0.5  # failure probability that counts as the predicted failure
    steps: int = 200

    def check(self) -> None:
        problems = []
        if not 0 < self.avg_rpm <= 200_000:
            problems.append("avg_rpm: above 0 and at most 200,000")
        if not 0 < self.load_n <= 1e7:
            problems.append("load_n: above 0 and at most 10,000,000 N")
        if not -273.15 < self.temperature_c <= 400:
            problems.append("temperature_c: above absolute zero and at most 400 C")
        if not 0 < self.duty_cycle <= 1:
            problems.append("duty_cycle: above 0 and at most 1")
        if not 0 < self.horizon_h <= MAX_HORIZON_H:
            problems.append(f"horizon_h: above 0 and at most {MAX_HORIZON_H:,.0f} h (5 years)")
        if not 0 < self.threshold < 1:
            problems.append("threshold: a probability between 0 and 1")
        if not 10 <= self.steps <= 2000:
            problems.append("steps: from 10 to 2,000")
        if problems:
            raise AgeingError("; ".join(problems))


# --- The three laws ------------------------------------------------------------------------------


def paris_crack_length(cycles: np.ndarray, c: Constants, stress_range_mpa: float) -> np.ndarray:
    """Crack length (mm) after `cycles`, closed form of da/dN = C (Y dS sqrt(pi a))^m; it
    becomes infinite (unstable growth) where the bracket reaches zero."""
    e = 1.0 - c.paris_m / 2.0
    if abs(e) < 1e-12:  # m = 2: exponential growth
        rate = c.paris_c * (c.geometry_y * stress_range_mpa) ** 2 * math.pi
        return c.initial_crack_mm * np.exp(rate * cycles)
    k = c.paris_c * (c.geometry_y * stress_range_mpa * math.sqrt(math.pi)) ** c.paris_m
    base = c.initial_crack_mm**e + e * k * cycles
    alive = base > 0
    a = np.full(np.shape(base), np.inf)
    a[alive] = np.power(base[alive], 1.0 / e)
    return a


def arrhenius_factor(temperature_c: float, activation_ev: float, t_ref_k: float = T_REF_K) -> float:
    t = temperature_c + 273.15
    return math.exp(activation_ev / BOLTZMANN_EV * (1.0 / t_ref_k - 1.0 / t))


def weibull_failure_probability(t_eff_h: np.ndarray, beta: float, eta_h: float) -> np.ndarray:
    return np.asarray(1.0 - np.exp(-np.power(np.maximum(t_eff_h, 0.0) / eta_h, beta)))


# --- The simulation ----------------------------------------------------------------------------


def _curves(hours: np.ndarray, c: Constants, conditions: Conditions) -> dict[str, Any]:
    """Crack length, failure probability and wear over `hours` for one set of constants."""
    thermal = arrhenius_factor(conditions.temperature_c, c.activation_ev)
    load_factor = (conditions.load_n / c.rated_load_n) ** c.load_life_exponent
    stress_range = conditions.load_n / c.section_mm2  # MPa
    # cycles at the running speed, thermally accelerated (hot material grows cracks faster)
    cycles = conditions.avg_rpm * 60.0 * hours * conditions.duty_cycle * thermal
    start_dk = c.geometry_y * stress_range * math.sqrt(math.pi * c.initial_crack_mm)
    if start_dk > c.threshold_dk:
        crack = paris_crack_length(cycles, c, stress_range)
    else:  # below the threshold stress intensity the crack does not grow
        crack = np.full(hours.shape, c.initial_crack_mm)
    t_eff = hours * conditions.duty_cycle * thermal * load_factor
    weibull = weibull_failure_probability(t_eff, c.weibull_beta, c.weibull_eta_h)
    broken = crack >= c.critical_crack_mm
    probability = np.where(broken, 1.0, weibull)
    crack_shown = np.minimum(crack, c.critical_crack_mm)
    crack_share = (crack_shown - c.initial_crack_mm) / (c.critical_crack_mm - c.initial_crack_mm)
    wear = 100.0 * np.clip(np.maximum(crack_share, weibull), 0.0, 1.0)
    return {
        "thermal": thermal,
        "load_factor": load_factor,
        "stress_range": stress_range,
        "crack": crack_shown,
        "broken": broken,
        "probability": probability,
        "wear": wear,
    }


def _crossing(
    hours: np.ndarray, probability: np.ndarray, broken: np.ndarray, threshold: float
) -> float | None:
    """The first time the failure probability reaches `threshold`, interpolated between steps."""
    crossed = np.nonzero(probability >= threshold)[0]
    if not crossed.size:
        return None
    i = int(crossed[0])
    if i == 0 or broken[i]:
        return float(hours[i])
    p0, p1 = probability[i - 1], probability[i]
    return float(hours[i - 1] + (hours[i] - hours[i - 1]) * ((threshold - p0) / (p1 - p0)))


def simulate(
    component: str,
    conditions: Conditions,
    constants: Constants | None = None,
    *,
    source: str = "defaults",
) -> dict[str, Any]:
    """The trajectory, the predicted failure time and the stress heat-map."""
    if component not in DEFAULTS:
        raise AgeingError(f"component: one of {', '.join(DEFAULTS)}.")
    conditions.check()
    c = constants or DEFAULTS[component]
    hours = np.linspace(0.0, conditions.horizon_h, conditions.steps + 1)
    curves = _curves(hours, c, conditions)
    thermal, load_factor = curves["thermal"], curves["load_factor"]
    stress_range = curves["stress_range"]
    wear, crack_shown, probability = curves["wear"], curves["crack"], curves["probability"]
    failure_h = _crossing(hours, probability, curves["broken"], conditions.threshold)
    peak = max(c.zones.values())
    heatmap = [
        {
            "zone": zone,
            "stress_mpa": round(
                stress_range * kt * (1 + 0.002 * (conditions.temperature_c - 40)), 2
            ),
            "relative": round(kt / peak, 3),
        }
        for zone, kt in sorted(c.zones.items(), key=lambda z: -z[1])
    ]
    return {
        "component": component,
        "conditions": asdict(conditions),
        "constants": {**asdict(c), "source": source},
        "factors": {
            "arrhenius": round(thermal, 5),
            "load_life": round(load_factor, 5),
            "stress_range_mpa": round(stress_range, 3),
        },
        "trajectory": [
            {
                "time_hours": round(float(t), 3),
                "wear_percent": round(float(w), 3),
                "crack_length_mm": round(float(a), 6),
                "failure_probability": round(float(p), 6),
            }
            for t, w, a, p in zip(hours, wear, crack_shown, probability, strict=True)
        ],
        "predicted_failure_hours": None if failure_h is None else round(failure_h, 2),
        "threshold": conditions.threshold,
        "heatmap": heatmap,
    }


def trajectory_csv(result: dict[str, Any]) -> str:
    lines = ["time_hours,wear_percent,crack_length_mm,failure_probability"]
    lines += [
        f"{p['time_hours']},{p['wear_percent']},{p['crack_length_mm']},{p['failure_probability']}"
        for p in result["trajectory"]
    ]
    return "\n".join(lines) + "\n"


# --- Uncertainty ---------------------------------------------------------------------------------

# Scatter of the constants between nominally equal parts, as log-normal sigmas: fatigue crack
# growth rates scatter by a factor of ~2-3 between specimens, bearing lives by ~20-30%.
SCATTER = {"paris_c": 0.35, "weibull_eta_h": 0.25, "initial_crack_mm": 0.3}


def simulate_uncertainty(
    component: str,
    conditions: Conditions,
    constants: Constants | None = None,
    *,
    samples: int = 200,
    seed: int = 7,
    progress: Callable[[float], None] | None = None,
) -> dict[str, Any]:
    """Monte Carlo over the scatter of the constants: the failure-time percentiles and a band
    (10th-90th percentile) of the failure probability over time. Seeded, so repeatable."""
    if component not in DEFAULTS:
        raise AgeingError(f"component: one of {', '.join(DEFAULTS)}.")
    if not 10 <= samples <= 5000:
        raise AgeingError("samples: from 10 to 5,000")
    conditions.check()
    c = constants or DEFAULTS[component]
    rng = np.random.default_rng(seed)
    hours = np.linspace(0.0, conditions.horizon_h, conditions.steps + 1)
    curves = np.empty((samples, hours.size))
    failures: list[float] = []
    report_every = max(1, samples // 50)
    for i in range(samples):
        varied = replace(
            c,
            **{
                name: getattr(c, name) * float(rng.lognormal(0.0, s)) for name, s in SCATTER.items()
            },
        )
        one = _curves(hours, varied, conditions)
        curves[i] = one["probability"]
        crossing = _crossing(hours, one["probability"], one["broken"], conditions.threshold)
        if crossing is not None:
            failures.append(crossing)
        if progress is not None and ((i + 1) % report_every == 0 or i + 1 == samples):
            progress((i + 1) / samples)
    low, mid, high = np.percentile(curves, [10, 50, 90], axis=0)
    failed_share = len(failures) / samples

    def percentile(q: float) -> float | None:
        # a percentile of the failure time exists only if that share of samples failed
        if failed_share < q / 100:
            return None
        ordered = sorted(failures) + [math.inf] * (samples - len(failures))
        value = float(np.percentile(ordered, q, method="inverted_cdf"))
        return round(value, 2) if math.isfinite(value) else None

    return {
        "samples": samples,
        "seed": seed,
        "scatter": SCATTER,
        "failed_within_horizon": round(failed_share, 4),
        "failure_hours_p10": percentile(10),
        "failure_hours_p50": percentile(50),
        "failure_hours_p90": percentile(90),
        "band": [
            {
                "time_hours": round(float(t), 3),
                "p10": round(float(a), 6),
                "p50": round(float(b), 6),
                "p90": round(float(d), 6),
            }
            for t, a, b, d in zip(hours, low, mid, high, strict=True)
        ],
    }
