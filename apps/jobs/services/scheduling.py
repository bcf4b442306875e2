"""Placing parts: the fleet as the scheduler sees it (stock, energy, windows, health through
apps/jobs/providers.py), the plan stored on each part, and self-healing (parts moved off nodes
that went down, fell silent or were not confirmed), keeping dependent plans consistent."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from apps.core.exceptions import Conflict
from apps.core.models import Notification
from apps.core.realtime import broadcast_on_commit
from apps.core.services import notification_send
from apps.jobs import providers
from apps.jobs.estimates import (
    DEFAULT_PROCESS,
    PROCESS_MODES,
    SETUP_HOURS,
    UTILISATION,
    PartSpec,
    node_fit_problem,
)
from apps.jobs.lifecycle import RESCHEDULE_FROM
from apps.jobs.models import Part, Status
from apps.jobs.providers import node_silent_after, node_went_silent
from apps.jobs.scheduler import (
    ASSEMBLY,
    EnergyOutlook,
    NodeRisk,
    NodeState,
    PartTask,
    Plan,
    hours_until,
    schedule,
)
from apps.jobs.selectors import working_nodes
from apps.jobs.services.status import (
    ACTIVE_PART_STATUSES,
    _node_moves,
    _record,
    job_group,
    job_sync_status,
    part_transition,
)
from apps.telemetry.selectors import latest_points
from apps.users.models import User
from apps.vendors.models import FabricationNode

# a part's plan: set together when it is placed, cleared together when it moves
PLAN_FIELDS = ("planned_start", "planned_finish", "scheduled_at", "hold_until", "placement")


def _remaining_hours(part: Part) -> float:
    return float(part.estimates.get("duration_h", 0.0)) * (1 - part.progress_pct / 100)


def _sorted_build_mm(node: FabricationNode) -> tuple[float, float, float]:
    smallest, middle, largest = sorted((node.build_x_mm, node.build_y_mm, node.build_z_mm))
    return (smallest, middle, largest)


def _node_states(*, now: datetime, horizon_h: float) -> tuple[list[NodeState], EnergyOutlook]:
    """The working fleet as the scheduler sees it, with what materials (stock), energy (sites,
    prices, caps, heat-up) and maintenance (windows) tell it through apps/jobs/providers.py."""
    backlog: dict[int, float] = defaultdict(float)
    for part in Part.objects.filter(
        status__in=ACTIVE_PART_STATUSES, assigned_node__isnull=False
    ).only("assigned_node_id", "estimates", "progress_pct"):
        node_id = part.assigned_node_id
        assert node_id is not None  # the filter above
        backlog[node_id] += _remaining_hours(part)
    nodes = list(working_nodes())
    ids = [node.pk for node in nodes]
    stock = providers.node_stock(ids)
    outlook = providers.energy_outlook(ids, now, horizon_h)
    blocked = providers.node_blocked(ids, now, horizon_h)
    risks = providers.node_health(ids, now, horizon_h)
    silent = _silent_nodes(node_ids=ids, now=now)
    states = [
        NodeState(
            id=node.pk,
            processes=frozenset(node.processes),
            materials=frozenset(node.materials),
            build_mm=_sorted_build_mm(node),
            rated_power_kw=node.rated_power_kw,
            latitude=node.latitude,
            longitude=node.longitude,
            backlog_h=backlog[node.pk],
            stock=stock.get(node.pk, {}),
            site=outlook.node_site.get(node.pk),
            peak_h=outlook.peak_h.get(node.pk, 0.0),
            blocked=tuple(
                (hours_until(start, now) or 0.0, hours_until(end, now) or 0.0)
                for start, end in blocked.get(node.pk, [])
            ),
            name=node.name,
            **_health(
                risks.get(node.pk, NodeRisk()),
                _minutes(silent.get(node.pk), now),
                bed_waits=node.bed_clear_pending_since is not None,
            ),
        )
        for node in nodes
    ]
    return states, outlook


def _health(risk: NodeRisk, silent_min: int | None, *, bed_waits: bool = False) -> dict[str, Any]:
    """A node's health fields for the scheduler: maintenance's view (providers.node_health),
    no work over JOBS_SCHEDULER_MAX_RISK, none while silent by the rule self-healing moves
    work by (so a node never gets back the parts just taken from it), and none while a
    printer's bed waits to be cleared."""
    reasons = list(risk.reasons)
    excluded = risk.excluded
    # a provider's slip stays in 0-1, and a risk that is no number counts as the worst
    level = min(1.0, max(0.0, risk.risk)) if risk.risk == risk.risk else 1.0
    if level >= settings.JOBS_SCHEDULER_MAX_RISK:
        excluded = True
        reasons.insert(0, f"health {100 * (1 - level):.0f}/100")
    if silent_min is not None and not risk.offline:
        excluded = True
        reasons.insert(0, f"silent for {silent_min} min")
    if bed_waits:  # a printer holding its last part takes no new one until it is cleared
        excluded = True
        reasons.insert(0, "its bed waits to be cleared")
    return {
        "health": 1.0 - level,
        "rul_h": risk.rul_h,
        "failure_p": risk.failure_p,
        "failure_within_h": risk.failure_within_h,
        "excluded_reason": (", ".join(reasons) or "unhealthy") if excluded else None,
    }


