"""The scheduler's core: places parts on nodes and explains each choice. Pure (no database):
`apps/jobs/services/scheduling.py` loads the state, calls `schedule`, and stores the result.
One run (`_Run`) takes each part, in order, through four steps: `candidates` (the nodes that
may take it and when each would run it), `score` (and the best of them), `explain` (the
assignment with its scores and reasons) and `commit` (the node's timeline, the site's load,
stock, the job's and batch's progress); energy-aware moves follow once every part is placed.

Each feasible node gets six scores in [0, 1], combined with configurable weights (defaults:
capability match 0.24, spare capacity 0.16, energy efficiency 0.16, material availability 0.12,
proximity to the designer 0.12, reliability 0.2; the first five, and the batch bonus, are the
earlier defaults scaled by 0.8, so equally healthy nodes rank among themselves as before):
- capability: the machine fits the part snugly (a small part on a huge machine scores lower);
- spare capacity: little work already queued on the node (hours), 1 / (1 + backlog / 8 h),
  where waiting for a maintenance window or a site's power cap counts as backlog;
- energy efficiency: the least power-hungry candidate scores 1, others their power ratio;
- material availability: the node's stock of the part's material against what the part needs,
  0-1 (1 when the node does not track it); stock placed in this run is used up as it goes;
- proximity: 1 / (1 + km / 500) from the designer; 0.5 when either location is unknown;
- reliability: the node's health (1 - its risk, from maintenance through `NodeRisk`, see
  apps/jobs/providers.py) times the chance it does not fail during the part's run, taking the
  predicted failure probability `p` within `failure_within_h` as a constant hazard:
  (1 - p) ** (run hours / failure_within_h).

Sick nodes are skipped, and each assignment says which and why (`skipped`, by node name):
- always, a node with `excluded_reason` (maintenance's hard exclusions: a critical open ticket,
  offline, risk over the threshold; or silent, from the jobs app itself);
- for one part, a node whose remaining useful life ends before the part would finish there,
  or whose chance of failing during the part's run is over `max_failure` (a node with 12 h of
  life left still takes a 2 h part, not a 20 h one).
When every suitable node is skipped the part waits, its reason naming them.

Parts are placed in order of priority (high first), then deadline (soonest first). A part
whose (material, process) matches the last part placed on a node in this run is batched there
(a bonus of 0.08, and it saves that node's set-up time) when that finishes it no later than
the best machine without the batch would. Where a deadline exists, nodes that finish in
time are preferred. Assembly parts wait for all other parts of their job (the swarm), so they
start when the last of those finishes.

A job's parts that share a batch group run together: on one node that can make them all (chosen
for the first of them), one after the other, with one set-up; they are not moved for energy.

A part may be limited to some nodes (`PartTask.only`: capacity bought on a vendor's machines)
or kept off others (`excluded`: nodes that declined it); both narrow its candidates.

Time on a node is a timeline, not a queue's end: maintenance windows block it, and a part
moved later leaves a gap that later parts may fill. Two energy rules (input from apps/energy
through `EnergyOutlook`, see apps/jobs/providers.py):
- a site's power cap: a part starts only when its heat-up peak (rated power for the node's
  heat-up time) and its running load fit under the cap next to everything already placed at
  that site, so heat-up peaks are staggered and the cap is never exceeded;
- a job whose timing is not ASAP and which has a deadline moves, once every part is placed, on
  its chosen node to the start that minimises its energy objective (price and carbon, or carbon
  alone) over the site's hourly outlook, using only time the plan leaves free (so it delays
  no other part), finishing by its deadline and inside the outlook.
"""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime

import numpy as np

from apps.vendors import catalog

DEFAULT_WEIGHTS = {
    "capability": 0.24,
    "capacity": 0.16,
    "energy": 0.16,
    "material": 0.12,
    "proximity": 0.12,
    "reliability": 0.2,
}
MAX_FAILURE = 0.5  # a part skips a node more likely than this to fail during its run
BATCH_BONUS = 0.08  # 0.1 before reliability, scaled by 0.8 like the other weights
EXPLAIN_TOP = 5
ASSEMBLY = "assembly"


DEFAULT_LOAD = 0.5  # share of rated power a running job draws, when the part does not say
TIMING_ASAP = "asap"
TIMING_LOWEST_CARBON = "lowest_carbon"
MIN_GAIN = 0.01  # an energy-aware move must save at least 1% of the objective


@dataclass(frozen=True)
class SiteOutlook:
    """One site's next hours. Index 0 covers [now, now + 1 h), index 1 the hour after, ..."""

    price: tuple[float, ...]  # money per kWh drawn from the site's mix
    carbon: tuple[float, ...]  # kg CO2e per kWh drawn
    cap_kw: float | None = None  # the most the site's machines may draw together


