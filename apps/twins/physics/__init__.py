"""Physics scenarios for a fabrication node's digital twin: over 1 to 8,760 h, with a fixed time
step, four coupled models of the machine's drive (a mill's spindle, a printer's fans and
steppers, a robot's joint servos...) give a time series, a health score and a remaining life.

- Thermal, lumped first order: C dT/dt = P_heat - (T - T_amb) / R_th, P_heat = loss fraction x
  electrical power. Stepped with its exact discrete solution for a constant input,
  T(t + dt) = T_ss + (T(t) - T_ss) exp(-dt / tau), T_ss = T_amb + R_th P_heat, tau = R_th C.
- Bearing wear, ISO 281 basic rating life of a ball bearing: L10h = (C_dyn / P)^3 10^6 / (60 n),
  P = P_rated (s + (1 - s) load) (s: the share present unloaded: preload, weight, belt tension),
  divided by the Arrhenius factor of the bearing temperature (apps.twins.ageing; 40 C reference,
  never below 1: cooler running does not extend the rating). Wear is Miner's sum of dt / L10h_eff
  over the running time (1 = rating life used). Vibration: v = v_base + k wear^2 (mm/s RMS);
  ISO 10816 calls 4.5 mm/s unacceptable for a small machine.
- Insulation, Montsinger's rule: life used per hour = 2^((T_w - T_class) / 10) / L_ins (life
  halves per 10 C above the insulation class temperature); the winding runs hotter than the body
  by its rated rise x load^2 (I^2 R) while running and at body temperature while idle.
- Health = 100 (1 - wear) (1 - insulation used) (1 - over-temperature share / 2), the share being
  the part of the simulated time the body spent above the machine's limit. It reaches 0 exactly
  when bearing or insulation life is used up; the remaining useful life is the time until the
  first of the two does at the end-of-run rates (None beyond 100,000 h).

Duty cycle: each step the machine runs `duty` of the time at the load and idles the rest. Heat
input is the step's average (the thermal time constants, 0.5-2 h, are long against a job's
on/off rhythm); wear and insulation ageing add the running and idle parts. Rates within a step
use its mean temperature, exact for the exponential. Pure functions (numpy), no Django.

The package: `machines` (each kind's drive and spec_for), `scenarios` (what a run goes through
and where it starts from the machine's telemetry), `laws` (the four models' equations),
`simulation` (run, its checks and its series) and `explanation` (what drives a run's results
and how two runs compare, in words).
"""

from apps.twins.physics.explanation import compare_note
from apps.twins.physics.laws import (
    MAX_RUL_H,
    VIBRATION_UNACCEPTABLE_MM_S,
    bearing_life_hours,
    bearing_load_n,
    health_score,
    l10_hours,
    montsinger_factor,
    thermal_step,
    vibration_mm_s,
    wear_from_vibration,
)
from apps.twins.physics.machines import DEFAULTS, MachineSpec, running_power_kw, spec_for
from apps.twins.physics.scenarios import (
    SCENARIOS,
    SEED_MINUTES,
    SEED_MINUTES_RANGE,
    SEED_RANGES,
    Scenario,
    Seed,
)
from apps.twins.physics.simulation import (
    MAX_HOURS,
    MAX_STEP_MINUTES,
    MAX_STEPS,
    MIN_HOURS,
    SERIES_FIELDS,
    check,
    run,
    series_csv,
)
from apps.twins.physics.validation import PhysicsError

__all__ = [
    "DEFAULTS",
    "MAX_HOURS",
    "MAX_RUL_H",
    "MAX_STEPS",
    "MAX_STEP_MINUTES",
    "MIN_HOURS",
    "SCENARIOS",
    "SEED_MINUTES",
    "SEED_MINUTES_RANGE",
    "SEED_RANGES",
    "SERIES_FIELDS",
    "VIBRATION_UNACCEPTABLE_MM_S",
    "MachineSpec",
    "PhysicsError",
    "Scenario",
    "Seed",
    "bearing_life_hours",
    "bearing_load_n",
    "check",
    "compare_note",
    "health_score",
    "l10_hours",
    "montsinger_factor",
    "run",
    "running_power_kw",
    "series_csv",
    "spec_for",
    "thermal_step",
    "vibration_mm_s",
    "wear_from_vibration",
]
