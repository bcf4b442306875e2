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
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from typing import Any

import numpy as np

from apps.twins.ageing import T_REF_K, arrhenius_factor

MIN_HOURS = 1.0
MAX_HOURS = 8_760.0
MAX_STEPS = 50_000
MAX_STEP_MINUTES = 1_440.0
MAX_POINTS = 500
MAX_RUL_H = 100_000.0
VIBRATION_UNACCEPTABLE_MM_S = 4.5  # ISO 10816-1, class I (small machines): zone D from here
MAX_SEED_WEAR = 0.99
MAX_SEED_LOAD = 1.5  # a seed power above 1.5 x rated measures more than this machine
SEED_TEMPERATURE_MARGIN_K = 60.0  # above limit + this, a reading is a process temperature
# Scenarios of a node start from the load profile of this many minutes of its telemetry (the
# seed_minutes parameter, within these bounds).
SEED_MINUTES = 60.0
SEED_MINUTES_RANGE = (5.0, 1440.0)
# A reading is taken running (under load) above this share of rated power, and above the kind's
# idle draw (an inspection cell idles at half its rating): the maintenance scoring's share.
RUNNING_SHARE = 0.25
RUNNING_ABOVE_IDLE = 0.05
# The physical ranges telemetry accepts (apps.telemetry.models.SIGNAL_RANGES): outside, an error.
SEED_RANGES: dict[str, tuple[float, float]] = {
    "temperature_c": (-60.0, 2000.0),
    "vibration_mm_s": (0.0, 500.0),
    "power_kw": (0.0, 10_000.0),
    "spindle_rpm": (0.0, 100_000.0),
}
SERIES_FIELDS = (
    "time_hours",
    "temperature_c",
    "vibration_mm_s",
    "bearing_wear_percent",
    "insulation_used_percent",
    "load_fraction",
    "power_kw",
    "health_score",
)


class PhysicsError(ValueError):
    """Inputs outside what the models accept: every bad field as "field: what is allowed"."""


