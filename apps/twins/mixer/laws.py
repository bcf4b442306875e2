"""The laws of the mixer: Bond's law of comminution, how temperature changes how a material
breaks (brittle, ductile, rubbery, agglomerating), mixing and the liquid nitrogen it takes."""

from __future__ import annotations

import math

from apps.twins.mixer.materials import MaterialProps

AMBIENT_C = 20.0
LN2_LATENT_J_KG = 199_000.0  # latent heat of vaporisation of nitrogen at 1 atm
LN2_BOILING_C = -196.0
TRANSITION_WIDTH_C = 15.0  # spread of the logistic brittle/ductile and glass steps
RUBBERY_FACTOR = 2.0  # extra rise of the work index above Tg (rubbery, absorbs the impacts)
METAL_CRYO_GAIN = 0.15  # fall of a metal's work index at -196 C, linear from 20 C
AGGLOMERATION_BAND_C = 25.0  # particles start to stick this far below the melting point


def bond_specific_energy(work_index_kwh_t: float, feed_um: float, product_um: float) -> float:
    """Bond's law: the kWh/t to grind from F80 `feed_um` to P80 `product_um`."""
    return 10.0 * work_index_kwh_t * (1.0 / math.sqrt(product_um) - 1.0 / math.sqrt(feed_um))


def bond_product_size(
    specific_energy_kwh_t: float, work_index_kwh_t: float, feed_um: float
) -> float:
    """Bond's law solved for P80 (um) after `specific_energy_kwh_t` from F80 `feed_um`."""
    inverse_root = specific_energy_kwh_t / (10.0 * work_index_kwh_t) + 1.0 / math.sqrt(feed_um)
    return 1.0 / inverse_root**2


def _step(temperature_c: float, at_c: float) -> float:
    """0 well below `at_c`, 1 well above, logistic over TRANSITION_WIDTH_C."""
    x = (temperature_c - at_c) / TRANSITION_WIDTH_C
    if x < -40:  # exp would overflow; the step is 0 there anyway
        return 0.0
    return 1.0 / (1.0 + math.exp(-x))


def _toughness(m: MaterialProps, temperature_c: float) -> float:
    """m(T): 1 for the brittle state, rising across the transitions."""
    factor = 1.0
    brittle_point = m.brittle_point_c
    if brittle_point is not None:
        factor *= 1.0 + (m.ductile_factor - 1.0) * _step(temperature_c, brittle_point)
    if m.glass_transition_c is not None:
        factor *= 1.0 + (RUBBERY_FACTOR - 1.0) * _step(temperature_c, m.glass_transition_c)
    if m.kind == "metal":
        cold = min(max((AMBIENT_C - temperature_c) / (AMBIENT_C - LN2_BOILING_C), 0.0), 1.0)
        factor *= 1.0 - METAL_CRYO_GAIN * cold
    return factor


def work_index_at(m: MaterialProps, temperature_c: float) -> float:
    """The effective Bond work index (kWh/t) at `temperature_c`; the catalog's is at 20 C."""
    return m.bond_work_index_kwh_t * _toughness(m, temperature_c) / _toughness(m, AMBIENT_C)


def regime_at(m: MaterialProps, temperature_c: float) -> str:
    if temperature_c >= m.melting_c - AGGLOMERATION_BAND_C:
        return "agglomerating"
    brittle_point = m.brittle_point_c
    if brittle_point is not None and temperature_c < brittle_point:
        return "brittle"
    return "ductile"


def homogeneity(revolutions: float, mixing_revolutions: float) -> float:
    return 1.0 - math.exp(-max(revolutions, 0.0) / mixing_revolutions)


def ln2_kg(heat_capacity_j_k: float, temperature_c: float, milling_heat_j: float) -> float:
    """Liquid nitrogen to cool the batch and mill from ambient and take the milling heat."""
    if temperature_c >= AMBIENT_C:
        return 0.0
    heat = heat_capacity_j_k * (AMBIENT_C - temperature_c) + milling_heat_j
    return heat / LN2_LATENT_J_KG
