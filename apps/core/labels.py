"""Words for codes: the one place that turns a code ("power_kw", "cnc_mill", "petg",
"baseline_mae_h") into what a person reads ("Power", kW; "CNC mill"; "PETG"; "Baseline MAE
(h)"), and builds the sentences pages, notifications, toasts and e-mails say about readings
("Power 14.96 kW above the critical limit of 11.25 kW on Mill-01").

Raw codes stay in the API and the database; only what is rendered for people goes through here.
core is the lowest app, so it cannot read the other apps' choices: each app registers its codes
and labels from its `AppConfig.ready` (`labels_register`), and this module holds only the
cross-cutting vocabulary (signals and their units, abbreviations). A code nobody registered is
never an error: it is spelled out from its parts ("offpeak_price_per_kwh" -> "Off-peak price
per kWh"), so a new code reads acceptably until someone gives it a proper label."""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping
from typing import Any

# Signal (telemetry and derived readings) -> (label, unit). The unit is the stored one.
SIGNALS: dict[str, tuple[str, str]] = {
    "temperature_c": ("Temperature", "°C"),
    "vibration_mm_s": ("Vibration", "mm/s"),
    "power_kw": ("Power", "kW"),
    "spindle_rpm": ("Spindle speed", "rpm"),
    "torque_nm": ("Torque", "N·m"),
    "progress_pct": ("Progress", "%"),
    "material_remaining": ("Material remaining", ""),
    "bearing_temp_c": ("Bearing temperature", "°C"),
    "ambient_c": ("Ambient temperature", "°C"),
    "tool_wear_min": ("Tool wear", "min"),
    "setting_rpm": ("Speed setting", "rpm"),
    "anomaly_score": ("Anomaly score", ""),
    "failure_probability": ("Failure probability", ""),
    "rul_hours": ("Remaining useful life", "h"),
}

# Unit suffixes of codes, longest first: "vibration_mm_s" ends in "_mm_s", not "_s".
_UNIT_SUFFIXES: tuple[tuple[str, str], ...] = (
    ("_per_kwh", "per kWh"),
    ("_mm_s", "mm/s"),
    ("_l_min", "l/min"),
    ("_mm_min", "mm/min"),
    ("_kwh", "kWh"),
    ("_kw", "kW"),
    ("_pct", "%"),
    ("_rpm", "rpm"),
    ("_nm", "N·m"),
    ("_mm", "mm"),
    ("_min", "min"),
    ("_cycles", "cycles"),
    ("_c", "°C"),
    ("_h", "h"),
    ("_s", "s"),
    ("_g", "g"),
    ("_kg", "kg"),
    ("_usd", "USD"),
)
# Parts of codes that are written in capitals or otherwise not as the plain word.
_WORDS: dict[str, str] = {
    "mae": "MAE",
    "rmse": "RMSE",
    "rul": "RUL",
    "roc": "ROC",
    "auc": "AUC",
    "f1": "F1",
    "cnc": "CNC",
    "fdm": "FDM",
    "sla": "SLA",
    "sls": "SLS",
    "pla": "PLA",
    "petg": "PETG",
    "tpu": "TPU",
    "cfrp": "CFRP",
    "co2": "CO₂",
    "co2e": "CO₂e",
    "kwh": "kWh",
    "kw": "kW",
    "utc": "UTC",
    "id": "ID",
    "api": "API",
    "mqtt": "MQTT",
    "opc": "OPC",
    "ua": "UA",
    "sku": "SKU",
    "soc": "charge",
    "offpeak": "off-peak",
    "pct": "%",
    "qty": "quantity",
    "temp": "temperature",
    "mm": "mm",
    "rpm": "rpm",
}

# group -> code -> label, filled by the apps (labels_register) and by this module.
_GROUPS: dict[str, dict[str, str]] = {
    "signal": {code: name for code, (name, _unit) in SIGNALS.items()},
    "severity": {"info": "Info", "warning": "Warning", "critical": "Critical", "normal": "Normal"},
    # threshold rule modes: which way a reading crosses its limit
    "direction": {"above": "above", "below": "below", "rate": "changing faster than"},
}
# Where a code is looked up when the caller names no group: the first group that knows it wins.
_LOOKUP_ORDER = ["signal", "node_kind", "process", "material", "metric", "severity"]


_CODE = re.compile(r"[a-z][a-z0-9]*(?:_[a-z0-9]+)+")


def is_code(text: Any) -> bool:
    """True for a snake_case code ("power_kw"), false for words ("Power", "worn bearing")."""
    return isinstance(text, str) and _CODE.fullmatch(text) is not None


def labels_register(group: str, labels: Mapping[str, str] | Iterable[tuple[str, str]]) -> None:
    """Add (or replace) the labels of `group`'s codes; called from the apps' `ready`. Takes a
    mapping or (code, label) pairs, so `Model.Kind.choices` can be passed as it is."""
    pairs = labels.items() if isinstance(labels, Mapping) else labels
    target = _GROUPS.setdefault(group, {})
    for code, text in pairs:
        target[str(code)] = str(text)
    if group not in _LOOKUP_ORDER:
        _LOOKUP_ORDER.append(group)