def _number(value: object) -> float | None:
    """`value` as a finite float, or None when it is not one (bools are not numbers here)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    number = float(value)
    return number if math.isfinite(number) else None


def _within(value: object, low: float, high: float, *, low_inclusive: bool = False) -> bool:
    number = _number(value)
    if number is None:
        return False
    above = number >= low if low_inclusive else number > low
    return above and number <= high


@dataclass(frozen=True)
class MachineSpec:
    """The drive of a machine kind: power in kW, R_th in K/kW, C in kJ/K (so R_th C is in
    seconds), bearing loads in N, temperatures in C, vibration in mm/s RMS."""

    kind: str
    drive: str  # what the speed and the bearing stand for
    rated_power_kw: float
    rated_rpm: float
    idle_power_share: float  # electrical power idling, as a share of rated
    loss_fraction: float  # share of the electrical power heating the modelled body
    thermal_resistance_k_per_kw: float
    heat_capacity_kj_per_k: float
    bearing_c_dyn_n: float
    bearing_load_n: float  # equivalent load P at 100% load
    bearing_base_share: float  # share of that load present unloaded
    vibration_base_mm_s: float
    vibration_wear_mm_s: float  # k in v = v_base + k wear^2
    insulation_class_c: float
    winding_rise_k: float  # winding above body at 100% load
    temperature_limit_c: float
    bearing_activation_ev: float = 0.7  # as apps.twins.ageing's bearing
    insulation_life_h: float = 20_000.0  # at the class temperature (IEEE 117 basis)

    @property
    def time_constant_h(self) -> float:
        return self.thermal_resistance_k_per_kw * self.heat_capacity_kj_per_k / 3600.0

    def problems(self) -> list[str]:
        limits = [  # field, low, high, unit, low included
            ("rated_power_kw", 0, 10_000, " kW", False),
            ("rated_rpm", 0, 100_000, " rpm", False),
            ("idle_power_share", 0, 1, "", True),
            ("loss_fraction", 0, 1, "", False),
            ("thermal_resistance_k_per_kw", 0, 100_000, " K/kW", False),
            ("heat_capacity_kj_per_k", 0, 10_000_000, " kJ/K", False),
            ("bearing_c_dyn_n", 0, 10_000_000, " N", False),
            ("bearing_load_n", 0, 10_000_000, " N", False),
            ("bearing_base_share", 0, 1, "", True),
            ("vibration_base_mm_s", 0, 50, " mm/s", True),
            ("vibration_wear_mm_s", 0, 500, " mm/s", False),
            ("insulation_class_c", 90, 250, " C", True),
            ("winding_rise_k", 0, 200, " K", True),
            ("temperature_limit_c", 0, 400, " C", False),
            ("bearing_activation_ev", 0, 3, " eV", True),
            ("insulation_life_h", 0, 10_000_000, " h", False),
        ]
        problems = [] if self.kind in DEFAULTS else [f"kind: one of {', '.join(DEFAULTS)}"]
        for name, low, high, unit, included in limits:
            if not _within(getattr(self, name), low, high, low_inclusive=included):
                allowed = f"from {low:,}" if included else f"above {low:,},"
                problems.append(
                    f"{name}: {allowed} {'to' if included else 'at most'} {high:,}{unit}"
                )
        return problems


# Defaults per FabricationNode kind. A printer has no spindle: its fans and steppers (small
# deep-groove bearings, belt tension always on them, class B windings) are what wears; machine
# tools model their spindle (angular-contact bearings, class F motor). L10h at rated load and
# speed: about 30,000 h for the printers, 20,000-65,000 h for the machine tools.
DRIVES = {
    "fdm_printer": "fans and steppers",
    "sla_printer": "Z-axis stepper and cooling fan",
    "sls_printer": "recoater drive and scanner fans",
    "cnc_mill": "spindle",
    "cnc_lathe": "spindle",
    "laser_cutter": "gantry drives and exhaust fan",
    "robot_cell": "joint servo motors",
    "inspection": "probe-head and stage drives",
}
# rated kW, rpm, temperature rise (K) at rated load, time constant (h), idle share, loss
# fraction, C_dyn (N), P (N) at rated load, its unloaded share, v_base and k (mm/s), insulation
# class (C), winding rise (K) at rated load, temperature limit (C)
_ROWS: dict[str, tuple[float, ...]] = {
    "fdm_printer": (0.35, 4000, 30, 0.5, 0.15, 0.3, 1300, 65, 0.5, 0.6, 5, 130, 50, 60),
    "sla_printer": (0.25, 1500, 25, 0.75, 0.2, 0.4, 1300, 75, 0.5, 0.3, 5, 130, 40, 55),
    "sls_printer": (6.0, 3000, 30, 2.0, 0.3, 0.25, 5000, 300, 0.4, 0.8, 5, 155, 60, 60),
    "cnc_mill": (7.5, 12000, 35, 1.0, 0.08, 0.15, 30000, 1200, 0.35, 1.2, 7, 155, 70, 60),
    "cnc_lathe": (11.0, 4000, 35, 1.5, 0.08, 0.15, 60000, 3000, 0.35, 1.4, 7, 155, 70, 60),
    "laser_cutter": (4.0, 3000, 25, 0.75, 0.15, 0.35, 8000, 350, 0.5, 0.8, 5, 155, 50, 55),
    "robot_cell": (3.0, 2000, 30, 1.0, 0.2, 0.25, 7000, 500, 0.3, 0.8, 6, 155, 60, 60),
    "inspection": (0.8, 1500, 20, 1.0, 0.5, 0.5, 2000, 110, 0.6, 0.3, 4, 130, 30, 50),
}


def _spec(kind: str, row: tuple[float, ...]) -> MachineSpec:
    """A kind's spec; R_th and C follow from its design temperature rise and time constant."""
    power, rpm, rise, tau_h, idle, loss, c_dyn, p, base, v_base, k, ins, winding, limit = row
    r_th = rise / (loss * power)
    return MachineSpec(
        kind=kind,
        drive=DRIVES[kind],
        rated_power_kw=power,
        rated_rpm=rpm,
        idle_power_share=idle,
        loss_fraction=loss,
        thermal_resistance_k_per_kw=round(r_th, 4),
        heat_capacity_kj_per_k=round(tau_h * 3600.0 / r_th, 4),
        bearing_c_dyn_n=c_dyn,
        bearing_load_n=p,
        bearing_base_share=base,
        vibration_base_mm_s=v_base,
        vibration_wear_mm_s=k,
        insulation_class_c=ins,
        winding_rise_k=winding,
        temperature_limit_c=limit,
    )


