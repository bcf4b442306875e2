"""Signal models of a CNC mill and an FDM printer that behave like the machines: an idle machine
draws its idle power (controls, fans, coolant pump) with the spindle stopped and the heaters
off; load, spindle speed and heat come only while a part runs (`part_start` / `part_stop`, which
the node's work agent calls through the simulator's control variables); power stays within the
rated power. Faults are injected at any time (`inject`) and grow from that moment: a bearing
wear ramp in vibration, overheating, or power bursts above the rating. Without a fault no signal
reaches the platform's default threshold rules (apps/maintenance/rules.py).

`sample(t)` takes the seconds since power-on; the model integrates its first-order lags (spindle
run-up, thermal mass) over the time since the previous sample, so it may be sampled at any rate.
"""

from __future__ import annotations

import enum
import math
import random
from dataclasses import dataclass, field


class Fault(enum.StrEnum):
    NONE = "none"
    BEARING_WEAR = "bearing_wear"  # vibration ramps up, 0.6 mm/s a minute
    OVERHEAT = "overheat"  # temperature climbs past its normal plateau, 3 C a minute
    POWER_SPIKE = "power_spike"  # bursts of 1.6 x rated power, 15 s of every 30 s


# Share of the rated power drawn by an idle machine (controls, fans, pumps) and the most a
# running part may draw (the drives' continuous rating; peaks above are what faults look like).
IDLE_SHARE = {"cnc_mill": 0.1, "fdm_printer": 0.05}
MAX_SHARE = 0.9
DEFAULT_LOAD_SHARE = {"cnc_mill": 0.7, "fdm_printer": 0.5}  # as apps/jobs/estimates UTILISATION
MILL_MAX_RPM = 12000.0
DRIVE_EFFICIENCY = 0.9
AMBIENT_C = 24.0
NOZZLE_C = 210.0
LOAD_CYCLE_S = 90.0
SPINDLE_TAU_S = 0.5  # run-up and coast-down of the spindle
HOUSING_TAU_S = 300.0  # the spindle housing warms slowly
NOZZLE_TAU_S = 20.0  # a hot end heats in about a minute
BEARING_WEAR_MM_S_PER_S = 0.01
OVERHEAT_C_PER_S = 0.05
SPIKE_PERIOD_S, SPIKE_LENGTH_S, SPIKE_FACTOR = 30.0, 15.0, 1.6