@dataclass(frozen=True)
class EnergyOutlook:
    sites: dict[int, SiteOutlook] = field(default_factory=dict)
    node_site: dict[int, int] = field(default_factory=dict)  # node id -> key in `sites`
    peak_h: dict[int, float] = field(default_factory=dict)  # node id -> heat-up at rated power
    currency: str = "EUR"


@dataclass(frozen=True)
class NodeRisk:
    """What maintenance tells the scheduler about one node's health (apps/jobs/providers.py)."""

    risk: float = 0.0  # 0 healthy .. 1 as sick as it gets; the reliability score is 1 - risk
    excluded: bool = False  # no work at all: critical open ticket, offline, ...
    reasons: tuple[str, ...] = ()  # human, the most serious first: "critical ticket #3"
    rul_h: float | None = None  # remaining useful life, hours from now
    failure_p: float | None = None  # predicted probability of failure within failure_within_h
    failure_within_h: float = 24.0
    offline: bool = False  # has reported before and has been silent too long


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
    stock: dict[str, float] = field(default_factory=dict)  # material -> grams on hand
    site: int | None = None  # key into the outlook's sites (power cap, prices)
    peak_h: float = 0.0  # heat-up at rated power when a part starts
    blocked: tuple[tuple[float, float], ...] = ()  # hours from now it cannot work (maintenance)
    name: str = ""  # for explanations ("Mill-01 skipped: ..."); "node <id>" when empty
    health: float = 1.0  # reliability before the part's own run: 1 - NodeRisk.risk
    rul_h: float | None = None  # remaining useful life: no part may finish after it
    failure_p: float | None = None  # probability of failure within failure_within_h
    failure_within_h: float = 24.0
    excluded_reason: str | None = None  # set: the node takes no work ("critical ticket #3")

    @property
    def label(self) -> str:
        return self.name or f"node {self.id}"


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
    only: frozenset[int] | None = None  # when set, the only node ids that may take it (booked)
    only_why: str = ""  # what `only` stands for, in words ("printers with PLA #e11d48 loaded")
    material_g: float = 0.0  # material all units need
    load: float = DEFAULT_LOAD  # share of the node's rated power while it runs
    timing: str = TIMING_ASAP  # or "balanced" / "lowest_carbon" (needs a deadline)
    batch: str = ""  # the job's batch group: its parts run on one node, back to back


@dataclass
class Assignment:
    part: int
    node: int | None
    start_h: float = 0.0
    finish_h: float = 0.0
    late: bool = False
    batched: bool = False
    reason: str = ""
    candidates: list[dict[str, float | None]] = field(default_factory=list)  # scores, explained
    skipped: list[dict[str, int | str]] = field(default_factory=list)  # {node, name, reason}
    shifted_h: float = 0.0  # moved by this much (later > 0) for cheaper / greener hours
    staggered_h: float = 0.0  # held back this much by the site's power cap
    kwh: float | None = None  # with an outlook for the node's site: the energy it draws,
    energy_cost: float | None = None  # what that costs at the outlook's prices
    co2e_kg: float | None = None  # and emits at its carbon intensities


@dataclass
class Plan:
    assignments: list[Assignment]
    makespan_h: float
    weights: dict[str, float]

    def by_part(self) -> dict[int, Assignment]:
        return {a.part: a for a in self.assignments}


def _process(value: str) -> str:
    return catalog.match_key(value, kind="process")


def _material(value: str) -> str:
    return catalog.match_key(value, kind="material")


def _km(lat1: float, lon1: float, lat2: np.ndarray, lon2: np.ndarray) -> np.ndarray:
    p1, p2 = math.radians(lat1), np.radians(lat2)
    dphi, dl = p2 - p1, np.radians(lon2 - lon1)
    a = np.sin(dphi / 2) ** 2 + math.cos(p1) * np.cos(p2) * np.sin(dl / 2) ** 2
    return np.asarray(2 * 6371.0 * np.arcsin(np.sqrt(a)))


