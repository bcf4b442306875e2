"""The settings a vendor enters for each kind of node, as fields with units and limits, and how
they map onto the node's configuration document (NodeConfigProfile.config, free JSON).

Plain data, no database. A setting's `path` is where it lives in the document ("spindle.max_rpm"
is {"spindle": {"max_rpm": ...}}, as the demo fleet's configurations have it). Keys the kind's
settings do not name stay in the document untouched: they are edited as JSON, the advanced
option of the node page."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

COOLANT = (("flood", "Flood"), ("mist", "Mist"), ("air", "Air blast"), ("none", "None (dry)"))


@dataclass(frozen=True)
class Setting:
    path: str  # dotted path in the configuration document
    label: str
    kind: str  # "float", "int", "choice" or "bool"
    unit: str = ""
    low: float | None = None
    high: float | None = None
    choices: tuple[tuple[str, str], ...] = ()
    help: str = ""

    @property
    def name(self) -> str:
        """The form field's name ("spindle.max_rpm" -> "spindle__max_rpm")."""
        return self.path.replace(".", "__")

    @property
    def title(self) -> str:
        return f"{self.label} ({self.unit})" if self.unit else self.label


def _spindle(high: int) -> Setting:
    return Setting("spindle.max_rpm", "Spindle, highest speed", "int", "rpm", 100, high)


SETTINGS: dict[str, tuple[Setting, ...]] = {
    "fdm_printer": (
        Setting("nozzle_mm", "Nozzle diameter", "float", "mm", 0.1, 2.0),
        Setting(
            "filament_mm", "Filament", "choice", choices=(("1.75", "1.75 mm"), ("2.85", "2.85 mm"))
        ),
        Setting("hotend_max_c", "Hot end, highest temperature", "int", "°C", 150, 500),
        Setting("bed_max_c", "Bed, highest temperature", "int", "°C", 0, 200),
        Setting("enclosed", "Enclosed build chamber", "bool"),
    ),
    "sla_printer": (
        Setting("layer_um", "Thinnest layer", "int", "µm", 10, 300),
        Setting(
            "wavelength_nm",
            "Light source",
            "choice",
            choices=(("385", "385 nm"), ("405", "405 nm")),
        ),
        Setting("tank_ml", "Resin tank", "int", "ml", 50, 20000),
    ),
    "sls_printer": (
        Setting("laser_w", "Laser power", "float", "W", 1, 1000),
        Setting("layer_um", "Thinnest layer", "int", "µm", 50, 300),
        Setting("chamber_max_c", "Build chamber, highest temperature", "int", "°C", 0, 400),
    ),
    "cnc_mill": (
        _spindle(60000),
        Setting("axes", "Axes", "choice", choices=(("3", "3"), ("4", "4"), ("5", "5"))),
        Setting("coolant", "Coolant", "choice", choices=COOLANT),
        Setting(
            "tool_slots", "Tool changer slots", "int", "", 0, 500, help="0: manual tool changes."
        ),
    ),
    "cnc_lathe": (
        _spindle(20000),
        Setting("chuck_mm", "Chuck diameter", "float", "mm", 10, 2000),
        Setting("bar_feeder", "Bar feeder", "bool"),
        Setting("coolant", "Coolant", "choice", choices=COOLANT),
    ),
    "laser_cutter": (
        Setting(
            "source",
            "Laser source",
            "choice",
            choices=(("co2", "CO2"), ("fiber", "Fibre"), ("diode", "Diode")),
        ),
        Setting("laser_w", "Laser power", "float", "W", 1, 30000),
        Setting("air_assist", "Air assist", "bool"),
    ),
    "robot_cell": (
        Setting("payload_kg", "Payload", "float", "kg", 0.1, 3000),
        Setting("reach_mm", "Reach", "int", "mm", 100, 5000),
        Setting("axes", "Axes", "choice", choices=(("4", "4"), ("6", "6"), ("7", "7"))),
    ),
    "inspection": (
        Setting(
            "method",
            "Method",
            "choice",
            choices=(
                ("cmm", "Coordinate measuring machine"),
                ("optical", "Optical scanner"),
                ("ct", "CT scanner"),
            ),
        ),
        Setting("accuracy_um", "Accuracy", "float", "µm", 0.1, 1000),
    ),
}


def settings_for(kind: str) -> tuple[Setting, ...]:
    return SETTINGS.get(kind, ())


def read(config: dict[str, Any], path: str) -> Any:
    value: Any = config
    for key in path.split("."):
        if not isinstance(value, dict) or key not in value:
            return None
        value = value[key]
    return value


def written(config: dict[str, Any], values: dict[str, Any], kind: str) -> dict[str, Any]:
    """A copy of `config` with the kind's settings set from `values` (by field name); a setting
    left empty is removed, every other key kept as it was."""
    out: dict[str, Any] = _copy(config)
    for setting in settings_for(kind):
        value = values.get(setting.name)
        *parents, leaf = setting.path.split(".")
        holder = out
        for key in parents:
            if not isinstance(holder.get(key), dict):
                if value is None:
                    holder = {}
                    break
                holder[key] = {}
            holder = holder[key]
        if value is None or value == "":
            holder.pop(leaf, None)
        else:
            holder[leaf] = value
    return out


def _copy(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _copy(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_copy(v) for v in value]
    return value
