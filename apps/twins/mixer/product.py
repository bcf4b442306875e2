"""One simulated product: the mechanics and heat of a run, its particle size, regime, defect
risk and mixing, and the warnings that say what went wrong in words."""

from __future__ import annotations

import math
from dataclasses import asdict
from typing import Any

from apps.twins.mixer.laws import (
    AGGLOMERATION_BAND_C,
    bond_product_size,
    homogeneity,
    ln2_kg,
    regime_at,
    work_index_at,
)
from apps.twins.mixer.materials import MATERIALS, MaterialProps
from apps.twins.mixer.recipes import RECIPES, MixerError, Params, Recipe, check_params

J_PER_KWH = 3.6e6
AGGLOMERATION_CAP = 2.0
AGGLOMERATION_GROWTH = 2.0  # P80 x (1 + growth x agglomeration)
OVERHEAT_SCALE_C = 50.0
DEFECT_BASE = -4.0  # 1.8 % risk when nothing is wrong
DEFECT_WEIGHTS = {"agglomeration": 4.0, "overheating": 2.0, "wear": 1.5, "under_processing": 3.0}


def outcome(
    material: str,
    recipe: str,
    params: Params,
    *,
    props: MaterialProps | None = None,
    source: str = "defaults",
) -> dict[str, Any]:
    """The simulated product of `material` under `recipe` with `params`. `props` overrides
    the material's catalog constants (e.g. from apps.materials), and `source` says where they
    came from."""
    problems = []
    if material not in MATERIALS:
        problems.append(f"material: one of {', '.join(MATERIALS)}")
    if recipe not in RECIPES:
        problems.append(f"recipe: one of {', '.join(RECIPES)}")
    if problems:
        raise MixerError("; ".join(problems))
    m = props or MATERIALS[material]
    r = RECIPES[recipe]
    check_params(params, r)
    rpm, force, minutes = float(params.rpm), float(params.force_n), float(params.duration_min)
    batch, set_c = float(params.batch_kg), float(params.temperature_c)
    seconds = minutes * 60.0

    speed = 2.0 * math.pi * r.effective_radius_m * rpm / 60.0
    power = r.efficiency * force * speed
    energy_j = power * seconds
    energy_kwh = energy_j / J_PER_KWH
    specific = energy_kwh / (batch / 1000.0)

    heat_capacity = batch * m.specific_heat_j_kg_k + r.mill_heat_capacity_j_k
    tau = heat_capacity / r.cooling_w_k
    rise = power / r.cooling_w_k * (1.0 - math.exp(-seconds / tau))
    product_c = set_c + rise

    work_index = work_index_at(m, product_c)
    ground = bond_product_size(specific, work_index, r.feed_size_um)
    at_limit = ground <= r.grind_limit_um
    size = max(ground, r.grind_limit_um)
    agglomeration = min(
        max((product_c - (m.melting_c - AGGLOMERATION_BAND_C)) / AGGLOMERATION_BAND_C, 0.0),
        AGGLOMERATION_CAP,
    )
    size *= 1.0 + AGGLOMERATION_GROWTH * agglomeration
    regime = regime_at(m, product_c)

    revolutions = rpm * minutes
    mixed = homogeneity(revolutions, r.mixing_revolutions)
    factors = {
        "agglomeration": agglomeration,
        "overheating": rise / OVERHEAT_SCALE_C,
        "wear": max(0.0, math.log(specific / r.wear_energy_kwh_t)),
        "under_processing": 1.0 - mixed,
    }
    z = DEFECT_BASE + sum(DEFECT_WEIGHTS[k] * v for k, v in factors.items())
    risk = 1.0 / (1.0 + math.exp(-z))
    nitrogen = ln2_kg(heat_capacity, set_c, energy_j)

    warnings = _warnings(
        m,
        r,
        regime=regime,
        product_c=product_c,
        rise=rise,
        at_limit=at_limit,
        mixed=mixed,
        specific=specific,
    )
    return {
        "material": material,
        "recipe": recipe,
        "params": asdict(params),
        "particle_size_um": round(size, 3),
        "specific_energy_kwh_t": round(specific, 4),
        "energy_kwh": round(energy_kwh, 6),
        "regime": regime,
        "defect_risk": round(risk, 4),
        "homogeneity": round(mixed, 4),
        "ln2_kg": round(nitrogen, 4),
        "warnings": warnings,
        "factors": {
            "tangential_speed_m_s": round(speed, 4),
            "power_w": round(power, 3),
            "revolutions": round(revolutions, 1),
            "product_temperature_c": round(product_c, 2),
            "temperature_rise_c": round(rise, 2),
            "effective_work_index_kwh_t": round(work_index, 2),
            **{f"defect_{k}": round(v, 4) for k, v in factors.items()},
        },
        "constants": {"source": source, "material": asdict(m), "recipe": asdict(r)},
    }


def _warnings(
    m: MaterialProps,
    r: Recipe,
    *,
    regime: str,
    product_c: float,
    rise: float,
    at_limit: bool,
    mixed: float,
    specific: float,
) -> list[str]:
    said = []
    name = m.label
    if rise >= 10:
        said.append(
            f"the batch heats by about {rise:.0f} C from the milling energy "
            f"(product at {product_c:.0f} C)"
        )
    if regime == "agglomerating":
        where = "above" if product_c >= m.melting_c else f"within {AGGLOMERATION_BAND_C:g} C of"
        said.append(
            f"{where} {name}'s melting point ({m.melting_c:g} C): particles soften and "
            "agglomerate, size and defect risk up"
        )
    elif m.glass_transition_c is not None and product_c >= m.glass_transition_c:
        said.append(
            f"above {name}'s glass transition ({m.glass_transition_c:g} C): ductile, "
            "poor size reduction"
        )
    elif regime == "ductile" and m.ductile_brittle_c is not None:
        said.append(
            f"above {name}'s ductile-brittle transition ({m.ductile_brittle_c:g} C): tough, "
            f"poor size reduction; mill below {m.ductile_brittle_c:g} C for brittle fracture"
        )
    elif regime == "ductile" and m.kind == "metal":
        said.append(
            f"{name} has no ductile-brittle transition: particles flatten and cold-weld "
            "rather than fracture, and cooling helps only a little"
        )
    if at_limit and regime != "agglomerating":
        said.append(
            f"at the {r.label.lower()}'s grind limit ({r.grind_limit_um:g} um): more energy "
            "only heats and wears"
        )
    if specific > r.wear_energy_kwh_t:
        said.append(
            f"{specific:,.0f} kWh/t is above the {r.label.lower()}'s wear threshold "
            f"({r.wear_energy_kwh_t:,.0f} kWh/t): media wear contaminates the batch"
        )
    if mixed < 0.8:
        said.append(f"under-processed: mixing index {mixed:.2f}; run longer or faster")
    return said