class _Timeline:
    """A node's busy intervals (hours from now), sorted and merged: usually one, [0, end)."""

    __slots__ = ("busy",)

    def __init__(self, backlog_h: float, blocked: tuple[tuple[float, float], ...]) -> None:
        self.busy: list[tuple[float, float]] = []
        if backlog_h > 0:
            self.add(0.0, backlog_h)
        for start, end in blocked:
            if end > max(start, 0.0):
                self.add(max(start, 0.0), end)

    @property
    def simple(self) -> bool:
        """True when the node is free from its end on: start = max(end, ready)."""
        return len(self.busy) <= 1 and (not self.busy or self.busy[0][0] <= 0.0)

    @property
    def end(self) -> float:
        return self.busy[-1][1] if self.busy else 0.0

    @property
    def hours(self) -> float:
        return sum(b - a for a, b in self.busy)

    def earliest(self, at: float, hours: float) -> float:
        """The first start >= `at` with `hours` free after it."""
        start = at
        for a, b in self.busy:
            if b <= start:
                continue
            if a >= start + hours:
                break
            start = b
        return start

    def remove(self, start: float, end: float) -> None:
        kept = []
        for a, b in self.busy:
            if b <= start or a >= end:
                kept.append((a, b))
                continue
            if a < start:
                kept.append((a, start))
            if b > end:
                kept.append((end, b))
        self.busy = kept

    def add(self, start: float, end: float) -> None:
        merged = [(start, end)]
        kept = []
        for a, b in self.busy:
            if b < merged[0][0] or a > merged[0][1]:
                kept.append((a, b))
            else:
                merged[0] = (min(a, merged[0][0]), max(b, merged[0][1]))
        self.busy = sorted(kept + merged)


class _SiteLoad:
    """What a capped site's machines draw over time: (start, end, kW) segments."""

    def __init__(self, cap_kw: float) -> None:
        self.cap = cap_kw
        self.segments: list[tuple[float, float, float]] = []

    def peak(self, a: float, b: float) -> float:
        """The highest total draw at any moment in [a, b)."""
        moments = [a] + [s for s, _, _ in self.segments if a < s < b]
        return max(
            (sum(kw for s, e, kw in self.segments if s <= m < e) for m in moments), default=0.0
        )

    def fits(self, start: float, profile: list[tuple[float, float, float]]) -> bool:
        return all(
            self.peak(start + a, start + b) + kw <= self.cap + 1e-9 for a, b, kw in profile if b > a
        )

    def add(self, start: float, profile: list[tuple[float, float, float]]) -> None:
        self.segments.extend((start + a, start + b, kw) for a, b, kw in profile if b > a)

    def remove(self, start: float, profile: list[tuple[float, float, float]]) -> None:
        for a, b, kw in profile:
            if b > a:
                self.segments.remove((start + a, start + b, kw))

    def releases_after(self, at: float) -> list[float]:
        return sorted({e for _, e, _ in self.segments if e > at})


def _profile(node: NodeState, part: PartTask, hours: float) -> list[tuple[float, float, float]]:
    """The part's draw on `node` relative to its start: heat-up at rated power, then its load."""
    peak = min(node.peak_h, hours)
    running = node.rated_power_kw * part.load
    return [(0.0, peak, node.rated_power_kw), (peak, hours, running)]


def _curve(values: tuple[float, ...], hours: float) -> np.ndarray:
    """An hourly curve long enough for `hours`, its last day repeated past its end."""
    curve = np.asarray(values, dtype=float)
    need = int(math.ceil(hours)) + 1
    if curve.size == 0 or curve.size >= need:
        return curve
    day = curve[-24:] if curve.size >= 24 else curve
    extra = np.resize(day, need - curve.size)
    return np.concatenate([curve, extra])


def _integral(curve: np.ndarray, a: float, b: float) -> float:
    """The integral of an hourly step curve over [a, b) hours."""
    if b <= a:
        return 0.0
    cum = np.concatenate([[0.0], np.cumsum(curve)])

    def upto(t: float) -> float:
        i = min(int(t), curve.size - 1)
        return float(cum[i] + (t - i) * curve[i])

    return upto(b) - upto(a)