DEFAULTS: dict[str, MachineSpec] = {kind: _spec(kind, row) for kind, row in _ROWS.items()}


def running_power_kw(spec: MachineSpec) -> float:
    """The electrical power above which a reading is taken running, not idling: the load a
    scenario's duty cycle runs at (its idle share is the scenario's own)."""
    return spec.rated_power_kw * max(RUNNING_SHARE, spec.idle_power_share + RUNNING_ABOVE_IDLE)


def spec_for(kind: str, rated_power_kw: float | None = None) -> MachineSpec:
    """The kind's defaults; a node's own rated power scales the heat path with it (a bigger
    machine has a bigger cooler: same temperature rise at rated load, same time constant)."""
    problems = [] if kind in DEFAULTS else [f"kind: one of {', '.join(DEFAULTS)}"]
    if rated_power_kw is not None and not _within(rated_power_kw, 0, 10_000):
        problems.append("rated_power_kw: above 0, at most 10,000 kW")
    if problems:
        raise PhysicsError("; ".join(problems))
    spec = DEFAULTS[kind]
    if rated_power_kw is None:
        return spec
    scale = float(rated_power_kw) / spec.rated_power_kw
    return replace(
        spec,
        rated_power_kw=float(rated_power_kw),
        thermal_resistance_k_per_kw=spec.thermal_resistance_k_per_kw / scale,
        heat_capacity_kj_per_k=spec.heat_capacity_kj_per_k * scale,
    )


@dataclass(frozen=True)
class Scenario:
    label: str
    description: str
    load_fraction: float  # running load when the seed gives no power
    duty_cycle: float  # share of each step spent running
    ambient_c: float
    cooling_factor: float  # multiplies R_th: 1 is healthy cooling
    initial_wear: float  # bearing wear when the seed gives no vibration
    # The scenario's stress: a seed below these is raised to them (the seed says where the
    # machine is now, the scenario what it goes through).
    min_load_fraction: float = 0.0
    min_initial_wear: float = 0.0


SCENARIOS: dict[str, Scenario] = {
    "normal": Scenario(
        label="Normal operation",
        description="About 60% load, 60% duty in a 22 C room; healthy cooling and bearings.",
        load_fraction=0.6,
        duty_cycle=0.6,
        ambient_c=22.0,
        cooling_factor=1.0,
        initial_wear=0.0,
    ),
    "heavy_load": Scenario(
        label="Heavy load",
        description="110% of rated load, 95% duty: pushed past its rating around the clock.",
        load_fraction=1.1,
        duty_cycle=0.95,
        ambient_c=22.0,
        cooling_factor=1.0,
        initial_wear=0.0,
        min_load_fraction=1.1,
    ),
    "overheated": Scenario(
        label="Overheated",
        description="Normal load in a 40 C room with clogged filters: heat path 1.8 times worse.",
        load_fraction=0.6,
        duty_cycle=0.6,
        ambient_c=40.0,
        cooling_factor=1.8,
        initial_wear=0.0,
    ),
    "worn_bearings": Scenario(
        label="Worn bearings",
        description="Normal load on bearings that have used 60% of their rating life.",
        load_fraction=0.6,
        duty_cycle=0.6,
        ambient_c=22.0,
        cooling_factor=1.0,
        initial_wear=0.6,
        min_initial_wear=0.6,
    ),
}