def humanize(code: str, *, with_unit: bool = True) -> str:
    """A code nobody labelled, spelled out from its parts: "baseline_mae_h" -> "Baseline MAE
    (h)", "offpeak_price_per_kwh" -> "Off-peak price per kWh"; `with_unit=False` leaves the
    unit out ("Baseline MAE"). Never raises."""
    text = str(code).strip()
    if not text:
        return ""
    base, found_unit = _split_unit(text)
    if not with_unit:
        found_unit = ""
    words = [w for w in re.split(r"[_\s]+", base) if w]
    spelled = [_WORDS.get(w.lower(), w.lower() if w.islower() else w) for w in words]
    phrase = " ".join(spelled)
    if phrase and phrase[0].islower():
        phrase = phrase[0].upper() + phrase[1:]
    if found_unit == "per kWh":
        return f"{phrase} per kWh"
    return f"{phrase} ({found_unit})" if found_unit else phrase


def _split_unit(code: str) -> tuple[str, str]:
    if code in SIGNALS:
        return SIGNALS[code][0], SIGNALS[code][1]
    lowered = code.lower()
    for suffix, unit_text in _UNIT_SUFFIXES:
        if lowered.endswith(suffix) and len(lowered) > len(suffix):
            return code[: -len(suffix)], unit_text
    return code, ""


def label(code: Any, group: str | None = None) -> str:
    """The words for `code`, without its unit ("power_kw" -> "Power", "cnc_mill" -> "CNC
    mill"). `group` picks the vocabulary when a code means different things in two; without it
    the registered groups are searched, then the code is spelled out from its parts."""
    if code is None:
        return ""
    text = str(code)
    if group is not None and text in _GROUPS.get(group, {}):
        return _GROUPS[group][text]
    for name in _LOOKUP_ORDER:
        found = _GROUPS.get(name, {}).get(text)
        if found is not None:
            return found
    return humanize(text, with_unit=False)


def words(text: Any) -> str:
    """Free text as it is, unless it is a code: a twin's tag "cnc_mill" reads "CNC mill", its
    tag "demo" stays "demo" (it is nobody's code)."""
    if text is None:
        return ""
    value = str(text)
    if is_code(value) or any(value in group for group in _GROUPS.values()):
        return label(value)
    return value


def unit(code: Any) -> str:
    """The unit a code's values are in ("power_kw" -> "kW"), or "" when it has none."""
    if code is None:
        return ""
    return _split_unit(str(code))[1]


def label_with_unit(code: Any, group: str | None = None) -> str:
    """ "Power (kW)"; a code without a unit gives its label alone."""
    if code is None:
        return ""
    name = label(code, group)
    found = unit(code)
    if not found or name.endswith((")", found)):  # no unit, or the label already says it
        return name
    if found == "per kWh":
        return f"{name} per kWh"
    return f"{name} ({found})"


def quantity(value: Any, code: Any = None, *, digits: int = 4) -> str:
    """A reading with its unit: (14.957, "power_kw") -> "14.96 kW"; at most `digits` significant
    digits, a percentage without a space ("12%"). Not a number: its text as it is."""
    if value is None or value == "":
        return "—"
    if isinstance(value, bool) or not isinstance(value, int | float):
        return str(value)
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    number = f"{value:.{digits}g}" if isinstance(value, float) else str(value)
    if "e" in number:  # 4 significant digits of 123456.7 read as 1.235e+05
        number = f"{value:.0f}"
    found = unit(code) if code is not None else ""
    if not found or found == "per kWh":
        return number
    return f"{number}{found}" if found == "%" else f"{number} {found}"


# --- Sentences ---------------------------------------------------------------------------------


def alert_sentence(
    *,
    signal: str,
    value: float,
    threshold: float,
    mode: str = "above",
    severity: str = "critical",
    node_name: str = "",
) -> str:
    """ "Power 14.96 kW above the critical limit of 11.25 kW on Mill-01". A rate rule judges the
    change per minute: "Temperature changing faster than the warning limit of 5 °C a minute
    (8.2 °C a minute) on Printer-01"; a rise rule its rise ("Temperature rising faster ...")."""
    name = label(signal, "signal")
    level = label(severity, "severity").lower()
    where = f" on {node_name}" if node_name else ""
    if mode in ("rate", "rise"):
        per_min = f"{quantity(abs(value), signal)} a minute"
        limit = f"{quantity(threshold, signal)} a minute"
        how = "rising" if mode == "rise" else "changing"
        return f"{name} {how} faster than the {level} limit of {limit} ({per_min}){where}"
    direction = "below" if mode == "below" else "above"
    return (
        f"{name} {quantity(value, signal)} {direction} the {level} limit of "
        f"{quantity(threshold, signal)}{where}"
    )


def alert_resolved_sentence(*, signal: str, node_name: str = "") -> str:
    """ "Power back within its limits on Mill-01"."""
    where = f" on {node_name}" if node_name else ""
    return f"{label(signal, 'signal')} back within its limits{where}"


# --- What must never show -----------------------------------------------------------------------


def codes_never_shown() -> frozenset[str]:
    """Every registered code written as snake_case ("power_kw", "cnc_mill", "baseline_mae_h"):
    none of these may appear as visible text on a portal page (the label does). Single-word
    codes ("fdm", "petg", "idle") are left out: they are also ordinary words of sentences, so a
    page test cannot tell a code from prose."""
    codes = {code for group in _GROUPS.values() for code in group if "_" in code}
    return frozenset(codes)