def _energy(curve: np.ndarray, start: float, profile: list[tuple[float, float, float]]) -> float:
    return sum(kw * _integral(curve, start + a, start + b) for a, b, kw in profile)


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
        self.timelines = [_Timeline(n.backlog_h, n.blocked) for n in nodes]
        self.end = np.array([t.end for t in self.timelines], dtype=float)
        self.special = np.array([not t.simple for t in self.timelines], dtype=bool)
        self.site = np.array([-1 if n.site is None else n.site for n in nodes], dtype=np.int64)
        self.stock = [{_material(m): g for m, g in n.stock.items()} for n in nodes]
        self.tracked = any(self.stock)
        self.last_batch: list[tuple[str, str] | None] = [None] * len(nodes)
        self.health = np.array([n.health for n in nodes], dtype=float)
        self.sick = np.array([bool(n.excluded_reason) for n in nodes], dtype=bool)
        self.rul = np.array([math.inf if n.rul_h is None else n.rul_h for n in nodes])
        self.failure_p = np.array([n.failure_p or 0.0 for n in nodes], dtype=float)
        self.failure_within = np.array([max(n.failure_within_h, 1e-9) for n in nodes])
        self.watch = bool(self.sick.any() or np.isfinite(self.rul).any() or self.failure_p.any())
        self.index: dict[tuple[str, str], np.ndarray] = {}
        groups: dict[tuple[str, str], list[int]] = defaultdict(list)
        for i, node in enumerate(nodes):
            for process in node.processes:
                for material in node.materials:
                    groups[(_process(process), _material(material))].append(i)
        self.index = {key: np.array(rows, dtype=np.int64) for key, rows in groups.items()}

    def candidates(self, part: PartTask) -> np.ndarray:
        rows = self.index.get((_process(part.process), _material(part.material)))
        if rows is None:
            return np.empty(0, dtype=np.int64)
        size = np.sort(np.asarray(part.size_mm, dtype=float))
        fits = np.all(self.build[rows] >= size, axis=1)
        if part.excluded:
            fits &= ~np.isin(self.ids[rows], list(part.excluded))
        if part.only is not None:
            fits &= np.isin(self.ids[rows], list(part.only))
        return rows[fits]


def schedule(
    parts: list[PartTask],
    nodes: list[NodeState],
    *,
    weights: dict[str, float] | None = None,
    sites: dict[int, SiteOutlook] | None = None,
    max_failure: float = MAX_FAILURE,
) -> Plan:
    run = _Run(parts, nodes, {**DEFAULT_WEIGHTS, **(weights or {})}, sites or {}, max_failure)
    for part in run.order():
        run.place(part)
    run.move_for_energy()
    return run.plan()


_NONE = np.empty(0)


class _Candidates:
    """The nodes (fleet rows) that may take a part and when each would run it, aligned; or,
    with `wait` set, why none may."""

    __slots__ = (
        "rows",
        "skipped",
        "wait",
        "key",
        "ready",
        "same_batch",
        "hours",
        "free",
        "start",
        "finish",
    )

    def __init__(self, rows: np.ndarray, skipped: list[dict[str, int | str]]) -> None:
        self.rows = rows
        self.skipped = skipped  # sick or worn nodes, and why
        self.wait = ""
        self.key = ("", "")  # (material, process), what batches on a node
        self.ready = 0.0  # the part's earliest start
        self.same_batch: np.ndarray = _NONE  # the node last ran the key: no set-up
        self.hours: np.ndarray = _NONE  # the part's run there
        self.free: np.ndarray = _NONE  # the node is free from then on
        self.start: np.ndarray = _NONE  # ... and its site's power cap allows it
        self.finish: np.ndarray = _NONE

    def keep(self, kept: np.ndarray) -> None:
        self.rows, self.same_batch = self.rows[kept], self.same_batch[kept]
        self.hours, self.free = self.hours[kept], self.free[kept]
        self.start, self.finish = self.start[kept], self.finish[kept]


@dataclass
class _Scores:
    """Each candidate's scores, aligned with `_Candidates.rows`, and the chosen one."""

    capability: np.ndarray
    capacity: np.ndarray
    energy: np.ndarray
    material: np.ndarray
    proximity: np.ndarray
    reliability: np.ndarray
    batched: np.ndarray
    total: np.ndarray
    late: np.ndarray
    best: int  # index of the chosen candidate