@dataclass(frozen=True)
class Seed:
    """The machine now, from its latest telemetry when present."""

    temperature_c: float | None = None
    vibration_mm_s: float | None = None
    power_kw: float | None = None
    spindle_rpm: float | None = None
    source: str = "defaults"

    def problems(self) -> list[str]:
        problems = []
        for name, (low, high) in SEED_RANGES.items():
            value = getattr(self, name)
            if value is not None and not _within(value, low, high, low_inclusive=True):
                problems.append(f"seed.{name}: a number from {low:,g} to {high:,g}, or none")
        return problems


# --- The laws ------------------------------------------------------------------------------------


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


def _hours_above(
    start_c: float, steady_c: float, dt_h: float, tau_h: float, limit_c: float
) -> float:
    """Time within a step the exponential spends above `limit_c` (it is monotonic)."""
    end_c = thermal_step(start_c, steady_c, dt_h, tau_h)
    if (start_c > limit_c) == (end_c > limit_c):
        return dt_h if start_c > limit_c else 0.0
    crossing = tau_h * math.log((start_c - steady_c) / (limit_c - steady_c))
    return dt_h - crossing if end_c > limit_c else crossing


# --- The simulation ------------------------------------------------------------------------------


def _run_problems(
    spec: MachineSpec, scenario: str, hours: float, seed: Seed, step_minutes: float
) -> list[str]:
    problems = spec.problems()
    if scenario not in SCENARIOS:
        problems.append(f"scenario: one of {', '.join(SCENARIOS)}")
    hours_ok = _within(hours, MIN_HOURS, MAX_HOURS, low_inclusive=True)
    if not hours_ok:
        problems.append(f"hours: from {MIN_HOURS:g} to {MAX_HOURS:,g}")
    step_ok = _within(step_minutes, 0, MAX_STEP_MINUTES)
    if not step_ok:
        problems.append(f"step_minutes: above 0, at most {MAX_STEP_MINUTES:,g} (a day)")
    if hours_ok and step_ok and _steps(hours, step_minutes) > MAX_STEPS:
        shortest = math.ceil(hours * 60.0 / MAX_STEPS * 100.0) / 100.0
        problems.append(
            f"step_minutes: at least {shortest:g} for {hours:,g} h (at most {MAX_STEPS:,} "
            "steps), raise step_minutes"
        )
    problems += seed.problems()
    return problems


def check(
    spec: MachineSpec,
    scenario: str,
    hours: float,
    seed: Seed | None = None,
    *,
    step_minutes: float = 10.0,
) -> None:
    """Raises PhysicsError naming every bad field of a run, without running it."""
    problems = _run_problems(spec, scenario, hours, seed or Seed(), step_minutes)
    if problems:
        raise PhysicsError("; ".join(problems))


def _steps(hours: float, step_minutes: float) -> int:
    # the step shrinks a little so that a whole number of them ends exactly at `hours`
    return max(1, math.ceil(hours * 60.0 / step_minutes - 1e-9))


@dataclass(frozen=True)
class _Start:
    temperature_c: float
    wear: float
    load_fraction: float
    rpm: float
    seed_values: dict[str, float]  # the seed's values that were used, by Seed field
    notes: list[str]


