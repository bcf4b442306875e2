"""The scheduler's core: places parts on nodes and explains each choice. Pure (no database):
`apps/jobs/services.py` loads the state, calls `schedule`, and stores the result.

Each feasible node gets five scores in [0, 1], combined with configurable weights (defaults:
capability match 0.3, spare capacity 0.2, energy efficiency 0.2, material availability 0.15,
proximity to the designer 0.15):
- capability: the machine fits the part snugly (a small part on a huge machine scores lower);
- spare capacity: little work already queued on the node (hours), 1 / (1 + backlog / 8 h);
- energy efficiency: the least power-hungry candidate scores 1, others their power ratio;
- material availability: the node's stock of the part's material, 0-1 (1 when not tracked);
- proximity: 1 / (1 + km / 500) from the designer; 0.5 when either location is unknown.

Parts are placed in order of priority (high first), then deadline (soonest first). A part
whose (material, process) matches the last part placed on a node in this run is batched there
(a bonus, and it saves that node's set-up time) when that finishes it no later than
the best machine without the batch would. Where a deadline exists, nodes that finish in
time are preferred. Assembly parts wait for all other parts of their job (the swarm), so they
start when the last of those finishes.
"""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime

import numpy as np

DEFAULT_WEIGHTS = {
    "capability": 0.3,
    "capacity": 0.2,
    "energy": 0.2,
    "material": 0.15,
    "proximity": 0.15,
}
BATCH_BONUS = 0.1
EXPLAIN_TOP = 5
ASSEMBLY = "assembly"


@dataclass(frozen=True)
class NodeState:
    id: int
    processes: frozenset[str]
    materials: frozenset[str]
    build_mm: tuple[float, float, float]  # sorted ascending
    rated_power_kw: float
    latitude: float | None = None
    longitude: float | None = None
    backlog_h: float = 0.0  # work already queued on the node
    stock: dict[str, float] = field(default_factory=dict)  # material -> availability 0-1


@dataclass(frozen=True)
class PartTask:
    id: int
    job_id: int
    priority: int
    material: str
    process: str
    size_mm: tuple[float, float, float]
    hours: float  # machine hours for all units, set-up included
    setup_h: float = 0.0
    deadline_h: float | None = None  # hours from now
    latitude: float | None = None
    longitude: float | None = None
    ready_h: float = 0.0  # earliest start (an assembly: when its job's other parts finish)
    excluded: frozenset[int] = frozenset()  # node ids that must not take it (declined it)


@dataclass
class Assignment:
    part: int
    node: int | None
    start_h: float = 0.0
    finish_h: float = 0.0
    late: bool = False
    batched: bool = False
    reason: str = ""
    candidates: list[dict[str, float]] = field(default_factory=list)  # top scores, explained


@dataclass
class Plan:
    assignments: list[Assignment]
    makespan_h: float
    weights: dict[str, float]

    def by_part(self) -> dict[int, Assignment]:
        return {a.part: a for a in self.assignments}


def _norm(value: str) -> str:
    return " ".join(value.lower().split())


def _km(lat1: float, lon1: float, lat2: np.ndarray, lon2: np.ndarray) -> np.ndarray:
    p1, p2 = math.radians(lat1), np.radians(lat2)
    dphi, dl = p2 - p1, np.radians(lon2 - lon1)
    a = np.sin(dphi / 2) ** 2 + math.cos(p1) * np.cos(p2) * np.sin(dl / 2) ** 2
    return np.asarray(2 * 6371.0 * np.arcsin(np.sqrt(a)))


class _Fleet:
    """Nodes as arrays, indexed by (process, material) so each part scores only its
    candidates, vectorised."""

    def __init__(self, nodes: list[NodeState]) -> None:
        self.nodes = nodes
        self.ids = np.array([n.id for n in nodes], dtype=np.int64)
        self.build = np.array([n.build_mm for n in nodes], dtype=float).reshape(-1, 3)
        self.power = np.array([n.rated_power_kw for n in nodes], dtype=float)
        self.lat = np.array([np.nan if n.latitude is None else n.latitude for n in nodes])
        self.lon = np.array([np.nan if n.longitude is None else n.longitude for n in nodes])
        self.backlog = np.array([n.backlog_h for n in nodes], dtype=float)
        self.last_batch: list[tuple[str, str] | None] = [None] * len(nodes)
        self.index: dict[tuple[str, str], np.ndarray] = {}
        groups: dict[tuple[str, str], list[int]] = defaultdict(list)
        for i, node in enumerate(nodes):
            for process in node.processes:
                for material in node.materials:
                    groups[(_norm(process), _norm(material))].append(i)
        self.index = {key: np.array(rows, dtype=np.int64) for key, rows in groups.items()}

    def candidates(self, part: PartTask) -> np.ndarray:
        rows = self.index.get((_norm(part.process), _norm(part.material)))
        if rows is None:
            return np.empty(0, dtype=np.int64)
        size = np.sort(np.asarray(part.size_mm, dtype=float))
        fits = np.all(self.build[rows] >= size, axis=1)
        if part.excluded:
            fits &= ~np.isin(self.ids[rows], list(part.excluded))
        return rows[fits]