class _Run:
    """One call of `schedule`: the fleet's state as parts are placed, and the plan so far (the
    steps are in the module's docstring)."""

    def __init__(
        self,
        parts: list[PartTask],
        nodes: list[NodeState],
        weights: dict[str, float],
        sites: dict[int, SiteOutlook],
        max_failure: float,
    ) -> None:
        self.parts = parts
        self.weights = weights
        self.max_failure = max_failure
        self.fleet = _Fleet(nodes)
        self.loads = _site_loads(nodes, sites)
        self.capped = np.array(sorted(self.loads), dtype=np.int64)
        horizon = max([p.deadline_h or 0.0 for p in parts] + [48.0]) + 24.0
        self.curves = {
            key: (_curve(site.price, horizon), _curve(site.carbon, horizon))
            for key, site in sites.items()
            if site.price and site.carbon
        }
        self.batches: dict[tuple[int, str], list[PartTask]] = defaultdict(list)
        for p in parts:
            if p.batch:
                self.batches[(p.job_id, p.batch)].append(p)
        self.leader = {key: min(p.id for p in mates) for key, mates in self.batches.items()}
        self.job_finish: dict[int, float] = defaultdict(float)
        self.batch_row: dict[tuple[int, str], int] = {}  # the node a batch's first part took
        self.batch_finish: dict[tuple[int, str], float] = {}  # when its latest part finishes
        self.assignments: list[Assignment] = []
        self.movable: list[_Placed] = []

    def order(self) -> list[PartTask]:
        return sorted(
            self.parts,
            key=lambda p: (
                p.process == ASSEMBLY,  # assemblies after the parts they join
                -p.priority,
                p.deadline_h if p.deadline_h is not None else math.inf,
                p.job_id,
                self.leader.get((p.job_id, p.batch), p.id),  # a batch's parts one after another
                p.id,
            ),
        )

    def place(self, part: PartTask) -> None:
        found = self.candidates(part)
        if found.wait:
            self.assignments.append(
                Assignment(part.id, None, reason=found.wait, skipped=found.skipped[:EXPLAIN_TOP])
            )
            return
        scores = self.score(part, found)
        assignment = self.explain(part, found, scores)
        self.commit(part, found, scores, assignment)

    def candidates(self, part: PartTask) -> _Candidates:
        """The nodes that can make the part (process, material, size; not declined, booked
        when it is limited), are not sick, suit its batch, and would finish it within their
        remaining life and failure risk; with when each would run it."""
        found = self._suitable(part)
        if found.wait:
            return found
        self._timing(part, found)
        if self.fleet.watch:
            self._drop_worn(part, found)
            if found.wait:
                return found
        if np.isinf(found.start).all():
            found.wait = "no suitable node can start it under its site's power cap"
            found.wait += _skipped_text(found.skipped, lead="; ")
        return found

    def _suitable(self, part: PartTask) -> _Candidates:
        fleet = self.fleet
        rows = fleet.candidates(part)
        skipped: list[dict[str, int | str]] = []
        if fleet.watch and rows.size:
            sick = fleet.sick[rows]
            skipped += [_skip(fleet.nodes[r], fleet.nodes[r].excluded_reason) for r in rows[sick]]
            rows = rows[~sick]
        batch = (part.job_id, part.batch)
        if part.batch and batch in self.batch_row:
            rows = rows[rows == self.batch_row[batch]]  # where the batch's first part went
        elif part.batch:
            for mate in self.batches[batch]:  # a node that can make every part of the batch
                if mate is not part:
                    rows = np.intersect1d(rows, fleet.candidates(mate))
            if rows.size == 0:
                found = _Candidates(rows, skipped)
                found.wait = (
                    f"no single suitable node can make all {len(self.batches[batch])} parts of "
                    f"batch '{part.batch}' now"
                ) + _skipped_text(skipped, lead="; ")
                return found
        found = _Candidates(rows, skipped)
        if rows.size == 0:
            found.wait = _none(part, skipped)
        return found

    def _timing(self, part: PartTask, found: _Candidates) -> None:
        fleet, rows = self.fleet, found.rows
        found.key = key = (_material(part.material), _process(part.process))
        found.same_batch = np.array([fleet.last_batch[r] == key for r in rows])
        hours = np.where(found.same_batch, part.hours - part.setup_h, part.hours)
        ready = max(part.ready_h, self.job_finish[part.job_id] if part.process == ASSEMBLY else 0.0)
        # and after the batch's part before it
        ready = max(ready, self.batch_finish.get((part.job_id, part.batch), 0.0))
        free = np.maximum(fleet.end[rows], ready)  # the common case: free from the node's end
        start = free.copy()
        # nodes with gaps or windows in their timeline, or at a capped site, look closer
        for i in np.flatnonzero(fleet.special[rows] | np.isin(fleet.site[rows], self.capped)):
            r = int(rows[i])
            node = fleet.nodes[r]
            load = self.loads.get(node.site) if node.site is not None else None
            start[i] = _earliest(fleet.timelines[r], load, node, part, ready, float(hours[i]))
        found.ready, found.hours, found.free, found.start = ready, hours, free, start
        found.finish = start + hours

    def _drop_worn(self, part: PartTask, found: _Candidates) -> None:
        """Skips nodes whose remaining life ends before the part would finish there, or which
        are likelier than `max_failure` to fail during its run."""
        fleet, rows, finish = self.fleet, found.rows, found.finish
        run_fails = 1.0 - (1.0 - fleet.failure_p[rows]) ** (
            found.hours / fleet.failure_within[rows]
        )
        worn = np.isfinite(finish) & (finish > fleet.rul[rows])
        risky = run_fails > self.max_failure
        if not (worn | risky).any():
            return
        for i in np.flatnonzero(worn | risky):
            node = fleet.nodes[int(rows[i])]
            because = []
            if worn[i]:
                because.append(
                    f"RUL {node.rul_h:.0f} h, the part would finish in {finish[i]:.1f} h"
                )
            if risky[i]:
                because.append(f"predicted failure {run_fails[i]:.2f} within the run")
            found.skipped.append(_skip(node, ", ".join(because)))
        found.keep(~(worn | risky))
        if found.rows.size == 0:
            found.wait = _none(part, found.skipped)

    def score(self, part: PartTask, found: _Candidates) -> _Scores:
        """Each candidate's weighted scores; then in time beats late, then the best total, and
        a part late everywhere goes where it finishes first."""
        fleet, w, rows = self.fleet, self.weights, found.rows
        start, finish = found.start, found.finish
        # Batch only where it pays: no later than on the best machine without the batch, so
        # a job's parts still spread over the fleet instead of queueing behind each other.
        others = finish[~found.same_batch]
        batched = found.same_batch & (finish <= (others.min() if others.size else np.inf))
        part_box = float(np.prod(part.size_mm))
        capability = 0.5 + 0.5 * np.cbrt(part_box / np.prod(fleet.build[rows], axis=1))
        # queued work, or the wait for a window or the power cap when that is longer
        with np.errstate(invalid="ignore"):
            wait = np.maximum(fleet.backlog[rows], start - found.ready)
        capacity = 1.0 / (1.0 + wait / 8.0)
        power = fleet.power[rows]
        energy = power.min() / power
        material = np.ones(rows.size)
        if fleet.tracked:
            material = np.array([_stock_score(fleet.stock[r], part) for r in rows], dtype=float)
        if part.latitude is not None and part.longitude is not None:
            km = _km(part.latitude, part.longitude, fleet.lat[rows], fleet.lon[rows])
            proximity = np.where(np.isnan(km), 0.5, 1.0 / (1.0 + km / 500.0))
        else:
            proximity = np.full(rows.size, 0.5)
        reliability = fleet.health[rows]
        if fleet.watch:
            survives = (1.0 - fleet.failure_p[rows]) ** (found.hours / fleet.failure_within[rows])
            reliability = reliability * survives
        total = (
            w["capability"] * capability
            + w["capacity"] * capacity
            + w["energy"] * energy
            + w["material"] * material
            + w["proximity"] * proximity
            + w["reliability"] * reliability
            + BATCH_BONUS * batched
        )
        total = np.where(np.isinf(start), -np.inf, total)
        late = np.zeros(rows.size, dtype=bool)
        if part.deadline_h is not None:
            late = finish > part.deadline_h
        rank = np.where(late, -finish if late.all() else -np.inf, total)
        return _Scores(
            capability,
            capacity,
            energy,
            material,
            proximity,
            reliability,
            batched,
            total,
            late,
            best=int(np.argmax(rank)),
        )

    def explain(self, part: PartTask, found: _Candidates, scores: _Scores) -> Assignment:
        """The part's assignment to the best candidate: the top candidates' scores, the skipped
        nodes, and the reason in words."""
        fleet, rows, finish, total = self.fleet, found.rows, found.finish, scores.total
        best = scores.best
        row = int(rows[best])
        node = fleet.nodes[row]
        top = np.argsort(-total)[:EXPLAIN_TOP]
        explained = [
            {
                "node": int(fleet.ids[rows[i]]),
                "capability": round(float(scores.capability[i]), 3),
                "capacity": round(float(scores.capacity[i]), 3),
                "energy": round(float(scores.energy[i]), 3),
                "material": round(float(scores.material[i]), 3),
                "proximity": round(float(scores.proximity[i]), 3),
                "reliability": round(float(scores.reliability[i]), 3),
                "batch": bool(scores.batched[i]),
                "finish_h": round(float(finish[i]), 3) if np.isfinite(finish[i]) else None,
                "late": bool(scores.late[i]),
                "total": round(float(total[i]), 4) if np.isfinite(total[i]) else None,
            }
            for i in top
        ]
        reason = f"best of {rows.size} suitable node(s), score {total[best]:.3f}"
        if scores.late[best]:
            reason = f"no node meets the deadline; earliest finish of {rows.size} node(s)"
        elif part.batch and self.leader[(part.job_id, part.batch)] != part.id:
            reason = f"batch '{part.batch}': on the node its batch's first part went to, next"
        elif scores.batched[best]:
            reason += f"; batched with other {part.material} {part.process} work"
        staggered = float(found.start[best] - found.free[best])
        load = self.loads.get(node.site) if node.site is not None else None
        if load is not None and staggered > 1e-9:
            reason += f"; start held {staggered:.2f} h for the site's {load.cap:g} kW power cap"
        reason += _skipped_text(found.skipped, lead="; ")
        chosen_start = float(found.start[best])
        return Assignment(
            part.id,
            int(fleet.ids[row]),
            start_h=round(chosen_start, 4),
            finish_h=round(chosen_start + float(found.hours[best]), 4),
            late=bool(scores.late[best]),
            batched=bool(scores.batched[best]),
            reason=reason,
            candidates=explained,
            staggered_h=round(max(staggered, 0.0), 4),
            skipped=found.skipped[:EXPLAIN_TOP],  # the reason counts the rest
        )

    def commit(
        self, part: PartTask, found: _Candidates, scores: _Scores, assignment: Assignment
    ) -> None:
        """Books the part on its node: the node's timeline, its site's load, its stock, its
        job's and batch's finish; with the energy it draws where the site has an outlook, and
        a note to move it later when its timing allows."""
        fleet = self.fleet
        row = int(found.rows[scores.best])
        node = fleet.nodes[row]
        run_h = float(found.hours[scores.best])
        start = float(found.start[scores.best])
        finish = start + run_h
        profile = _profile(node, part, run_h)
        timeline = fleet.timelines[row]
        timeline.add(start, finish)
        fleet.end[row] = timeline.end
        fleet.special[row] = not timeline.simple
        fleet.backlog[row] = finish if timeline.simple else fleet.backlog[row] + run_h
        fleet.last_batch[row] = found.key
        if node.site is not None and node.site in self.loads:
            self.loads[node.site].add(start, profile)
        material = found.key[0]
        have = fleet.stock[row].get(material)
        if have is not None:
            fleet.stock[row][material] = max(0.0, have - part.material_g)
        if part.process != ASSEMBLY:
            self.job_finish[part.job_id] = max(self.job_finish[part.job_id], finish)
        if part.batch:
            batch = (part.job_id, part.batch)
            self.batch_row.setdefault(batch, row)
            self.batch_finish[batch] = finish
        curve = self.curves.get(node.site) if node.site is not None else None
        if curve is not None:
            _cost(assignment, curve, start, profile)
            if part.timing != TIMING_ASAP and part.deadline_h is not None and not part.batch:
                self.movable.append(_Placed(assignment, part, row, start, run_h, profile))
        self.assignments.append(assignment)

    def move_for_energy(self) -> None:
        """Energy-aware moves come last and use only time the plan leaves free, so moving one
        job into cheaper, greener hours never delays another. Parts an assembly waits for
        stay."""
        fleet = self.fleet
        assembled = {p.job_id for p in self.parts if p.process == ASSEMBLY}
        for placed in self.movable:
            if placed.part.job_id in assembled:
                continue
            node = fleet.nodes[placed.row]
            assert node.site is not None
            _move(
                placed,
                fleet.timelines[placed.row],
                self.loads.get(node.site),
                self.curves[node.site],
                until=math.inf if node.rul_h is None else node.rul_h,
            )

    def plan(self) -> Plan:
        ends = [t.end for t in self.fleet.timelines]
        return Plan(self.assignments, max(ends, default=0.0), self.weights)


