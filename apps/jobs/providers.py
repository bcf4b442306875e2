"""Hooks through which apps to the right of jobs (materials, energy) feed the scheduler, hear
about finished parts and add panels to a job's page, without jobs importing them (DESIGN.md,
"Dependencies between apps"). They register from their `AppConfig.ready`.

- `part_finished` (a signal, sent after commit): a part COMPLETED or FAILED on a node. Receivers
  record material usage and energy consumption. Keyword arguments: `part_id`, `node_id`,
  `status` ("completed" / "failed") and `report`, what the node said it used (any of
  `material_used_g`, `waste_g`, `energy_kwh`; empty when it said nothing).
- stock providers: node ids -> {node id: {material name (lower case): grams on hand}}. A
  material a node does not track is left out (the scheduler then treats it as available).
- energy providers: (node ids, now, horizon hours) -> `EnergyOutlook`: hourly price and carbon
  intensity per site, the site's power cap, each node's site and heat-up time.
- blocked providers: (node ids, now, horizon hours) -> {node id: [(start, end), ...]} aware
  datetimes when a node cannot work (maintenance windows); the scheduler plans around them.
- health providers: (node ids, now, horizon hours) -> {node id: `NodeRisk`}: each node's risk
  0-1 (weighed into the reliability score), whether it must get no work at all (`excluded`:
  a critical open ticket, offline), the reasons in words, its remaining useful life and
  predicted failure probability (checked against each part's run). A node no provider names
  is healthy; with several, the worst of each figure counts and the reasons add up.
- placement providers: (parts) -> {part id: frozenset of node ids}: the only nodes that may
  take each part (the marketplace: parts of a job booked on bought capacity run on the seller's
  nodes). A part no provider names may go anywhere; with several, it must satisfy all of them.
  A placement explainer says in words what limits a part ((parts) -> {part id: "printers with
  PLA #e11d48 loaded"}), shown when the part finds no node.
- job panels: (job, user) -> (template name, context) or None, shown on the job's page. When
  what a panel shows changes (usage or energy recorded, maybe in a worker long after the part
  finished), its app calls `job_panel_changed(job_id, panel)`: open job pages re-fetch their
  panels.
- work details: (parts) -> {part id: {name: JSON value}}: what a node agent is told about each
  part of its work queue besides the part itself (the marketplace: the playbook to follow).
- silence providers: (node ids) -> {node id: timedelta}: how long each node may send nothing
  before self-healing calls it silent (maintenance: its offline limit, from the cadence it
  learned or was told, so a sensor that reports every 5 minutes is not silent after 6). A node
  no provider names gets JOBS_NODE_SILENT_MINUTES; a provider may lengthen that, never shorten
  it; with several, the longest counts.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from typing import Any, TypeVar

import django.dispatch

from apps.core.realtime import broadcast_on_commit
from apps.jobs.scheduler import EnergyOutlook, NodeRisk, SiteOutlook

__all__ = [
    "EnergyOutlook",
    "NodeRisk",
    "SiteOutlook",
    "machine_fault_reported",
    "node_went_silent",
    "part_finished",
]

part_finished = django.dispatch.Signal()
# A node reported that the machine itself broke while making a part (not the part's fault):
# sent after commit with node_id, part_id and reason; maintenance opens or adds to a ticket.
machine_fault_reported = django.dispatch.Signal()
# Self-healing took a node's unfinished parts because it stopped reporting (sent after commit
# with node_id and silent_since, an aware datetime): maintenance marks it offline at once.
node_went_silent = django.dispatch.Signal()


StockProvider = Callable[[Sequence[int]], dict[int, dict[str, float]]]
EnergyProvider = Callable[[Sequence[int], datetime, float], EnergyOutlook]
Windows = dict[int, list[tuple[datetime, datetime]]]
BlockedProvider = Callable[[Sequence[int], datetime, float], Windows]
HealthProvider = Callable[[Sequence[int], datetime, float], dict[int, NodeRisk]]
JobPanel = Callable[[Any, Any], "tuple[str, dict[str, Any]] | None"]
PlacementProvider = Callable[[Sequence[Any]], dict[int, frozenset[int]]]
WorkDetails = Callable[[Sequence[Any]], dict[int, dict[str, Any]]]
SilenceProvider = Callable[[Sequence[int]], dict[int, timedelta]]

_stock_providers: list[StockProvider] = []
_energy_providers: list[EnergyProvider] = []
_blocked_providers: list[BlockedProvider] = []
_health_providers: list[HealthProvider] = []
_job_panels: list[JobPanel] = []
_placement_providers: list[PlacementProvider] = []
_placement_explainers: list[Callable[[Sequence[Any]], dict[int, str]]] = []
_work_details: list[WorkDetails] = []
_silence_providers: list[SilenceProvider] = []


_F = TypeVar("_F")


def _register(registry: list[_F], fn: _F) -> _F:
    if fn not in registry:  # ready() may run twice (tests, autoreload)
        registry.append(fn)
    return fn


def register_stock_provider(fn: StockProvider) -> StockProvider:
    return _register(_stock_providers, fn)


def register_energy_provider(fn: EnergyProvider) -> EnergyProvider:
    return _register(_energy_providers, fn)


def register_blocked_provider(fn: BlockedProvider) -> BlockedProvider:
    return _register(_blocked_providers, fn)


def register_health_provider(fn: HealthProvider) -> HealthProvider:
    return _register(_health_providers, fn)


def register_job_panel(fn: JobPanel) -> JobPanel:
    return _register(_job_panels, fn)


def register_placement_provider(fn: PlacementProvider) -> PlacementProvider:
    return _register(_placement_providers, fn)


def register_silence_provider(fn: SilenceProvider) -> SilenceProvider:
    return _register(_silence_providers, fn)


def node_silent_after(node_ids: Sequence[int], floor: timedelta) -> dict[int, timedelta]:
    """{node id: how long it may send nothing before it is silent} for every node of
    `node_ids`: `floor` (JOBS_NODE_SILENT_MINUTES), or longer where a provider says so."""
    limits = dict.fromkeys(node_ids, floor)
    for provider in _silence_providers:
        for node_id, limit in provider(node_ids).items():
            if node_id in limits and limit > limits[node_id]:
                limits[node_id] = limit
    return limits


def register_placement_explainer(
    fn: Callable[[Sequence[Any]], dict[int, str]],
) -> Callable[[Sequence[Any]], dict[int, str]]:
    return _register(_placement_explainers, fn)


def node_stock(node_ids: Sequence[int]) -> dict[int, dict[str, float]]:
    merged: dict[int, dict[str, float]] = {}
    for provider in _stock_providers:
        for node_id, stock in provider(node_ids).items():
            merged.setdefault(node_id, {}).update(stock)
    return merged


def energy_outlook(node_ids: Sequence[int], now: datetime, horizon_h: float) -> EnergyOutlook:
    """The first registered provider's outlook; an empty one (no prices, no caps) without."""
    for provider in _energy_providers:
        return provider(node_ids, now, horizon_h)
    return EnergyOutlook()


