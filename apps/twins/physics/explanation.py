"""A run's results in words: what drives its health and its remaining life, the laws and
figures it used, and why two scenarios can rank differently on health and on life."""

from __future__ import annotations

import math
from typing import Any

from apps.twins.ageing import T_REF_K, arrhenius_factor
from apps.twins.physics.laws import (
    MAX_RUL_H,
    VIBRATION_UNACCEPTABLE_MM_S,
    bearing_load_n,
    l10_hours,
    montsinger_factor,
)
from apps.twins.physics.machines import MachineSpec
from apps.twins.physics.scenarios import Scenario, Start


def explain(
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


def run_notes(
    spec: MachineSpec, sc: Scenario, start: Start, r_th: float, tau: float, l10: float
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