@dataclass
class _Placed:
    assignment: Assignment
    part: PartTask
    row: int
    start: float
    hours: float
    profile: list[tuple[float, float, float]]


def _cost(
    assignment: Assignment,
    curve: tuple[np.ndarray, np.ndarray],
    start: float,
    profile: list[tuple[float, float, float]],
) -> None:
    price, carbon = curve
    assignment.kwh = round(sum(kw * (b - a) for a, b, kw in profile), 4)
    assignment.energy_cost = round(_energy(price, start, profile), 4)
    assignment.co2e_kg = round(_energy(carbon, start, profile), 4)


def _move(
    placed: _Placed,
    timeline: _Timeline,
    load: _SiteLoad | None,
    curve: tuple[np.ndarray, np.ndarray],
    until: float = math.inf,
) -> None:
    start, hours, profile = placed.start, placed.hours, placed.profile
    timeline.remove(start, start + hours)
    if load is not None:
        load.remove(start, profile)
    moved = _shift(timeline, load, placed.part, profile, start, hours, curve, until)
    timeline.add(moved, moved + hours)
    if load is not None:
        load.add(moved, profile)
    if abs(moved - start) < 1e-9:
        return
    a = placed.assignment
    a.start_h, a.finish_h = round(moved, 4), round(moved + hours, 4)
    a.shifted_h = round(moved - start, 4)
    _cost(a, curve, moved, profile)
    where = "lower-carbon" if placed.part.timing == TIMING_LOWEST_CARBON else "cheaper, greener"
    direction = "later" if moved > start else "earlier"
    a.reason += f"; moved {abs(moved - start):.2f} h {direction} into {where} hours"