def _start(spec: MachineSpec, sc: Scenario, seed: Seed) -> _Start:
    """The starting state and running conditions: the seed's values where it has usable ones,
    the scenario's otherwise; the notes say what was ignored or raised."""
    notes: list[str] = []
    used: dict[str, float] = {}
    hottest = spec.temperature_limit_c + SEED_TEMPERATURE_MARGIN_K
    if seed.temperature_c is not None and seed.temperature_c > hottest:
        notes.append(
            f"Seed temperature {seed.temperature_c:g} C ignored: the {spec.drive} cannot be "
            f"above {hottest:g} C, so it is a process temperature (nozzle, bed, tool)."
        )
    elif seed.temperature_c is not None:
        used["temperature_c"] = float(seed.temperature_c)
    if seed.vibration_mm_s is not None:
        used["vibration_mm_s"] = float(seed.vibration_mm_s)
    if seed.power_kw == 0:
        notes.append("Seed power 0 kW ignored: a stopped machine says nothing of its load.")
    elif seed.power_kw is not None and seed.power_kw > MAX_SEED_LOAD * spec.rated_power_kw:
        notes.append(
            f"Seed power {seed.power_kw:g} kW ignored: more than {MAX_SEED_LOAD:g} x the rated "
            f"{spec.rated_power_kw:g} kW, it measures more than this machine."
        )
    elif seed.power_kw is not None:
        used["power_kw"] = float(seed.power_kw)
    if seed.spindle_rpm == 0:
        notes.append("Seed speed 0 rpm ignored: a stopped machine says nothing of its speed.")
    elif seed.spindle_rpm is not None:
        used["spindle_rpm"] = float(seed.spindle_rpm)

    load = used["power_kw"] / spec.rated_power_kw if "power_kw" in used else sc.load_fraction
    if load < sc.min_load_fraction:
        notes.append(
            f"The seed's load {load:.2f} is raised to the scenario's {sc.min_load_fraction:g}."
        )
        load = sc.min_load_fraction
    if "vibration_mm_s" in used:
        wear = wear_from_vibration(spec, used["vibration_mm_s"])
    else:
        wear = sc.initial_wear
    if wear < sc.min_initial_wear:
        floor = sc.min_initial_wear
        notes.append(f"The seed's bearing wear {wear:.2f} is raised to the scenario's {floor:g}.")
        wear = sc.min_initial_wear
    return _Start(
        temperature_c=used.get("temperature_c", sc.ambient_c),
        wear=wear,
        load_fraction=load,
        rpm=used.get("spindle_rpm", spec.rated_rpm),
        seed_values=used,
        notes=notes,
    )


