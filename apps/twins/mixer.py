"""Spatial mixer: what milling and mixing a material under a recipe would give, computed at once
from the process parameters. It runs on every slider move, so it is closed-form arithmetic
(no time steps, a few microseconds a call). The laws used:

- Energy from the mechanics. The charge moves at the tangential speed v = 2 pi r n / 60 at the
  recipe's effective radius r (m) and n rpm, under the force F (N). The power that reaches the
  batch is P = eta F v, with eta the recipe's efficiency (the share of the drive power that
  reaches the charge). The energy is E = P t, and the specific energy is E / m in kWh/t.
- Bond's third law of comminution: E = 10 W_i (1/sqrt(P80) - 1/sqrt(F80)), with E in kWh/t, W_i
  the Bond work index (kWh/t), and F80 / P80 the sizes (um) that 80 % of the feed / product pass.
  Solved for P80, which is never finer than the recipe's grind limit.
- Temperature changes how a material breaks: the effective work index is W_i m(T) / m(20 C).
  A polymer below its brittle point fractures brittle, which is why polymers are milled
  cryogenically. The brittle point is the glass transition Tg, or the lower brittle-ductile
  transition of a toughened polymer (ABS's rubber phase, about -80 C). Above the brittle point
  the polymer deforms ductile: m rises by the material's ductile factor. Above Tg it is rubbery
  and m doubles again. Each step is logistic over ~15 C, because real transitions are spread
  out: Tg by DMA spans 20-30 C.
  FCC metals (aluminium, austenitic 316L) have no ductile-brittle transition; cold only helps a
  little (less recovery and cold welding, which is why aluminium is cryomilled): m falls linearly
  to 0.85 at -196 C. Ferritic steels (4140) turn brittle below their transition (about -60 C),
  by their ductile factor.
- Milling heat. The batch runs above the coolant (held at the set temperature) by a first-order
  lag, dT = (P / UA) (1 - exp(-t / tau)), with tau = (m c_p + C_mill) / UA. UA is the recipe's
  cooling conductance, and C_mill is the heat capacity of its vessel and media. This product
  temperature, not the set one, decides the regime.
- Agglomeration. Within 25 C of the melting point, particles soften and stick; for amorphous
  polymers this is the flow point, and for thermosets the decomposition onset. The regime is
  then "agglomerating" and P80 grows by (1 + 2a), where a = (T - (T_m - 25)) / 25, capped at 2.
- Defect risk: 1 / (1 + exp(-z)), with z = -4 + 4 agglomeration + 2 over-heating
  (dT / 50 C) + 1.5 wear (ln of the specific energy over the recipe's wear threshold, when
  above it: media wear contaminates the batch) + 3 under-processing (1 - homogeneity).
- Homogeneity (mixing index) 1 - exp(-N / N_mix) for N = n t revolutions, with N_mix the
  recipe's revolutions to 63 % mixed.
- Liquid nitrogen, below ambient (20 C) only: it removes the heat Q = (m c_p + C_mill)
  (20 - T) + E and takes the latent heat 199 kJ/kg. This ignores the heat leaking in from the room
  (more LN2) and the cold gas's sensible heat (less); c_p is taken at room temperature, and
  it falls when cold, so this is an upper estimate of the sensible part.

Polymers and metals have no standard Bond test. Their indices here are effective values at
20 C, estimated from their toughness relative to minerals (quartz is ~13 kWh/t); a materials
catalog entry can override them, and the output says which constants it used.
Pure functions, no Django.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields
from typing import Any

AMBIENT_C = 20.0
LN2_LATENT_J_KG = 199_000.0  # latent heat of vaporisation of nitrogen at 1 atm
LN2_BOILING_C = -196.0
J_PER_KWH = 3.6e6
TRANSITION_WIDTH_C = 15.0  # spread of the logistic brittle/ductile and glass steps
RUBBERY_FACTOR = 2.0  # extra rise of the work index above Tg (rubbery, absorbs the impacts)
METAL_CRYO_GAIN = 0.15  # fall of a metal's work index at -196 C, linear from 20 C
AGGLOMERATION_BAND_C = 25.0  # particles start to stick this far below the melting point
AGGLOMERATION_CAP = 2.0
AGGLOMERATION_GROWTH = 2.0  # P80 x (1 + growth x agglomeration)
OVERHEAT_SCALE_C = 50.0
DEFECT_BASE = -4.0  # 1.8 % risk when nothing is wrong
DEFECT_WEIGHTS = {"agglomeration": 4.0, "overheating": 2.0, "wear": 1.5, "under_processing": 3.0}


@dataclass(frozen=True)
class MaterialProps:
    label: str
    kind: str  # "polymer", "composite" or "metal"
    density_kg_m3: float
    bond_work_index_kwh_t: float  # effective, at 20 C
    glass_transition_c: float | None
    melting_c: float  # or flow point (amorphous polymers), decomposition onset (thermosets)
    ductile_brittle_c: float | None  # a brittle-ductile transition below Tg, or a metal's DBTT
    specific_heat_j_kg_k: float
    ductile_factor: float  # how many times the work index rises from brittle to ductile
    source: str

    @property
    def brittle_point_c(self) -> float | None:
        """Below this temperature the material fractures brittle (None: it never does)."""
        if self.ductile_brittle_c is not None:
            return self.ductile_brittle_c
        return self.glass_transition_c


MATERIALS: dict[str, MaterialProps] = {
    "PLA": MaterialProps(
        label="PLA",
        kind="polymer",
        density_kg_m3=1240.0,
        bond_work_index_kwh_t=200.0,
        glass_transition_c=60.0,
        melting_c=170.0,
        ductile_brittle_c=None,
        specific_heat_j_kg_k=1800.0,
        ductile_factor=5.0,
        source="Semi-crystalline grades melt at 150-180 C; glassy and brittle below Tg.",
    ),
    "ABS": MaterialProps(
        label="ABS",
        kind="polymer",
        density_kg_m3=1050.0,
        bond_work_index_kwh_t=900.0,
        glass_transition_c=105.0,
        melting_c=220.0,
        ductile_brittle_c=-80.0,
        specific_heat_j_kg_k=1400.0,
        ductile_factor=5.0,
        source="Amorphous: 220 C is its flow point. Its polybutadiene phase (Tg about -80 C) "
        "keeps it tough until that is frozen.",
    ),
    "PETG": MaterialProps(
        label="PETG",
        kind="polymer",
        density_kg_m3=1270.0,
        bond_work_index_kwh_t=800.0,
        glass_transition_c=80.0,
        melting_c=220.0,
        ductile_brittle_c=-40.0,
        specific_heat_j_kg_k=1150.0,
        ductile_factor=5.0,
        source="Amorphous copolyester: 220 C is its flow point. The brittle-ductile transition "
        "is approximate (notched impact).",
    ),
    "PA12": MaterialProps(
        label="PA12 (nylon powder)",
        kind="polymer",
        density_kg_m3=1010.0,
        bond_work_index_kwh_t=1000.0,
        glass_transition_c=45.0,
        melting_c=178.0,
        ductile_brittle_c=-40.0,
        specific_heat_j_kg_k=1700.0,
        ductile_factor=5.0,
        source="Dry Tg; notched impact toughness drops near -40 C; SLS grade melts at 178 C.",
    ),
    "PEEK": MaterialProps(
        label="PEEK",
        kind="polymer",
        density_kg_m3=1300.0,
        bond_work_index_kwh_t=1200.0,
        glass_transition_c=143.0,
        melting_c=343.0,
        ductile_brittle_c=-60.0,
        specific_heat_j_kg_k=1340.0,
        ductile_factor=5.0,
        source="Tough at room temperature. The brittle point is approximate (its beta "
        "relaxation); it is milled cryogenically.",
    ),
    "CFRP": MaterialProps(
        label="CFRP (carbon fibre / epoxy)",
        kind="composite",
        density_kg_m3=1550.0,
        bond_work_index_kwh_t=300.0,
        glass_transition_c=150.0,
        melting_c=300.0,
        ductile_brittle_c=None,
        specific_heat_j_kg_k=1000.0,
        ductile_factor=2.0,
        source="Cured epoxy Tg is 120-180 C. A thermoset does not melt: 300 C is where the "
        "matrix starts to decompose. Brittle fibres keep the ductile factor small.",
    ),
    "aluminium_6061": MaterialProps(
        label="Aluminium 6061",
        kind="metal",
        density_kg_m3=2700.0,
        bond_work_index_kwh_t=600.0,
        glass_transition_c=None,
        melting_c=582.0,
        ductile_brittle_c=None,
        specific_heat_j_kg_k=896.0,
        ductile_factor=1.0,
        source="FCC: there is no ductile-brittle transition. 582 C is the solidus.",
    ),
    "steel_316L": MaterialProps(
        label="Stainless steel 316L",
        kind="metal",
        density_kg_m3=8000.0,
        bond_work_index_kwh_t=1200.0,
        glass_transition_c=None,
        melting_c=1375.0,
        ductile_brittle_c=None,
        specific_heat_j_kg_k=500.0,
        ductile_factor=1.0,
        source="Austenitic (FCC): there is no ductile-brittle transition, which is why it is "
        "used at cryogenic temperatures. 1375 C is the solidus.",
    ),
    "steel_4140": MaterialProps(
        label="Steel 4140 (ferritic)",
        kind="metal",
        density_kg_m3=7850.0,
        bond_work_index_kwh_t=1200.0,
        glass_transition_c=None,
        melting_c=1416.0,
        ductile_brittle_c=-60.0,
        specific_heat_j_kg_k=475.0,
        ductile_factor=4.0,
        source="Quenched and tempered (BCC). The Charpy transition is -40 to -80 C, depending "
        "on the temper. 1416 C is the solidus.",
    ),
}


class MixerError(ValueError):
    """A choice or parameter outside what the model accepts."""


@dataclass(frozen=True)
class Params:
    rpm: float
    temperature_c: float
    force_n: float
    duration_min: float
    batch_kg: float = 1.0


PARAMETERS: dict[str, dict[str, str]] = {
    "rpm": {"label": "Speed", "unit": "rpm"},
    "temperature_c": {"label": "Temperature", "unit": "C"},
    "force_n": {"label": "Force", "unit": "N"},
    "duration_min": {"label": "Duration", "unit": "min"},
    "batch_kg": {"label": "Batch", "unit": "kg"},
}


@dataclass(frozen=True)
class Recipe:
    label: str
    description: str
    effective_radius_m: float  # where the charge is worked: tangential speed = 2 pi r n / 60
    efficiency: float  # share of the drive power F v that reaches the charge
    rpm_range: tuple[float, float]
    temperature_range_c: tuple[float, float]
    force_range_n: tuple[float, float]
    duration_range_min: tuple[float, float]
    batch_range_kg: tuple[float, float]
    grind_limit_um: float
    feed_size_um: float  # F80
    mixing_revolutions: float  # revolutions to 63 % mixed
    wear_energy_kwh_t: float  # above this, media and vessel wear contaminates the batch
    cooling_w_k: float  # conductance from the batch to the coolant at the set temperature
    mill_heat_capacity_j_k: float  # vessel and grinding media
    defaults: Params

    def ranges(self) -> dict[str, tuple[float, float]]:
        return {
            "rpm": self.rpm_range,
            "temperature_c": self.temperature_range_c,
            "force_n": self.force_range_n,
            "duration_min": self.duration_range_min,
            "batch_kg": self.batch_range_kg,
        }


RECIPES: dict[str, Recipe] = {
    "ball_mill": Recipe(
        label="Ball mill",
        description="A drum of 0.3 m tumbles steel or ceramic balls: gentle impact and "
        "attrition, scalable. The speed stays below the critical 42.3 / sqrt(D) = 77 rpm, "
        "where the charge would centrifuge.",
        effective_radius_m=0.15,
        efficiency=0.3,
        rpm_range=(10.0, 75.0),
        temperature_range_c=(-20.0, 300.0),
        force_range_n=(50.0, 1000.0),
        duration_range_min=(1.0, 1440.0),
        batch_range_kg=(0.1, 5.0),
        grind_limit_um=20.0,
        feed_size_um=3000.0,
        mixing_revolutions=3000.0,
        wear_energy_kwh_t=500.0,
        cooling_w_k=5.0,
        mill_heat_capacity_j_k=5000.0,
        defaults=Params(
            rpm=55.0, temperature_c=20.0, force_n=200.0, duration_min=120.0, batch_kg=1.0
        ),
    ),
    "planetary_mill": Recipe(
        label="Planetary ball mill",
        description="Jars spin on a rotating sun wheel. High-energy impacts reach sub-micron "
        "sizes, and the jars heat up quickly.",
        effective_radius_m=0.07,
        efficiency=0.4,
        rpm_range=(100.0, 650.0),
        temperature_range_c=(-20.0, 300.0),
        force_range_n=(20.0, 300.0),
        duration_range_min=(1.0, 600.0),
        batch_range_kg=(0.01, 0.5),
        grind_limit_um=1.0,
        feed_size_um=3000.0,
        mixing_revolutions=2000.0,
        wear_energy_kwh_t=2000.0,
        cooling_w_k=4.0,
        mill_heat_capacity_j_k=1000.0,
        defaults=Params(
            rpm=400.0, temperature_c=20.0, force_n=100.0, duration_min=30.0, batch_kg=0.1
        ),
    ),
    "cryo_mill": Recipe(
        label="Cryogenic mill",
        description="A vibratory mill whose jar sits in a liquid-nitrogen jacket. 'rpm' is the "
        "oscillation rate (5-30 Hz), and the radius is the stroke. The jacket can also run "
        "warm, to compare.",
        effective_radius_m=0.01,
        efficiency=0.5,
        rpm_range=(300.0, 1800.0),
        temperature_range_c=(LN2_BOILING_C, 100.0),
        force_range_n=(10.0, 200.0),
        duration_range_min=(0.5, 60.0),
        batch_range_kg=(0.001, 0.05),
        grind_limit_um=5.0,
        feed_size_um=3000.0,
        mixing_revolutions=5000.0,
        wear_energy_kwh_t=3000.0,
        cooling_w_k=20.0,
        mill_heat_capacity_j_k=300.0,
        defaults=Params(
            rpm=1500.0, temperature_c=LN2_BOILING_C, force_n=80.0, duration_min=10.0, batch_kg=0.02
        ),
    ),
    "high_shear": Recipe(
        label="High-shear mixer",
        description="A fast impeller mixes and de-agglomerates. It does little size reduction, "
        "and friction heats the batch at high speed.",
        effective_radius_m=0.1,
        efficiency=0.3,
        rpm_range=(300.0, 3000.0),
        temperature_range_c=(-20.0, 300.0),
        force_range_n=(5.0, 100.0),
        duration_range_min=(0.5, 120.0),
        batch_range_kg=(0.1, 10.0),
        grind_limit_um=100.0,
        feed_size_um=1000.0,
        mixing_revolutions=2000.0,
        wear_energy_kwh_t=300.0,
        cooling_w_k=10.0,
        mill_heat_capacity_j_k=3000.0,
        defaults=Params(
            rpm=1500.0, temperature_c=20.0, force_n=20.0, duration_min=10.0, batch_kg=2.0
        ),
    ),
}

_PARAM_NAMES = tuple(f.name for f in fields(Params))


# --- Input ---------------------------------------------------------------------------------------


def _allowed(name: str, bounds: tuple[float, float]) -> str:
    lo, hi = bounds
    return f"{name}: a number from {lo:g} to {hi:g} {PARAMETERS[name]['unit']}"


def _number(value: Any) -> float | None:
    """The value as a finite float, or None if it is not one (bools are not numbers here)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        number = float(value)
    elif isinstance(value, str):
        try:
            number = float(value.strip())
        except ValueError:
            return None
    else:
        return None
    return number if math.isfinite(number) else None


