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
Pure functions, no Django. The package: `materials` (the catalog's constants), `recipes` (the
mills, their parameters, the input checks and the catalog a page builds its sliders and a new
session from), `laws` (Bond's law and the temperature effects) and `product` (one simulated
outcome, with its warnings).
"""

from apps.twins.mixer.laws import (
    AMBIENT_C,
    bond_product_size,
    bond_specific_energy,
    homogeneity,
    ln2_kg,
    regime_at,
    work_index_at,
)
from apps.twins.mixer.materials import MATERIALS, MaterialProps
from apps.twins.mixer.product import outcome
from apps.twins.mixer.recipes import (
    PARAMETERS,
    RECIPES,
    MixerError,
    Params,
    Recipe,
    catalog,
    params_from,
    session_defaults,
)

__all__ = [
    "AMBIENT_C",
    "MATERIALS",
    "PARAMETERS",
    "RECIPES",
    "MaterialProps",
    "MixerError",
    "Params",
    "Recipe",
    "bond_product_size",
    "bond_specific_energy",
    "catalog",
    "homogeneity",
    "ln2_kg",
    "outcome",
    "params_from",
    "regime_at",
    "session_defaults",
    "work_index_at",
]