def run(
    spec: MachineSpec,
    scenario: str,
    hours: float,
    seed: Seed | None = None,
    *,
    step_minutes: float = 10.0,
    progress: Callable[[float], None] | None = None,
) -> dict[str, Any]:
    """Simulate `hours` of the scenario from the seed; the module docstring states the laws.
    `progress(fraction)` is called at most 100 times, with increasing fractions ending at 1."""
    seed = seed or Seed()
    problems = _run_problems(spec, scenario, hours, seed, step_minutes)
    if problems:
        raise PhysicsError("; ".join(problems))
    sc = SCENARIOS[scenario]
    hours = float(hours)
    n = _steps(hours, step_minutes)
    dt = hours / n
    start = _start(spec, sc, seed)
    load, duty, limit = start.load_fraction, sc.duty_cycle, spec.temperature_limit_c

    r_th = spec.thermal_resistance_k_per_kw * sc.cooling_factor
    tau = r_th * spec.heat_capacity_kj_per_k / 3600.0
    power = spec.rated_power_kw * (duty * load + (1.0 - duty) * spec.idle_power_share)
    steady = sc.ambient_c + r_th * spec.loss_fraction * power
    decay = math.exp(-dt / tau)
    mean_share = tau / dt * (1.0 - decay)  # mean of exp(-s / tau) over a step
    l10 = l10_hours(spec.bearing_c_dyn_n, bearing_load_n(spec, load), start.rpm)
    winding_rise = spec.winding_rise_k * load**2

    def wear_rate(body_c: float) -> float:  # per hour, running share only
        return duty / bearing_life_hours(spec, load, start.rpm, body_c)

    def insulation_rate(body_c: float) -> float:  # per hour, running and idle shares
        running = montsinger_factor(body_c + winding_rise, spec.insulation_class_c)
        idle = montsinger_factor(body_c, spec.insulation_class_c)
        return (duty * running + (1.0 - duty) * idle) / spec.insulation_life_h

    temperature, wear, insulation, health = (np.empty(n + 1) for _ in range(4))
    t, w, i, o = start.temperature_c, start.wear, 0.0, 0.0  # o: hours above the limit so far
    temperature[0], wear[0], insulation[0] = t, w, i
    health[0] = health_score(w, i, 1.0 if t > limit else 0.0)
    first_over: float | None = 0.0 if t > limit else None
    for k in range(1, n + 1):
        mean_c = steady + (t - steady) * mean_share
        above = _hours_above(t, steady, dt, tau, limit)
        if first_over is None and above > 0:
            first_over = (k - 1) * dt + dt - above  # heating through the limit in this step
        o += above
        t = steady + (t - steady) * decay  # thermal_step, with exp(-dt/tau) computed once
        w = min(1.0, w + dt * wear_rate(mean_c))
        i = min(1.0, i + dt * insulation_rate(mean_c))
        temperature[k], wear[k], insulation[k] = t, w, i
        health[k] = health_score(w, i, o / (k * dt))
        if progress is not None and k * 100 // n != (k - 1) * 100 // n:
            progress(k / n)

    time = np.arange(n + 1) * dt
    time[-1] = hours
    vibration = spec.vibration_base_mm_s + spec.vibration_wear_mm_s * wear**2

    if wear[-1] >= 1.0 or insulation[-1] >= 1.0:
        left = 0.0
    else:
        rates = [(1.0 - wear[-1], wear_rate(t)), (1.0 - insulation[-1], insulation_rate(t))]
        left = min(math.inf if rate <= 0 else float(rest) / rate for rest, rate in rates)

    points = np.unique(np.linspace(0, n, min(n + 1, MAX_POINTS)).round().astype(int))
    series = [
        {
            "time_hours": round(float(time[j]), 4),
            "temperature_c": round(float(temperature[j]), 3),
            "vibration_mm_s": round(float(vibration[j]), 4),
            "bearing_wear_percent": round(100.0 * float(wear[j]), 4),
            "insulation_used_percent": round(100.0 * float(insulation[j]), 6),
            "load_fraction": round(load, 4),
            "power_kw": round(power, 4),
            "health_score": round(float(health[j]), 3),
        }
        for j in points
    ]
    defaults = {
        "temperature_c": sc.ambient_c,
        "vibration_mm_s": vibration_mm_s(spec, sc.initial_wear),
        "power_kw": sc.load_fraction * spec.rated_power_kw,
        "spindle_rpm": spec.rated_rpm,
    }
    return {
        "scenario": scenario,
        "label": sc.label,
        "description": sc.description,
        "hours": hours,
        "step_minutes": round(dt * 60.0, 6),
        "steps": n,
        "spec": {**asdict(spec), "time_constant_h": round(spec.time_constant_h, 4)},
        "seed": {
            **{name: round(start.seed_values.get(name, v), 4) for name, v in defaults.items()},
            "source": seed.source,
            "from_seed": [name for name in defaults if name in start.seed_values],
            "from_defaults": [name for name in defaults if name not in start.seed_values],
        },
        "conditions": {
            "ambient_c": sc.ambient_c,
            "duty_cycle": duty,
            "load_fraction": round(load, 4),
            "spindle_rpm": round(start.rpm, 2),
            "thermal_resistance_k_per_kw": round(r_th, 4),
            "time_constant_h": round(tau, 4),
            "steady_temperature_c": round(steady, 3),
            "mean_power_kw": round(power, 4),
            "l10_hours": None if math.isinf(l10) else round(l10, 1),
            "initial_bearing_wear_percent": round(100.0 * start.wear, 4),
        },
        "series": series,
        "health_score_end": round(float(health[-1]), 3),
        "rul_hours": None if left > MAX_RUL_H else round(left, 1),
        "events": {
            "vibration_unacceptable_hours": _first_crossing(
                time, vibration, VIBRATION_UNACCEPTABLE_MM_S
            ),
            "over_temperature_hours": None if first_over is None else round(first_over, 3),
        },
        "notes": start.notes + _notes(spec, sc, start, r_th, tau, l10),
        "health_factors": {
            "bearings": round(1.0 - float(wear[-1]), 4),
            "insulation": round(1.0 - float(insulation[-1]), 4),
            "temperature": round(1.0 - o / hours / 2.0, 4),
        },
        "explanation": _explain(
            spec,
            sc,
            health=float(health[-1]),
            wear=float(wear[-1]),
            insulation=float(insulation[-1]),
            over_share=o / hours,
            steady_c=steady,
            end_c=t,
            load=load,
            rpm=start.rpm,
            winding_rise_k=winding_rise,
            lives={
                "bearings": (1.0 - wear[-1], wear_rate(t)),
                "insulation": (
                    1.0 - insulation[-1],
                    insulation_rate(t),
                ),
            },
        ),
    }


