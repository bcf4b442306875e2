"""The mills (recipes) with their mechanics, cooling and parameter ranges, and the checks every
parameter set goes through before a simulation, and the catalog a page builds its sliders and
a new mixing session from."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields
from typing import Any

from apps.twins.mixer.laws import LN2_BOILING_C
from apps.twins.mixer.materials import MATERIALS


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


def _allowed(name: str, bounds: tuple[float, float]) -> str:
    lo, hi = bounds
    return f"{name}: a number from {lo:g} to {hi:g} {PARAMETERS[name]['unit']}"


def _number(value: object) -> float | None:
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


def check_params(params: Params, recipe: Recipe) -> None:
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