def schedule(
    parts: list[PartTask],
    nodes: list[NodeState],
    *,
    weights: dict[str, float] | None = None,
) -> Plan:
    w = {**DEFAULT_WEIGHTS, **(weights or {})}
    fleet = _Fleet(nodes)
    order = sorted(
        parts,
        key=lambda p: (
            p.process == ASSEMBLY,  # assemblies after the parts they join
            -p.priority,
            p.deadline_h if p.deadline_h is not None else math.inf,
            p.job_id,
            p.id,
        ),
    )
    job_finish: dict[int, float] = defaultdict(float)
    assignments: list[Assignment] = []
    for part in order:
        rows = fleet.candidates(part)
        if rows.size == 0:
            why = "no suitable node available"
            if part.excluded:
                why += f" (declined by {len(part.excluded)} node(s))"
            assignments.append(Assignment(part.id, None, reason=why))
            continue
        key = (_norm(part.material), _norm(part.process))
        same_batch = np.array([fleet.last_batch[r] == key for r in rows])
        hours = np.where(same_batch, part.hours - part.setup_h, part.hours)
        ready = max(part.ready_h, job_finish[part.job_id] if part.process == ASSEMBLY else 0.0)
        start = np.maximum(fleet.backlog[rows], ready)
        finish = start + hours
        # Batch only where it pays: no later than on the best machine without the batch, so
        # a job's parts still spread over the fleet instead of queueing behind each other.
        others = finish[~same_batch]
        batched = same_batch & (finish <= (others.min() if others.size else np.inf))
        part_box = float(np.prod(part.size_mm))
        capability = 0.5 + 0.5 * np.cbrt(part_box / np.prod(fleet.build[rows], axis=1))
        capacity = 1.0 / (1.0 + fleet.backlog[rows] / 8.0)
        power = fleet.power[rows]
        energy = power.min() / power
        material = np.array(
            [fleet.nodes[r].stock.get(part.material, 1.0) for r in rows], dtype=float
        )
        if part.latitude is not None and part.longitude is not None:
            km = _km(part.latitude, part.longitude, fleet.lat[rows], fleet.lon[rows])
            proximity = np.where(np.isnan(km), 0.5, 1.0 / (1.0 + km / 500.0))
        else:
            proximity = np.full(rows.size, 0.5)
        total = (
            w["capability"] * capability
            + w["capacity"] * capacity
            + w["energy"] * energy
            + w["material"] * material
            + w["proximity"] * proximity
            + BATCH_BONUS * batched
        )
        late = np.zeros(rows.size, dtype=bool)
        if part.deadline_h is not None:
            late = finish > part.deadline_h
        # in time beats late; then the best score; a late part goes where it finishes first
        rank = np.where(late, -finish if late.all() else -np.inf, total)
        best = int(np.argmax(rank))
        row = int(rows[best])
        fleet.backlog[row] = float(finish[best])
        fleet.last_batch[row] = key
        if part.process != ASSEMBLY:
            job_finish[part.job_id] = max(job_finish[part.job_id], float(finish[best]))
        top = np.argsort(-total)[:EXPLAIN_TOP]
        explained = [
            {
                "node": int(fleet.ids[rows[i]]),
                "capability": round(float(capability[i]), 3),
                "capacity": round(float(capacity[i]), 3),
                "energy": round(float(energy[i]), 3),
                "material": round(float(material[i]), 3),
                "proximity": round(float(proximity[i]), 3),
                "batch": bool(batched[i]),
                "finish_h": round(float(finish[i]), 3),
                "late": bool(late[i]),
                "total": round(float(total[i]), 4),
            }
            for i in top
        ]
        reason = f"best of {rows.size} suitable node(s), score {total[best]:.3f}"
        if late[best]:
            reason = f"no node meets the deadline; earliest finish of {rows.size} node(s)"
        elif batched[best]:
            reason += f"; batched with other {part.material} {part.process} work"
        assignments.append(
            Assignment(
                part.id,
                int(fleet.ids[row]),
                start_h=round(float(start[best]), 4),
                finish_h=round(float(finish[best]), 4),
                late=bool(late[best]),
                batched=bool(batched[best]),
                reason=reason,
                candidates=explained,
            )
        )
    return Plan(assignments, float(fleet.backlog.max(initial=0.0)), w)


def first_fit(parts: list[PartTask], nodes: list[NodeState]) -> Plan:
    """The baseline: each part, in arrival order, on the first node that can make it."""
    fleet = _Fleet(nodes)
    assignments = []
    for part in parts:
        rows = fleet.candidates(part)
        if rows.size == 0:
            assignments.append(Assignment(part.id, None, reason="no suitable node"))
            continue
        row = int(rows.min())
        start = float(fleet.backlog[row])
        fleet.backlog[row] = start + part.hours
        assignments.append(
            Assignment(part.id, int(fleet.ids[row]), start_h=start, finish_h=start + part.hours)
        )
    return Plan(assignments, float(fleet.backlog.max(initial=0.0)), {})


def hours_until(moment: datetime | None, now: datetime) -> float | None:
    return None if moment is None else (moment - now).total_seconds() / 3600
