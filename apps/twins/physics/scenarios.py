"""What a simulated run goes through (the scenarios) and where it starts: the seed, the machine
as its latest telemetry shows it, checked and bounded by the scenario's stress."""

from __future__ import annotations

from dataclasses import dataclass

from apps.twins.physics.laws import wear_from_vibration
from apps.twins.physics.machines import MachineSpec
from apps.twins.physics.validation import within

MAX_SEED_LOAD = 1.5  # a seed power above 1.5 x rated measures more than this machine
SEED_TEMPERATURE_MARGIN_K = 60.0  # above limit + this, a reading is a process temperature
# Scenarios of a node start from the load profile of this many minutes of its telemetry (the
# seed_minutes parameter, within these bounds).
SEED_MINUTES = 60.0
SEED_MINUTES_RANGE = (5.0, 1440.0)
# The physical ranges telemetry accepts (apps.telemetry.models.SIGNAL_RANGES): outside, an error.
SEED_RANGES: dict[str, tuple[float, float]] = {
    "temperature_c": (-60.0, 2000.0),
    "vibration_mm_s": (0.0, 500.0),
    "power_kw": (0.0, 10_000.0),
    "spindle_rpm": (0.0, 100_000.0),
}


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
            if value is not None and not within(value, low, high, low_inclusive=True):
                problems.append(f"seed.{name}: a number from {low:,g} to {high:,g}, or none")
        return problems


@dataclass(frozen=True)
class Start:
    temperature_c: float
    wear: float
    load_fraction: float
    rpm: float
    seed_values: dict[str, float]  # the seed's values that were used, by Seed field
    notes: list[str]


def start_state(spec: MachineSpec, sc: Scenario, seed: Seed) -> Start:
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
    return Start(
        temperature_c=used.get("temperature_c", sc.ambient_c),
        wear=wear,
        load_fraction=load,
        rpm=used.get("spindle_rpm", spec.rated_rpm),
        seed_values=used,
        notes=notes,
    )
