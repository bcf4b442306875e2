"""Signal models of a CNC mill and an FDM printer: warm-up, load cycles, noise, and faults that
can be injected (bearing wear ramp in vibration, overheating, power spike)."""

from __future__ import annotations

import enum
import math
import random
from dataclasses import dataclass, field


class Fault(enum.StrEnum):
    NONE = "none"
    BEARING_WEAR = "bearing_wear"  # vibration ramps up over minutes
    OVERHEAT = "overheat"  # temperature climbs past its normal plateau
    POWER_SPIKE = "power_spike"  # short bursts far above rated power


@dataclass
class MachineModel:
    kind: str  # "cnc_mill" or "fdm_printer"
    rated_power_kw: float
    fault: Fault = Fault.NONE
    seed: int = 0
    _rng: random.Random = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self._rng = random.Random(self.seed)

    def sample(self, t: float) -> dict[str, float]:
        """Signals `t` seconds after power-on."""
        noise = self._rng.gauss
        warm = 1 - math.exp(-t / 120)  # two-minute warm-up
        cycle = 0.5 + 0.5 * math.sin(2 * math.pi * t / 90)  # a 90-second load cycle
        if self.kind == "fdm_printer":
            temperature = 25 + 185 * warm + noise(0, 0.4)
            power = self.rated_power_kw * (0.3 + 0.5 * warm * cycle) + noise(0, 0.005)
            values = {
                "temperature_c": temperature,
                "power_kw": max(power, 0.0),
                "vibration_mm_s": max(0.3 + 0.4 * cycle + noise(0, 0.05), 0.0),
                "progress_pct": min(100.0, t / 36),
                # a 1 kg spool, about 3 g a minute once the nozzle is hot
                "material_remaining": max(1000.0 - 0.05 * max(t - 120, 0.0), 0.0),
            }
        else:
            rpm = 12000 * warm * (0.6 + 0.4 * cycle)
            torque = 4 + 18 * cycle + noise(0, 0.3)
            values = {
                "spindle_rpm": max(rpm + noise(0, 30), 0.0),
                "torque_nm": torque,
                # mechanical power = torque x angular speed, plus drives and coolant
                "power_kw": max(torque * rpm * 2 * math.pi / 60 / 1000 + 0.8, 0.0),
                "temperature_c": 24 + 28 * warm + 6 * cycle + noise(0, 0.3),
                "vibration_mm_s": max(0.8 + 0.9 * cycle + noise(0, 0.08), 0.0),
            }
        if self.fault == Fault.BEARING_WEAR:
            values["vibration_mm_s"] += 0.01 * t  # +0.6 mm/s a minute
        elif self.fault == Fault.OVERHEAT:
            values["temperature_c"] += 0.05 * t
        elif self.fault == Fault.POWER_SPIKE and int(t) % 30 < 3:
            values["power_kw"] = self.rated_power_kw * 1.6 + noise(0, 0.1)
        return values
