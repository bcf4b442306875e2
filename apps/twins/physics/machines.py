"""The drive of each machine kind (a mill's spindle, a printer's fans and steppers...): its
thermal path, bearings, insulation and limits, and a node's own spec from its rated power."""

from __future__ import annotations

from dataclasses import dataclass, replace

from apps.twins.physics.validation import PhysicsError, within

# A reading is taken running (under load) above this share of rated power, and above the kind's
# idle draw (an inspection cell idles at half its rating): the maintenance scoring's share.
RUNNING_SHARE = 0.25
RUNNING_ABOVE_IDLE = 0.05


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
            if not within(getattr(self, name), low, high, low_inclusive=included):
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
    if rated_power_kw is not None and not within(rated_power_kw, 0, 10_000):
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