def _recipe(name: str) -> Recipe:
    if name not in RECIPES:
        raise MixerError(f"recipe: one of {', '.join(RECIPES)}")
    return RECIPES[name]


def _check(params: Params, recipe: Recipe) -> None:
    problems = []
    for name, bounds in recipe.ranges().items():
        number = _number(getattr(params, name))
        if number is None or not bounds[0] <= number <= bounds[1]:
            problems.append(_allowed(name, bounds))
    if problems:
        raise MixerError("; ".join(problems))


def params_from(raw: Mapping[str, Any], recipe: str) -> Params:
    """Parameters from JSON-like input: numbers or numeric strings, each within the recipe's
    range. Missing ones come from the recipe's defaults. An explicit null or "" is not a number.
    Every bad or unknown field is named in one error."""
    r = _recipe(recipe)
    if not isinstance(raw, Mapping):
        raise MixerError(f"params: an object with {', '.join(_PARAM_NAMES)}")
    problems = [
        f"{key}: not a parameter (allowed: {', '.join(_PARAM_NAMES)})"
        for key in raw
        if key not in _PARAM_NAMES
    ]
    values: dict[str, float] = {}
    for name, bounds in r.ranges().items():
        if name not in raw:
            values[name] = float(getattr(r.defaults, name))
            continue
        number = _number(raw[name])
        if number is None or not bounds[0] <= number <= bounds[1]:
            problems.append(_allowed(name, bounds))
        else:
            values[name] = number
    if problems:
        raise MixerError("; ".join(problems))
    return Params(**values)