def node_blocked(node_ids: Sequence[int], now: datetime, horizon_h: float) -> Windows:
    merged: Windows = {}
    for provider in _blocked_providers:
        for node_id, windows in provider(node_ids, now, horizon_h).items():
            merged.setdefault(node_id, []).extend(windows)
    return merged


def node_health(node_ids: Sequence[int], now: datetime, horizon_h: float) -> dict[int, NodeRisk]:
    merged: dict[int, NodeRisk] = {}
    for provider in _health_providers:
        for node_id, risk in provider(node_ids, now, horizon_h).items():
            merged[node_id] = _worse(merged[node_id], risk) if node_id in merged else risk
    return merged


def _worse(a: NodeRisk, b: NodeRisk) -> NodeRisk:
    """Two providers' view of one node: the worst of each figure, every reason."""
    lives = [h for h in (a.rul_h, b.rul_h) if h is not None]
    chances = [
        (p, w)
        for p, w in ((a.failure_p, a.failure_within_h), (b.failure_p, b.failure_within_h))
        if p is not None
    ]
    failure = max(chances, key=lambda c: 1 - (1 - c[0]) ** (1 / c[1]), default=(None, 24.0))
    return NodeRisk(
        risk=max(a.risk, b.risk),
        excluded=a.excluded or b.excluded,
        reasons=a.reasons + tuple(r for r in b.reasons if r not in a.reasons),
        rul_h=min(lives, default=None),
        failure_p=failure[0],
        failure_within_h=failure[1],
        offline=a.offline or b.offline,
    )


def register_work_details(fn: WorkDetails) -> WorkDetails:
    return _register(_work_details, fn)


def part_work_details(parts: Sequence[Any]) -> dict[int, dict[str, Any]]:
    """{part id: {name: value}} from every work details provider, for the parts they know."""
    merged: dict[int, dict[str, Any]] = {}
    for provider in _work_details:
        for part_id, details in provider(parts).items():
            merged.setdefault(part_id, {}).update(details)
    return merged


def part_allowed_nodes(parts: Sequence[Any]) -> dict[int, frozenset[int]]:
    """{part id: the nodes it may go to} for the parts some provider limits; where several
    limit the same part, only the nodes all of them allow."""
    merged: dict[int, frozenset[int]] = {}
    for provider in _placement_providers:
        for part_id, nodes in provider(parts).items():
            merged[part_id] = merged[part_id] & nodes if part_id in merged else frozenset(nodes)
    return merged


def part_limit_reasons(parts: Sequence[Any]) -> dict[int, str]:
    """{part id: what limits where it may go, in words} from the placement explainers."""
    merged: dict[int, list[str]] = {}
    for explainer in _placement_explainers:
        for part_id, why in explainer(parts).items():
            merged.setdefault(part_id, []).append(why)
    return {part_id: "; ".join(whys) for part_id, whys in merged.items()}


def job_panel_changed(job_id: int, panel: str) -> None:
    """Tells the job's open pages (event `job.panel` on its live group, after commit) to
    re-fetch their panels."""
    from apps.jobs.services import job_group  # services imports this module

    broadcast_on_commit(job_group(job_id), {"type": "job.panel", "job": job_id, "panel": panel})


def job_panels(job: Any, user: Any) -> list[tuple[str, dict[str, Any]]]:
    panels = []
    for panel in _job_panels:
        shown = panel(job, user)
        if shown is not None:
            panels.append(shown)
    return panels
