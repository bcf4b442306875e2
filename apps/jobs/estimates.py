"""Feasibility and estimates from part geometry and node characteristics (no database access:
callers pass the candidate nodes). Duration, energy, material and a cost breakdown per part and
per job. Once a learned duration model is active (apps/jobs/duration.py), callers pass it and its
hours replace the geometric ones; energy and machine time follow from those hours."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Any, Protocol

from django.conf import settings

from apps.vendors import catalog

# material code (apps/vendors/catalog.py) -> (density g/cm3, price per kg in JOBS_CURRENCY)
MATERIALS: dict[str, tuple[float, float]] = {
    "pla": (1.24, 25.0),
    "petg": (1.27, 28.0),
    "abs": (1.04, 27.0),
    "tpu": (1.21, 40.0),
    "resin": (1.10, 80.0),
    "nylon_powder": (1.01, 70.0),
    "aluminium_6061": (2.70, 9.0),
    "steel": (7.85, 4.0),
    "brass": (8.50, 12.0),
    "cfrp_sheet": (1.60, 60.0),
    "acrylic": (1.18, 8.0),
    "plywood": (0.60, 3.0),
}
DEFAULT_MATERIAL = (1.20, 30.0)
# process code -> rate for its catalogue mode: cm3/h deposited (additive), cm3/h removed
# (subtractive), mm/min along the outline (cutting) or hours per unit (fixed)
PROCESS_RATES = {
    "fdm": 12.0,
    "sla": 18.0,
    "sls": 25.0,
    "milling": 30.0,
    "drilling": 40.0,
    "turning": 45.0,
    "laser_cutting": 1500.0,
    "assembly": 0.5,
    "inspection": 0.25,
}
# process -> how the estimate treats it: "additive" (deposited volume / rate),
# "subtractive" (removed volume / rate) or "cutting" (outline length / speed)
PROCESS_MODES = {p.code: (p.mode, PROCESS_RATES[p.code]) for p in catalog.PROCESSES}
DEFAULT_PROCESS = ("fixed", 1.0)
PROCESS_LABELS = {p.code: p.label for p in catalog.PROCESSES}
# machine-time rate per hour by node kind
MACHINE_RATES = {
    "fdm_printer": 3.0,
    "sla_printer": 5.0,
    "sls_printer": 12.0,
    "cnc_mill": 45.0,
    "cnc_lathe": 40.0,
    "laser_cutter": 30.0,
    "robot_cell": 25.0,
    "inspection": 20.0,
}
SETUP_HOURS = {"additive": 0.25, "subtractive": 0.5, "cutting": 0.1, "fixed": 0.0}
UTILISATION = {"additive": 0.5, "subtractive": 0.7, "cutting": 0.8, "fixed": 0.3}
CENT = Decimal("0.01")
MAX_LOTS = 8


class NodeLike(Protocol):
    pk: int
    kind: str
    processes: Any
    materials: Any
    build_x_mm: float
    build_y_mm: float
    build_z_mm: float
    rated_power_kw: float


@dataclass(frozen=True)
class PartSpec:
    name: str
    material: str
    process: str
    quantity: int
    size_mm: tuple[float, float, float]
    complexity: int = 5
    volume_cm3: float | None = None  # from the CAD file when it is a closed mesh


def _process(value: str) -> str:
    return catalog.match_key(value, kind="process")


def _material(value: str) -> str:
    return catalog.match_key(value, kind="material")


def node_fit_problem(node: NodeLike, spec: PartSpec) -> str | None:
    """Why `node` cannot make `spec`, or None if it can (the part may be rotated to fit)."""
    if _process(spec.process) not in {_process(p) for p in node.processes}:
        return "process"
    if _material(spec.material) not in {_material(m) for m in node.materials}:
        return "material"
    build = sorted((node.build_x_mm, node.build_y_mm, node.build_z_mm))
    if any(p > b for p, b in zip(sorted(spec.size_mm), build, strict=True)):
        return "size"
    return None


@dataclass(frozen=True)
class Feasibility:
    candidates: list[int]  # node ids that can make the part
    problem: str  # "" when feasible, else why not, in words


def part_feasibility(spec: PartSpec, nodes: Sequence[NodeLike]) -> Feasibility:
    problems = {node.pk: node_fit_problem(node, spec) for node in nodes}
    candidates = [pk for pk, problem in problems.items() if problem is None]
    if candidates:
        return Feasibility(candidates, "")
    by_process = [n for n in nodes if problems[n.pk] != "process"]
    if not by_process:
        why = f"No approved node offers the process '{spec.process}'."
    elif not [n for n in by_process if problems[n.pk] != "material"]:
        why = f"No approved node offering '{spec.process}' works '{spec.material}'."
    else:
        x, y, z = spec.size_mm
        why = (
            f"No approved node offering '{spec.process}' in '{spec.material}' has a build "
            f"volume that fits {x:g} x {y:g} x {z:g} mm."
        )
    return Feasibility([], why)


def lot_sizes(quantity: int, candidates: int, duration_h: float) -> list[int]:
    """How a part's units are split into lots that run on different nodes: only when the
    whole part would take at least JOBS_SPLIT_MIN_HOURS on one node and more than one node can
    make it; as many lots as units, candidate nodes and MAX_LOTS allow, sizes within one."""
    if quantity < 2 or candidates < 2 or duration_h < settings.JOBS_SPLIT_MIN_HOURS:
        return [quantity]
    count = min(quantity, candidates, MAX_LOTS)
    base, extra = divmod(quantity, count)
    return [base + 1] * extra + [base] * (count - extra)


def money(value: float | Decimal) -> Decimal:
    return Decimal(str(value)).quantize(CENT, rounding=ROUND_HALF_UP)


class DurationPredictor(Protocol):
    """A learned model: hours per unit for each (part, node, geometric hours per unit)."""

    @property
    def label(self) -> str: ...

    def predict(self, rows: Sequence[tuple[PartSpec, NodeLike, float]]) -> list[float]: ...


def process_mode(process: str) -> str:
    return PROCESS_MODES.get(_process(process), DEFAULT_PROCESS)[0]


def geometric_hours(spec: PartSpec) -> tuple[float, float]:
    """Hours per unit (set-up included) and material cm3 per unit, from geometry alone."""
    mode, rate = PROCESS_MODES.get(_process(spec.process), DEFAULT_PROCESS)
    x, y, z = spec.size_mm
    box_cm3 = x * y * z / 1000
    part_cm3 = spec.volume_cm3 if spec.volume_cm3 is not None else box_cm3 * 0.4
    complexity = 0.6 + 0.08 * spec.complexity  # 1.0 at the middle of the 1-10 scale
    if mode == "additive":
        deposited = part_cm3 * 0.6  # shells plus infill
        hours = deposited / rate * complexity
        material_cm3 = deposited * 1.05  # purge and supports
    elif mode == "subtractive":
        stock = box_cm3 * 1.1  # stock with a machining margin
        hours = max(stock - part_cm3, 0.0) / rate * complexity
        material_cm3 = stock
    elif mode == "cutting":
        hours = 2 * (x + y) / rate / 60 * complexity
        material_cm3 = box_cm3
    else:
        hours = rate * complexity
        material_cm3 = 0.0
    return hours + SETUP_HOURS[mode], material_cm3


def part_estimate(
    spec: PartSpec, node: NodeLike, *, hours_per_unit: float | None = None
) -> dict[str, Any]:
    """One unit's and all units' figures on `node`; `hours_per_unit` from a learned model
    replaces the geometric hours."""
    mode = process_mode(spec.process)
    density, price_per_kg = MATERIALS.get(_material(spec.material), DEFAULT_MATERIAL)
    geometric, material_cm3 = geometric_hours(spec)
    hours = geometric if hours_per_unit is None else hours_per_unit
    energy = hours * node.rated_power_kw * UTILISATION[mode]
    grams = material_cm3 * density
    q = spec.quantity
    costs = {
        "material": money(grams * q / 1000 * price_per_kg),
        "energy": money(energy * q * float(settings.JOBS_ENERGY_PRICE_PER_KWH)),
        "machine_time": money(hours * q * MACHINE_RATES.get(node.kind, 20.0)),
    }
    return {
        "node": node.pk,
        "hours_per_unit": round(hours, 4),
        "duration_h": round(hours * q, 4),
        "energy_kwh": round(energy * q, 4),
        "material_g": round(grams * q, 2),
        "material_cm3": round(material_cm3 * q, 2),
        "cost": costs,
    }


def _learned_hours(
    specs: Sequence[PartSpec],
    feasible: list[Feasibility],
    by_pk: dict[int, NodeLike],
    model: DurationPredictor | None,
) -> dict[tuple[int, int], float]:
    """(part index, node id) -> learned hours per unit, predicted in one batch."""
    if model is None:
        return {}
    keys = [(i, pk) for i, f in enumerate(feasible) for pk in f.candidates]
    rows = [(specs[i], by_pk[pk], geometric_hours(specs[i])[0]) for i, pk in keys]
    return dict(zip(keys, model.predict(rows), strict=True)) if rows else {}


def job_estimate(
    specs: Sequence[PartSpec],
    nodes: Sequence[NodeLike],
    *,
    now: datetime,
    duration_model: DurationPredictor | None = None,
) -> dict[str, Any]:
    """Per-part feasibility and estimates on each part's cheapest candidate, and the job's
    totals. A long part's units are split into lots on several candidate nodes (`lot_sizes`),
    and parts run in parallel (swarm), so the job takes as long as its slowest lot."""
    by_pk = {node.pk: node for node in nodes}
    parts: list[dict[str, Any]] = []
    problems: dict[str, list[str]] = {}
    feasibility = [part_feasibility(spec, nodes) for spec in specs]
    learned = _learned_hours(specs, feasibility, by_pk, duration_model)
    for index, spec in enumerate(specs):
        feasible = feasibility[index]
        if not feasible.candidates:
            problems[f"parts[{index}]"] = [f"{spec.name}: {feasible.problem}"]
            parts.append({"index": index, "name": spec.name, "feasible": False})
            continue
        options = [
            part_estimate(spec, by_pk[pk], hours_per_unit=learned.get((index, pk)))
            for pk in feasible.candidates
        ]
        best = min(options, key=lambda e: (sum(e["cost"].values()), e["duration_h"]))
        lots = lot_sizes(spec.quantity, len(feasible.candidates), best["duration_h"])
        wall = best["hours_per_unit"] * max(lots)
        parts.append(
            {
                "index": index,
                "name": spec.name,
                "feasible": True,
                "candidates": feasible.candidates,
                "lots": lots,
                "wall_time_h": round(wall, 4),
                **best,
            }
        )
    feasible_parts = [p for p in parts if p["feasible"]]
    material = sum((p["cost"]["material"] for p in feasible_parts), Decimal("0.00"))
    energy = sum((p["cost"]["energy"] for p in feasible_parts), Decimal("0.00"))
    machine = sum((p["cost"]["machine_time"] for p in feasible_parts), Decimal("0.00"))
    fee = money(float(material + energy + machine) * float(settings.JOBS_PLATFORM_FEE_RATE))
    wall_h = max((p["wall_time_h"] for p in feasible_parts), default=0.0)
    return {
        "feasible": not problems,
        "problems": problems,
        "duration_h": round(sum(p["duration_h"] for p in feasible_parts), 4),
        "wall_time_h": round(wall_h, 4),
        "energy_kwh": round(sum(p["energy_kwh"] for p in feasible_parts), 4),
        "material_g": round(sum(p["material_g"] for p in feasible_parts), 2),
        "material_cm3": round(sum(p["material_cm3"] for p in feasible_parts), 2),
        "cost": {
            "material": str(material),
            "energy": str(energy),
            "machine_time": str(machine),
            "platform_fee": str(fee),
            "total": str(material + energy + machine + fee),
            "currency": settings.JOBS_CURRENCY,
        },
        "earliest_completion": (now + timedelta(hours=wall_h)).isoformat()
        if not problems
        else None,
        "parts": [
            {**p, "cost": {k: str(v) for k, v in p["cost"].items()}} if p["feasible"] else p
            for p in parts
        ],
        "model": duration_model.label if duration_model is not None else "geometric",
    }
