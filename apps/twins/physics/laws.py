"""The four coupled models' equations: thermal (first order, stepped exactly), bearing wear
(ISO 281 with the Arrhenius factor), vibration, insulation (Montsinger) and the health score."""

from __future__ import annotations

import math

from apps.twins.ageing import arrhenius_factor
from apps.twins.physics.machines import MachineSpec

MAX_RUL_H = 100_000.0
VIBRATION_UNACCEPTABLE_MM_S = 4.5  # ISO 10816-1, class I (small machines): zone D from here
MAX_SEED_WEAR = 0.99


def thermal_step(temperature_c: float, steady_c: float, dt_h: float, tau_h: float) -> float:
    """Exact solution of C dT/dt = P - (T - T_amb) / R_th over dt for a constant input."""
    return steady_c + (temperature_c - steady_c) * math.exp(-dt_h / tau_h)


def l10_hours(c_dyn_n: float, load_n: float, rpm: float) -> float:
    """ISO 281 basic rating life of a ball bearing, in hours (infinite when nothing turns it
    or nothing loads it)."""
    if load_n <= 0 or rpm <= 0:
        return math.inf
    return (c_dyn_n / load_n) ** 3 * 1e6 / (60.0 * rpm)


def bearing_load_n(spec: MachineSpec, load_fraction: float) -> float:
    s = spec.bearing_base_share
    return spec.bearing_load_n * (s + (1.0 - s) * load_fraction)


def bearing_life_hours(
    spec: MachineSpec, load_fraction: float, rpm: float, temperature_c: float
) -> float:
    """L10h shortened by the Arrhenius factor of the bearing temperature (never lengthened)."""
    thermal = max(1.0, arrhenius_factor(temperature_c, spec.bearing_activation_ev))
    return l10_hours(spec.bearing_c_dyn_n, bearing_load_n(spec, load_fraction), rpm) / thermal


def montsinger_factor(winding_c: float, class_c: float) -> float:
    """Insulation ageing rate relative to running at the class temperature."""
    return float(2.0 ** ((winding_c - class_c) / 10.0))


def vibration_mm_s(spec: MachineSpec, wear: float) -> float:
    return spec.vibration_base_mm_s + spec.vibration_wear_mm_s * wear**2


def wear_from_vibration(spec: MachineSpec, vibration: float) -> float:
    """The bearing wear a vibration level means, inverting the vibration law, in [0, 0.99]."""
    excess = max(0.0, vibration - spec.vibration_base_mm_s)
    return min(MAX_SEED_WEAR, math.sqrt(excess / spec.vibration_wear_mm_s))


def health_score(wear: float, insulation_used: float, over_temperature_share: float) -> float:
    return 100.0 * (1.0 - wear) * (1.0 - insulation_used) * (1.0 - over_temperature_share / 2.0)


def hours_above(
    start_c: float, steady_c: float, dt_h: float, tau_h: float, limit_c: float
) -> float:
    """Time within a step the exponential spends above `limit_c` (it is monotonic)."""
    end_c = thermal_step(start_c, steady_c, dt_h, tau_h)
    if (start_c > limit_c) == (end_c > limit_c):
        return dt_h if start_c > limit_c else 0.0
    crossing = tau_h * math.log((start_c - steady_c) / (limit_c - steady_c))
    return dt_h - crossing if end_c > limit_c else crossing