# --- The laws ------------------------------------------------------------------------------------


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


# --- The outcome ---------------------------------------------------------------------------------


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
    _check(params, r)
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


def catalog() -> dict[str, Any]:
    """The materials and recipes, with every parameter's range, unit and default, for a page
    to build its sliders."""
    return {
        "parameters": {name: dict(info) for name, info in PARAMETERS.items()},
        "materials": {key: asdict(m) for key, m in MATERIALS.items()},
        "recipes": {
            key: {
                "label": r.label,
                "description": r.description,
                "effective_radius_m": r.effective_radius_m,
                "efficiency": r.efficiency,
                "grind_limit_um": r.grind_limit_um,
                "feed_size_um": r.feed_size_um,
                "ranges": {
                    name: {
                        "min": lo,
                        "max": hi,
                        "default": getattr(r.defaults, name),
                        **PARAMETERS[name],
                    }
                    for name, (lo, hi) in r.ranges().items()
                },
            }
            for key, r in RECIPES.items()
        },
    }


def session_defaults() -> dict[str, Any]:
    """The document a new mixing session starts with: the first material and recipe, with the
    recipe's default parameters."""
    recipe = next(iter(RECIPES))
    return {
        "material": next(iter(MATERIALS)),
        "recipe": recipe,
        "params": asdict(RECIPES[recipe].defaults),
    }