def _site_loads(nodes: list[NodeState], sites: dict[int, SiteOutlook]) -> dict[int, _SiteLoad]:
    """Capped sites start with the work already queued on their nodes, drawing its load (the
    parts running now are past their heat-up)."""
    loads = {key: _SiteLoad(site.cap_kw) for key, site in sites.items() if site.cap_kw}
    for node in nodes:
        if node.site in loads and node.backlog_h > 0:
            draw = node.rated_power_kw * DEFAULT_LOAD
            loads[node.site].add(0.0, [(0.0, node.backlog_h, draw)])
    return loads


def _earliest(
    timeline: _Timeline,
    load: _SiteLoad | None,
    node: NodeState,
    part: PartTask,
    ready: float,
    hours: float,
) -> float:
    """The first start >= `ready` when the node is free and, at a capped site, its draw fits;
    infinity when the node alone draws more than the cap."""
    start = timeline.earliest(ready, hours)
    if load is None:
        return start
    profile = _profile(node, part, hours)
    if max(kw for _, _, kw in profile) > load.cap + 1e-9:
        return math.inf
    while not load.fits(start, profile):
        later = load.releases_after(start)
        if not later:
            return math.inf  # cannot happen: with nothing drawing, a fitting profile fits
        start = timeline.earliest(later[0], hours)
    return start