def _explain(
    spec: MachineSpec,
    sc: Scenario,
    *,
    health: float,
    wear: float,
    insulation: float,
    over_share: float,
    steady_c: float,
    end_c: float,
    load: float,
    rpm: float,
    winding_rise_k: float,
    lives: dict[str, tuple[float, float]],
) -> list[str]:
    """What drives the run's two results, in words: the three factors of the health score, and
    which life (bearings or insulation) runs out first and why. Health is the condition at the
    end, which time above the temperature limit halves at once; remaining life is only how fast
    bearings and insulation are being used up. The two can disagree: a hot machine at a light
    load scores low health yet wears slowly, a cool one pushed past its rating the reverse."""
    limit = spec.temperature_limit_c
    over = (
        f"{over_share:.0%} of the time above the {limit:g} °C limit"
        if over_share > 0
        else f"never above the {limit:g} °C limit"
    )
    sentences = [
        f"Health {health:.1f} = 100 × bearings {1 - wear:.2f} ({100 * wear:.1f}% of their life "
        f"used) × insulation {1 - insulation:.2f} × temperature {1 - over_share / 2:.2f} "
        f"({over}; it settles at {steady_c:.1f} °C in a {sc.ambient_c:g} °C room"
        + (f" with cooling {sc.cooling_factor:g} times worse" if sc.cooling_factor != 1 else "")
        + ")."
    ]
    left = {name: (rest / rate if rate > 0 else math.inf) for name, (rest, rate) in lives.items()}
    first = min(left, key=lambda name: left[name])
    if left[first] <= 0:
        sentences.append(f"No life left: the {first} reached 100% within the run.")
        return sentences
    when = f"beyond {MAX_RUL_H:,.0f} h" if left[first] > MAX_RUL_H else f"{left[first]:,.0f} h"
    if first == "bearings":
        rating = l10_hours(spec.bearing_c_dyn_n, bearing_load_n(spec, load), rpm)
        heat = max(1.0, arrhenius_factor(end_c, spec.bearing_activation_ev))
        hot = (
            f"shortened {heat:.2g} times by running at {end_c:.1f} °C"
            if heat >= 1.05
            else f"not shortened by heat at {end_c:.1f} °C"
        )
        sentences.append(
            f"Remaining life {when}, set by the bearings of the {spec.drive}: at {load:.0%} "
            f"load and {sc.duty_cycle:.0%} duty their rating life is {rating:,.0f} h of "
            f"running, {hot}."
        )
    else:
        winding = end_c + winding_rise_k
        ageing = montsinger_factor(winding, spec.insulation_class_c)
        sentences.append(
            f"Remaining life {when}, set by the winding insulation: running at {winding:.0f} °C "
            f"it ages {ageing:.2g} times as fast as at its {spec.insulation_class_c:g} °C class."
        )
    return sentences