@dataclass
class MachineModel:
    kind: str  # "cnc_mill" or "fdm_printer"
    rated_power_kw: float
    fault: Fault = Fault.NONE
    seed: int = 0
    fault_since: float = 0.0  # machine seconds at which the fault was injected
    running: bool = False
    load_kw: float = 0.0  # the running part's mean power
    part_rpm: float = 0.0
    part_seconds: float = 0.0  # how long the part runs, for its progress (0: unknown)
    part_since: float = 0.0
    _rng: random.Random = field(init=False, repr=False)
    _last_t: float | None = field(default=None, init=False, repr=False)
    _rpm: float = field(default=0.0, init=False, repr=False)
    _temperature: float = field(default=AMBIENT_C, init=False, repr=False)
    _material_g: float = field(default=1000.0, init=False, repr=False)

    def __post_init__(self) -> None:
        self._rng = random.Random(self.seed)

    @property
    def idle_kw(self) -> float:
        return self.rated_power_kw * IDLE_SHARE.get(self.kind, 0.1)

    @property
    def max_kw(self) -> float:
        return self.rated_power_kw * MAX_SHARE

    def part_start(self, t: float, *, load_kw: float | None = None, seconds: float = 0.0) -> None:
        """A part starts at `t`: the machine draws `load_kw` on average (the part's estimated
        energy over its estimated hours; default the kind's usual share of the rating), held
        between idle and the continuous rating."""
        share = DEFAULT_LOAD_SHARE.get(self.kind, 0.5)
        wanted = self.rated_power_kw * share if load_kw is None or load_kw <= 0 else load_kw
        self.load_kw = min(max(wanted, self.idle_kw), self.max_kw)
        self.part_rpm = self._rng.uniform(0.6, 0.8) * MILL_MAX_RPM
        self.part_seconds = max(seconds, 0.0)
        self.part_since = t
        self.running = True

    def part_stop(self, t: float) -> None:
        self.running = False
        self.load_kw = 0.0

    def inject(self, fault: Fault, t: float) -> None:
        """The fault starts now (`none` repairs the machine)."""
        self.fault = fault
        self.fault_since = t

    def _advance(self, t: float) -> float:
        """Seconds since the previous sample (0 for the first, or for a clock going back)."""
        dt = 0.0 if self._last_t is None else max(t - self._last_t, 0.0)
        self._last_t = t
        return dt

    @staticmethod
    def _lag(value: float, target: float, dt: float, tau: float) -> float:
        return value + (target - value) * (1 - math.exp(-dt / tau))

    def sample(self, t: float) -> dict[str, float]:
        """Signals `t` seconds after power-on."""
        dt = self._advance(t)
        noise = self._rng.gauss
        # a load cycle of about 90 s within a part (tool engagement, infill against perimeters),
        # whole cycles over the part so that its mean power is the part's
        period = LOAD_CYCLE_S
        if self.part_seconds:
            period = self.part_seconds / max(1, round(self.part_seconds / LOAD_CYCLE_S))
        cycle = math.sin(2 * math.pi * (t - self.part_since) / period)
        if self.running:
            power = self.load_kw * (1 + 0.12 * cycle) + noise(0, 0.01 * self.load_kw)
            power = min(max(power, self.idle_kw), self.max_kw)
        else:
            power = self.idle_kw * (1 + noise(0, 0.01))
        if self.kind == "fdm_printer":
            values = self._printer(power, dt, t)
        else:
            values = self._mill(power, dt)
        since = t - self.fault_since
        if self.fault == Fault.BEARING_WEAR:
            # shown whether or not the spindle turns, so the demo shows it on an idle machine
            values["vibration_mm_s"] += BEARING_WEAR_MM_S_PER_S * since
        elif self.fault == Fault.OVERHEAT:
            values["temperature_c"] += OVERHEAT_C_PER_S * since
        elif self.fault == Fault.POWER_SPIKE and since % SPIKE_PERIOD_S < SPIKE_LENGTH_S:
            values["power_kw"] = self.rated_power_kw * SPIKE_FACTOR + noise(0, 0.01)
        return values

    def _mill(self, power: float, dt: float) -> dict[str, float]:
        noise = self._rng.gauss
        target_rpm = self.part_rpm if self.running else 0.0
        self._rpm = self._lag(self._rpm, target_rpm, dt, SPINDLE_TAU_S)
        rpm = self._rpm if self._rpm > 1.0 else 0.0
        omega = rpm * 2 * math.pi / 60
        # the tool cuts once the spindle is at speed: cutting power grows with the run-up, and
        # reaches the tool through the drive (P = idle + torque x omega / efficiency)
        at_speed = min(rpm / self.part_rpm, 1.0) if self.running and self.part_rpm else 0.0
        cutting_kw = max(power - self.idle_kw, 0.0) * at_speed
        torque = cutting_kw * 1000 * DRIVE_EFFICIENCY / omega if omega > 0 else 0.0
        power = self.idle_kw + cutting_kw if self.running else power
        heat_target = AMBIENT_C + 4 + 1.8 * cutting_kw
        self._temperature = self._lag(self._temperature, heat_target, dt, HOUSING_TAU_S)
        speed = rpm / MILL_MAX_RPM
        if rpm > 0:
            vibration = 0.9 * (0.7 + 0.3 * speed) * math.exp(noise(0, 0.05))
        else:
            vibration = 0.15 * math.exp(noise(0, 0.05))  # pumps and fans; the spindle is still
        return {
            "spindle_rpm": max(rpm + (noise(0, 5) if rpm else 0.0), 0.0),
            "torque_nm": torque,
            "power_kw": power,
            "temperature_c": self._temperature + noise(0, 0.1),
            "vibration_mm_s": vibration,
        }

    def _printer(self, power: float, dt: float, t: float) -> dict[str, float]:
        noise = self._rng.gauss
        target = NOZZLE_C if self.running else AMBIENT_C
        self._temperature = self._lag(self._temperature, target, dt, NOZZLE_TAU_S)
        if self.running:
            self._material_g = max(self._material_g - 0.05 * dt, 0.0)  # about 3 g a minute
            elapsed = t - self.part_since
            progress = min(100.0, 100 * elapsed / self.part_seconds) if self.part_seconds else 0.0
            vibration = 0.5 * math.exp(noise(0, 0.1))  # the axes moving
        else:
            progress, vibration = 0.0, 0.05 * math.exp(noise(0, 0.05))
        return {
            "temperature_c": self._temperature + noise(0, 0.2),
            "power_kw": power,
            "vibration_mm_s": vibration,
            "progress_pct": progress,
            "material_remaining": self._material_g,
        }


def apply_control(
    model: MachineModel,
    t: float,
    *,
    running: bool | None = None,
    load_kw: float | None = None,
    seconds: float | None = None,
    fault: str | None = None,
) -> None:
    """What a simulator does with a control write (OPC UA variables, Modbus registers, an
    MTConnect PUT): start or stop a part, inject or clear a fault. Raises ValueError for an
    unknown fault or a load or duration that is not a finite, non-negative number."""
    for name, number in (("load_kw", load_kw), ("seconds", seconds)):
        if number is not None and not (math.isfinite(number) and number >= 0):
            raise ValueError(f"{name} must be a finite number >= 0, not {number!r}")
    if fault is not None:
        chosen = Fault(fault)  # ValueError for an unknown fault
        if chosen != model.fault:
            model.inject(chosen, t)
    if running is True and not model.running:
        model.part_start(t, load_kw=load_kw, seconds=seconds or 0.0)
    elif running is False and model.running:
        model.part_stop(t)