def _silent_nodes(*, node_ids: list[int], now: datetime) -> dict[int, datetime]:
    """{node id: its last report} for the nodes that have reported telemetry before and sent
    nothing for longer than their silence limit: JOBS_NODE_SILENT_MINUTES, or longer for a node
    that reports slowly (the silence providers: maintenance's learned cadence). A node that
    never reported is not silent: it may run without an edge gateway."""
    points = latest_points(node_ids=node_ids)
    floor = timedelta(minutes=settings.JOBS_NODE_SILENT_MINUTES)
    limits = node_silent_after([point.node_id for point in points], floor)
    return {
        point.node_id: point.time for point in points if now - point.time > limits[point.node_id]
    }


def _minutes(since: datetime | None, now: datetime) -> int | None:
    return None if since is None else int((now - since).total_seconds() // 60)


def _task(
    part: Part,
    *,
    now: datetime,
    ready_h: float,
    only: frozenset[int] | None = None,
    only_why: str = "",
) -> PartTask:
    mode = PROCESS_MODES.get(" ".join(part.process.lower().split()), DEFAULT_PROCESS)[0]
    return PartTask(
        id=part.pk,
        job_id=part.job_id,
        priority=part.job.priority,
        material=part.material,
        process=part.process,
        size_mm=(part.size_x_mm, part.size_y_mm, part.size_z_mm),
        hours=float(part.estimates.get("duration_h", 1.0)),
        setup_h=SETUP_HOURS[mode],
        deadline_h=hours_until(part.job.deadline, now),
        latitude=part.job.latitude,
        longitude=part.job.longitude,
        ready_h=ready_h,
        excluded=frozenset(node.pk for node in part.declined_nodes.all()),
        only=only,
        only_why=only_why,
        material_g=float(part.estimates.get("material_g", 0.0)),
        load=UTILISATION[mode],
        timing=part.job.timing,
        batch=part.batch_group,
    )


def _plan(
    pending: Sequence[Part], *, now: datetime, drafts: Sequence[PartTask] = ()
) -> tuple[Plan, EnergyOutlook]:
    """The scheduler's plan for the pending parts (and `drafts`, parts not yet stored) on the
    working fleet as it stands: its queues, sites, windows and what the providers say."""
    # an assembly may start once its job's parts already placed elsewhere are done
    ready: dict[int, float] = defaultdict(float)
    for sibling in Part.objects.filter(
        job_id__in={p.job_id for p in pending},
        status__in=ACTIVE_PART_STATUSES,
        planned_finish__isnull=False,
    ).exclude(process=ASSEMBLY):
        hours = hours_until(sibling.planned_finish, now) or 0.0
        ready[sibling.job_id] = max(ready[sibling.job_id], hours)
    # parts some app limits to certain nodes (capacity bought on a vendor's machines)
    allowed = providers.part_allowed_nodes(pending)
    limits = providers.part_limit_reasons(pending)
    tasks = [
        _task(
            p,
            now=now,
            ready_h=ready[p.job_id] if p.process == ASSEMBLY else 0,
            only=allowed.get(p.pk),
            only_why=limits.get(p.pk, ""),
        )
        for p in pending
    ] + list(drafts)
    horizon = max([t.deadline_h or 0.0 for t in tasks] + [48.0])
    nodes, outlook = _node_states(now=now, horizon_h=min(horizon, 7 * 24.0))
    plan = schedule(
        tasks,
        nodes,
        weights=settings.JOBS_SCHEDULER_WEIGHTS,
        sites=outlook.sites,
        max_failure=settings.JOBS_SCHEDULER_MAX_FAILURE,
    )
    return plan, outlook


@transaction.atomic
def parts_schedule(*, now: datetime | None = None) -> Plan:
    """Places every validated part on a node (SCHEDULED) and stores why. Rows being scheduled
    by a concurrent run are skipped, not waited for."""
    now = now or timezone.now()
    pending = list(
        Part.objects.select_for_update(skip_locked=True, of=("self",))
        .filter(status=Status.VALIDATED, job__status__in=[Status.VALIDATED, *ACTIVE_PART_STATUSES])
        .select_related("job")
        .prefetch_related("declined_nodes")
    )
    if not pending:
        return Plan([], 0.0, {})
    pending += _pull_back_dependents(pending)
    plan, outlook = _plan(pending, now=now)
    placed = plan.by_part()
    confirming = set(
        FabricationNode.objects.filter(
            pk__in={a.node for a in plan.assignments if a.node is not None},
            requires_confirmation=True,
        ).values_list("pk", flat=True)
    )
    awaiting: dict[int, list[Part]] = defaultdict(list)
    for part in pending:
        choice = placed[part.pk]
        part.scheduled_at = now
        if choice.node is None:
            said = part.placement.get("reason")
            part.placement = {"reason": choice.reason, "skipped": choice.skipped}
            part.save(update_fields=["placement", "scheduled_at", "updated_at"])
            if choice.reason != said:  # an open job page shows why it waits now
                providers.job_panel_changed(part.job_id, "placement")
            continue
        part.assigned_node_id = choice.node
        part.planned_start = now + timedelta(hours=choice.start_h)
        part.planned_finish = now + timedelta(hours=choice.finish_h)
        held = choice.shifted_h > 0 or choice.staggered_h > 0
        part.hold_until = part.planned_start if held else None
        part.placement = {
            "late": choice.late,
            "batched": choice.batched,
            "reason": choice.reason,
            "candidates": choice.candidates,
            "skipped": choice.skipped,
            "weights": plan.weights,
        }
        if choice.shifted_h or choice.staggered_h:
            part.placement.update(shifted_h=choice.shifted_h, staggered_h=choice.staggered_h)
        if choice.energy_cost is not None:
            part.placement["energy"] = {
                "kwh": choice.kwh,
                "cost": choice.energy_cost,
                "co2e_kg": choice.co2e_kg,
                "currency": outlook.currency,
            }
        part.save(update_fields=["assigned_node", *PLAN_FIELDS, "updated_at"])
        part_transition(part=part, to=Status.SCHEDULED, by=None, reason=choice.reason)
        if choice.node in confirming:
            awaiting[choice.node].append(part)
    _ask_vendors_to_confirm(awaiting)
    return plan


def _ask_vendors_to_confirm(awaiting: dict[int, list[Part]]) -> None:
    """One notification per node and vendor member for the parts that wait for their answer."""
    hours = settings.JOBS_CONFIRM_HOURS
    for node in FabricationNode.objects.filter(pk__in=awaiting).select_related("vendor"):
        parts = awaiting[node.pk]
        names = ", ".join(p.name for p in parts[:5]) + ("…" if len(parts) > 5 else "")
        for membership in node.vendor.memberships.select_related("user"):
            notification_send(
                user=membership.user,
                title=f"{len(parts)} part(s) await your confirmation on {node.name}",
                body=f"{names}. Accept or decline within {hours:g} h, or they go to other nodes.",
                level=Notification.Level.WARNING,
                link="/vendor/work/",
            )


@transaction.atomic
def part_reschedule(
    *, part: Part, reason: str, by: User | None = None, exclude_node: bool = False
) -> Part:
    """Self-healing: takes an unfinished part off its node and back to VALIDATED, so the next
    scheduling run places it elsewhere; tells the designer. The platform's move, or a vendor's
    decline (`exclude_node`: that node is never offered the part again)."""
    part = (
        Part.objects.select_for_update(of=("self",))
        .select_related("job", "assigned_node")
        .get(pk=part.pk)
    )
    if part.status not in RESCHEDULE_FROM:
        raise Conflict(f"A {part.get_status_display().lower()} part is not rescheduled.")
    node = part.assigned_node
    if exclude_node and node is not None:
        part.declined_nodes.add(node)
    _unplace(part, reason=reason, by=by)
    where = f" (on {node.name})" if node is not None and node.name not in reason else ""
    next_step = (
        "The scheduler places it on another suitable node."
        if part_has_other_nodes(part)
        else "No other node can make it now: it waits until one can, or you may cancel the job."
    )
    notification_send(
        user=part.job.owner,
        title=f"Part {part.name} of job {part.job_id} is being moved",
        body=f"{reason[:1].upper()}{reason[1:]}{where}. {next_step}",
        level=Notification.Level.WARNING,
        link=f"/jobs/{part.job_id}/",
    )
    return part


def _unplace(part: Part, *, reason: str, by: User | None) -> None:
    """The part (locked) leaves its node and its plan, back to VALIDATED for the scheduler."""
    before = part.status
    part.status = Status.VALIDATED
    part.assigned_node = None
    part.progress_pct = 0.0
    part.started_at = None
    part.planned_start = part.planned_finish = part.scheduled_at = part.hold_until = None
    part.placement = {}
    part.save(
        update_fields=[
            "status",
            "assigned_node",
            "progress_pct",
            "started_at",
            *PLAN_FIELDS,
            "updated_at",
        ]
    )
    _record(job=part.job, part=part, before=before, after=Status.VALIDATED, by=by, reason=reason)
    job_sync_status(job=part.job, by=by, reason=reason)
    broadcast_on_commit(
        job_group(part.job_id),
        {"type": "part.rescheduled", "job": part.job_id, "part": part.pk, "reason": reason},
    )


def _pull_back_dependents(pending: list[Part]) -> list[Part]:
    """Plans that hang on parts about to be placed again go back with them, so the scheduler
    keeps them consistent in the same run: a job's placed assembly (it starts when the others
    finish) and the placed, unstarted parts of a batch (they run together on one node). Only
    parts new to the scheduler or just moved count: one that waits for a node it cannot get
    (`scheduled_at` set by an earlier run) changes nothing, so its siblings' plans stay."""
    moving = [p for p in pending if p.scheduled_at is None]
    moving_jobs = {p.job_id for p in moving if p.process != ASSEMBLY}
    moving_batches = {(p.job_id, p.batch_group) for p in moving if p.batch_group}
    if not moving_jobs:
        return []
    placed = (
        Part.objects.select_for_update(skip_locked=True, of=("self",))
        .filter(job_id__in=moving_jobs, status__in=[Status.SCHEDULED, Status.ASSIGNED])
        .filter(Q(process=ASSEMBLY) | ~Q(batch_group=""))
        .select_related("job")
        .prefetch_related("declined_nodes")
    )
    pulled = []
    for part in placed:
        if (part.job_id, part.batch_group) in moving_batches:
            reason = f"re-planned with its batch '{part.batch_group}', part of which moved"
        elif part.process == ASSEMBLY:
            reason = "re-planned: a part it waits for moved"
        else:
            continue
        _unplace(part, reason=reason, by=None)
        pulled.append(part)
    return pulled


def part_has_other_nodes(part: Part) -> bool:
    """Whether a working node that has not declined the part could make it."""
    spec = PartSpec(
        name=part.name,
        material=part.material,
        process=part.process,
        quantity=part.quantity,
        size_mm=(part.size_x_mm, part.size_y_mm, part.size_z_mm),
    )
    declined = part.declined_nodes.values_list("pk", flat=True)
    return any(
        node_fit_problem(node, spec) is None for node in working_nodes().exclude(pk__in=declined)
    )


def parts_heal(*, now: datetime | None = None) -> list[int]:
    """Finds unfinished parts whose node went to maintenance, was decommissioned or lost its
    approval, or fell silent (all of a silent node's parts, started or not), and reschedules
    them. Returns their ids. A silent node is left idle and reported silent (node_went_silent:
    maintenance marks it offline); the scheduler gives it work again once it reports."""
    now = now or timezone.now()
    moved: list[int] = []
    working = set(working_nodes().values_list("pk", flat=True))
    active = list(
        Part.objects.filter(
            status__in=ACTIVE_PART_STATUSES, assigned_node__isnull=False
        ).select_related("assigned_node")
    )
    nodes = {p.assigned_node.pk: p.assigned_node for p in active if p.assigned_node is not None}
    silent = _silent_nodes(node_ids=sorted(nodes), now=now)
    confirm_within = timedelta(hours=settings.JOBS_CONFIRM_HOURS)
    for part in active:
        node = part.assigned_node
        assert node is not None
        if _unconfirmed_too_long(part, now=now, within=confirm_within):
            part_reschedule(
                part=part,
                reason=f"{node.name}'s vendor did not confirm within "
                f"{settings.JOBS_CONFIRM_HOURS:g} h",
                exclude_node=True,
            )
            moved.append(part.pk)
            continue
        if node.pk not in working:
            reason = f"node {node.name} is {node.get_status_display().lower()}"
            if not node.is_approved:
                reason = f"node {node.name} is no longer approved"
        elif node.pk in silent:
            reason = f"node {node.name} has sent nothing for {_minutes(silent[node.pk], now)} min"
        else:
            continue
        part_reschedule(part=part, reason=reason)
        moved.append(part.pk)
    for node_id, since in silent.items():
        if node_id in working:
            _node_silent(node=nodes[node_id], since=since, now=now)
    return moved


def _node_silent(*, node: FabricationNode, since: datetime, now: datetime) -> None:
    """The silent node's work has moved: it is idle, and maintenance hears of it."""
    S = FabricationNode.Status
    _node_moves(node, [S.ASSIGNED, S.IDLE], f"Silent for {_minutes(since, now)} min, work moved")
    node_id = node.pk
    transaction.on_commit(
        lambda: node_went_silent.send(sender=FabricationNode, node_id=node_id, silent_since=since)
    )


def _unconfirmed_too_long(part: Part, *, now: datetime, within: timedelta) -> bool:
    node = part.assigned_node
    if part.status != Status.SCHEDULED or node is None or not node.requires_confirmation:
        return False
    return part.scheduled_at is not None and now - part.scheduled_at > within