def compare_note(runs: dict[str, dict[str, Any]]) -> str:
    """One sentence when two scenarios rank differently on health and on remaining life
    ("Overheated" with lower health than "Heavy load" but a longer life), saying why; "" when
    the rankings agree."""
    finite = [run for run in runs.values() if run.get("rul_hours") is not None]
    for a in finite:
        for b in finite:
            if a["health_score_end"] >= b["health_score_end"] or a["rul_hours"] <= b["rul_hours"]:
                continue
            factors = a.get("health_factors") or {}
            if factors.get("temperature", 1.0) < factors.get("bearings", 1.0):
                why = (
                    "health counts the time spent above the temperature limit, which halves it "
                    "while it lasts; remaining life follows only how fast bearings and "
                    f"insulation wear, and they wear faster under {b['label']} than under "
                    f"{a['label']}"
                )
            else:
                why = (
                    "health counts the life bearings and insulation have already used; "
                    f"remaining life how fast the rest goes, and it goes faster under {b['label']}"
                )
            return (
                f"{a['label']} ends with lower health than {b['label']} "
                f"({a['health_score_end']:.1f} against {b['health_score_end']:.1f}) yet lasts "
                f"longer ({a['rul_hours']:,.0f} h against {b['rul_hours']:,.0f} h): {why}."
            )
    return ""


def _first_crossing(time: np.ndarray, values: np.ndarray, level: float) -> float | None:
    """When `values` first reaches `level`, interpolated between samples."""
    crossed = np.nonzero(values >= level)[0]
    if not crossed.size:
        return None
    j = int(crossed[0])
    if j == 0:
        return 0.0
    v0, v1 = float(values[j - 1]), float(values[j])
    return round(float(time[j - 1] + (time[j] - time[j - 1]) * (level - v0) / (v1 - v0)), 3)


def _notes(
    spec: MachineSpec, sc: Scenario, start: _Start, r_th: float, tau: float, l10: float
) -> list[str]:
    load = start.load_fraction
    life = "infinite" if math.isinf(l10) else f"{l10:,.0f} h"
    return [
        f"Thermal: C dT/dt = P_heat - (T - T_amb)/R_th stepped exactly, T' = T_ss + (T - T_ss) "
        f"exp(-dt/tau); R_th = {r_th:.4g} K/kW (cooling x{sc.cooling_factor:g}), C = "
        f"{spec.heat_capacity_kj_per_k:.4g} kJ/K, tau = {tau:.3g} h, P_heat = "
        f"{spec.loss_fraction:g} x electrical power, T_amb = {sc.ambient_c:g} C.",
        f"Duty: runs {sc.duty_cycle:.0%} of each step at {load:.0%} load, idles the rest at "
        f"{spec.idle_power_share:.0%} of rated power; heat input is the step average.",
        f"Bearings ({spec.drive}): ISO 281 L10h = (C/P)^3 10^6/(60 n) = {life} with C = "
        f"{spec.bearing_c_dyn_n:,g} N, P = {bearing_load_n(spec, load):,.4g} N, n = "
        f"{start.rpm:,.0f} rpm; divided by the Arrhenius factor (Ea = "
        f"{spec.bearing_activation_ev:g} eV, {T_REF_K - 273.15:g} C reference, never below 1); "
        "wear is Miner's sum of running dt / L10h_eff.",
        f"Vibration: v = {spec.vibration_base_mm_s:g} + {spec.vibration_wear_mm_s:g} wear^2 mm/s "
        f"RMS; ISO 10816 unacceptable from {VIBRATION_UNACCEPTABLE_MM_S:g} mm/s.",
        f"Insulation: Montsinger, life halves per 10 C above {spec.insulation_class_c:g} C "
        f"({spec.insulation_life_h:,g} h there); winding = body + {spec.winding_rise_k:g} K x "
        "load^2 while running.",
        "Health = 100 (1 - bearing wear)(1 - insulation used)(1 - share of time above "
        f"{spec.temperature_limit_c:g} C / 2). RUL: hours until bearing wear or insulation "
        f"reaches 100% at the end-of-run rates; none beyond {MAX_RUL_H:,.0f} h.",
    ]


def series_csv(result: dict[str, Any]) -> str:
    lines = [",".join(SERIES_FIELDS)]
    lines += [",".join(str(p[name]) for name in SERIES_FIELDS) for p in result["series"]]
    return "\n".join(lines) + "\n"