def _shift(
    timeline: _Timeline,
    load: _SiteLoad | None,
    part: PartTask,
    profile: list[tuple[float, float, float]],
    start: float,
    hours: float,
    curve: tuple[np.ndarray, np.ndarray],
    until: float = math.inf,
) -> float:
    """The start in [ready, deadline - hours] with the lowest energy objective where the node
    is free and the site's cap holds, finishing by `until` (the node's remaining life); `start`
    unless another saves at least MIN_GAIN."""
    assert part.deadline_h is not None
    price, carbon = curve
    latest = min(part.deadline_h - hours, price.size - 1 - hours, until - hours)
    earliest = min(part.ready_h, start)
    if latest <= earliest + 1e-9:
        return start
    if part.timing == TIMING_LOWEST_CARBON:
        objective = carbon + 1e-6 * price  # carbon first; the price only breaks ties
    else:
        objective = price / max(float(price.mean()), 1e-9) + carbon / max(
            float(carbon.mean()), 1e-9
        )
    # With hourly steps the best start has its start or its finish on an hour boundary, or
    # its start or finish against other work (an edge of the node's free time).
    first, last = math.ceil(earliest), math.floor(latest + hours)
    edges = [t for a, b in timeline.busy for t in (b, a - hours)]
    edges += [float(h) for h in range(first, last + 1)]
    edges += [h - hours for h in range(first, last + 1)]
    options = {start, latest, earliest}
    options.update(t for t in edges if earliest <= t <= latest)
    here = _energy(objective, start, profile)
    best, best_value = start, here
    for option in sorted(options):
        if timeline.earliest(option, hours) != option:
            continue
        if load is not None and not load.fits(option, profile):
            continue
        value = _energy(objective, option, profile)
        if value < best_value - 1e-12:
            best, best_value = option, value
    if here - best_value < MIN_GAIN * abs(here):
        return start
    return best


def _skip(node: NodeState, reason: str | None) -> dict[str, int | str]:
    return {"node": node.id, "name": node.label, "reason": reason or "excluded"}


def _skipped_text(skipped: list[dict[str, int | str]], lead: str = ": ") -> str:
    """'Mill-01 skipped: critical ticket #3; Mill-02 skipped: RUL 12 h' (the first few)."""
    if not skipped:
        return ""
    shown = "; ".join(f"{s['name']} skipped: {s['reason']}" for s in skipped[:EXPLAIN_TOP])
    more = len(skipped) - EXPLAIN_TOP
    return lead + shown + (f"; and {more} more node(s) skipped" if more > 0 else "")


def _none(part: PartTask, skipped: list[dict[str, int | str]]) -> str:
    """Why a part has no node."""
    why = "no suitable node available"
    if part.only is not None and part.only_why and not part.only:
        why = f"it needs {part.only_why}, and no node has that now"
    elif part.only is not None:
        why = f"none of the {len(part.only)} node(s) it is limited to can take it now"
        if part.only_why:
            why += f" ({part.only_why})"
    if part.excluded:
        why += f" (declined by {len(part.excluded)} node(s))"
    return why + _skipped_text(skipped)


def _stock_score(stock: dict[str, float], part: PartTask) -> float:
    """1 when the node holds what the part needs (or does not track the material), less as the
    stock falls short, 0 with none."""
    have = stock.get(_material(part.material))
    if have is None:
        return 1.0
    if part.material_g <= 0:
        return 1.0 if have > 0 else 0.0
    return min(1.0, have / part.material_g)


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
