from __future__ import annotations

from datetime import date, timedelta
from typing import Any, NamedTuple

from django.db.models import Count, F, Max, OuterRef, Q, QuerySet, Subquery
from django.db.models.functions import Coalesce
from django.shortcuts import get_object_or_404

from apps.core.precompiled import PrecompiledQuery
from apps.jobs.models import CadFile, Job, JobTemplate, Part
from apps.users.models import User
from apps.users.roles import Action, Scope, scope_for
from apps.vendors.lifecycle import ACTIVE_STATUSES
from apps.vendors.models import FabricationNode


def job_list(*, user: User) -> QuerySet[Job]:
    """Jobs `user` may see: their organizations' for designers, engineers and viewers; jobs with
    a part on their nodes (vendors) or their sites' nodes (operators); all for admins."""
    return _jobs_in_scope(scope_for(user, Action.JOB_VIEW), user_id=user.pk)


def _jobs_in_scope(scope: Scope | None, *, user_id: int) -> QuerySet[Job]:
    jobs = Job.objects.select_related("owner", "organization")
    if scope == Scope.ALL:
        return jobs
    if scope in (Scope.OWN_ORG, Scope.OWN):
        return jobs.filter(organization__memberships__user=user_id).distinct()
    if scope == Scope.OWN_NODES:
        return jobs.filter(parts__assigned_node__vendor__memberships__user=user_id).distinct()
    if scope == Scope.OPERATED:
        return jobs.filter(parts__assigned_node__site__memberships__user=user_id).distinct()
    return jobs.none()


def job_accounting_visible(*, user: User) -> Q:
    """The accounting rows of jobs (materials used, energy consumed; any model with a `job`
    key) that `user` sees as the job's side: those of the jobs they may view as their owners
    (own, own organization's, all). A vendor or operator who sees a job only because a part ran
    on their nodes does not see its rows on other nodes; their apps add their nodes' rows by
    their own rule. Matches nothing for those roles."""
    if scope_for(user, Action.JOB_VIEW) not in (Scope.ALL, Scope.OWN_ORG, Scope.OWN):
        return Q(pk__in=[])
    return Q(job__in=job_list(user=user).values("pk"))


def job_get_for_user(*, user: User, pk: int) -> Job:
    """The job if `user` may see it; 404, not 403, so ids don't leak."""
    return get_object_or_404(job_list(user=user), pk=pk)


def job_detail_get_for_user(
    *, user: User, pk: int, parts: bool = True, history: bool = True
) -> Job:
    """The job with what its detail shows loaded in a fixed number of queries (its parts with
    their nodes, its history with who made each change), whatever their count; 404 as
    job_get_for_user. A client that asked for neither skips their queries."""
    from django.db.models import Prefetch

    from apps.jobs.models import StatusChange

    lookups: list[Prefetch[Any]] = []
    if parts:
        lookups.append(Prefetch("parts", Part.objects.select_related("assigned_node")))
    if history:
        lookups.append(Prefetch("history", StatusChange.objects.select_related("by")))
    return get_object_or_404(job_list(user=user).prefetch_related(*lookups), pk=pk)


class JobDetailVersion(NamedTuple):
    tag: str  # changes whenever the detail answer may have changed
    parts_total: int


def _per_job(model: Any, aggregate: Any) -> Any:
    """`aggregate` over the rows of `model` that belong to the outer job: a subquery, so the
    parts and the history are each read once by their job index instead of joined into one
    parts x history product that COUNT(DISTINCT) then takes apart (the join cost 4-5 ms of
    PostgreSQL CPU per poll for a job of 14 parts and 59 changes: bench/job_status)."""
    rows = model.objects.filter(job=OuterRef("pk")).order_by().values("job")
    return Subquery(rows.annotate(value=aggregate).values("value")[:1])


def _job_detail_version_query(scope: Scope | None, *, pk: int, user_id: int) -> QuerySet[Any]:
    from apps.jobs.models import StatusChange

    return (
        Job.objects.filter(pk=pk, pk__in=_jobs_in_scope(scope, user_id=user_id).values("pk"))
        .annotate(
            parts_n=Coalesce(_per_job(Part, Count("pk")), 0),
            parts_at=_per_job(Part, Max("updated_at")),
            nodes_at=_per_job(Part, Max("assigned_node__updated_at")),
            history_n=Coalesce(_per_job(StatusChange, Count("pk")), 0),
            history_last=_per_job(StatusChange, Max("pk")),
        )
        .values_list("updated_at", "parts_n", "parts_at", "nodes_at", "history_n", "history_last")
    )[:1]


# compiled once per scope: a status poll's SQL compilation cost more CPU than the query
_job_detail_version_sql = PrecompiledQuery(_job_detail_version_query, "pk", "user_id")


def job_detail_version(*, user: User, pk: int) -> JobDetailVersion | None:
    """What the job's detail answer depends on, read in one query without building it: the job's
    and its parts' last changes, their nodes' (a renamed node), and its history's length. Every
    service that changes a job or a part saves its updated_at and records a status change, so
    an unchanged version means an unchanged answer. The parts' count comes with it (the
    answer's `parts_total`). None when `user` may not see the job (the view then answers
    404)."""
    scope = scope_for(user, Action.JOB_VIEW)
    if scope is None:
        return None
    rows = _job_detail_version_sql.rows(scope, pk=int(pk), user_id=user.pk)
    if not rows:
        return None
    return JobDetailVersion("|".join(str(value) for value in rows[0]), int(rows[0][1]))


def job_can_change(*, user: User, job: Job) -> bool:
    """Cancel or reprioritise: the owner (own scope) or an admin."""
    scope = scope_for(user, Action.JOB_CREATE)
    return scope == Scope.ALL or (scope == Scope.OWN and job.owner_id == user.pk)


def schedulable_nodes() -> QuerySet[FabricationNode]:
    """Approved nodes that may take work (maintenance nodes count for feasibility: they come
    back; decommissioned and unapproved ones do not)."""
    return FabricationNode.objects.filter(
        approval=FabricationNode.Approval.APPROVED, status__in=ACTIVE_STATUSES
    )


def working_nodes() -> QuerySet[FabricationNode]:
    """Approved nodes that may take new work now (not in maintenance, not retired)."""
    return FabricationNode.objects.filter(
        approval=FabricationNode.Approval.APPROVED,
        status__in=[
            FabricationNode.Status.IDLE,
            FabricationNode.Status.ASSIGNED,
            FabricationNode.Status.EXECUTING,
        ],
    )


def telemetry_nodes_running_jobs(user: User, scope: Scope) -> Q:
    """The nodes whose telemetry a designer or engineer may watch (the matrix's "nodes running
    their jobs"): a node counts while it is making a part of a job the user may see, i.e.
    while that part is IN PROGRESS; not while the part only waits in its queue (scheduled,
    assigned) and no longer once it is finished, failed or moved elsewhere. Registered into
    apps.telemetry.selectors from JobsConfig.ready; other scopes add nothing."""
    if scope != Scope.NODES_RUNNING_OWN_JOBS:
        return Q(pk__in=[])
    running = Part.objects.filter(
        status=Part.Status.IN_PROGRESS,
        assigned_node__isnull=False,
        job__in=job_list(user=user).values("pk"),
    ).values("assigned_node")
    return Q(pk__in=running)


def cad_file_get_for_user(*, user: User, pk: int) -> CadFile:
    return get_object_or_404(CadFile.objects.filter(Q(owner=user)), pk=pk)


def cad_files_of(*, user: User, ids: list[int]) -> dict[int, CadFile]:
    """The uploads among `ids` that are `user`'s own, by id (another's id is simply absent)."""
    if not ids:
        return {}
    return {c.pk: c for c in CadFile.objects.filter(owner=user, pk__in=ids)}


def template_list(*, user: User) -> QuerySet[JobTemplate]:
    """Templates of the caller's organizations (all for admins)."""
    if scope_for(user, Action.JOB_VIEW) == Scope.ALL:
        return JobTemplate.objects.all()
    if scope_for(user, Action.JOB_VIEW) not in (Scope.OWN_ORG, Scope.OWN):
        return JobTemplate.objects.none()
    return JobTemplate.objects.filter(organization__memberships__user=user).distinct()


def template_get_for_user(*, user: User, pk: int) -> JobTemplate:
    return get_object_or_404(template_list(user=user), pk=pk)


def vendor_part_list(*, user: User) -> QuerySet[Part]:
    """Parts placed on nodes `user` manages (their vendor companies' nodes; all for admins)."""
    scope = scope_for(user, Action.NODE_MANAGE)
    parts = Part.objects.select_related("job", "assigned_node").filter(assigned_node__isnull=False)
    if scope == Scope.ALL:
        return parts
    if scope == Scope.OWN_NODES:
        return parts.filter(assigned_node__vendor__memberships__user=user).distinct()
    return parts.none()


def vendor_part_get_for_user(*, user: User, pk: int) -> Part:
    """404 for parts on other vendors' nodes, so ids don't leak."""
    return get_object_or_404(vendor_part_list(user=user), pk=pk)


def vendor_work(*, user: User, days: int = 7) -> list[dict[str, object]]:
    """Per node of the caller's vendor companies: the parts queued and running on it, and its
    utilisation over the last `days` (hours of parts running / hours in the window)."""
    from django.utils import timezone

    now = timezone.now()
    since = now - timedelta(days=days)
    nodes = list(vendor_nodes(user=user).order_by("name"))
    parts = (
        Part.objects.filter(assigned_node__in=nodes)
        .filter(Q(status__in=["scheduled", "assigned", "in_progress"]) | Q(finished_at__gte=since))
        .select_related("job")
        .order_by("status", "id")
    )
    by_node: dict[int, list[Part]] = {n.pk: [] for n in nodes}
    busy: dict[int, float] = dict.fromkeys(by_node, 0.0)
    for part in parts:
        assert part.assigned_node_id is not None
        if part.started_at is not None:
            start = max(part.started_at, since)
            end = part.finished_at or now
            busy[part.assigned_node_id] += max((end - start).total_seconds(), 0) / 3600
        if part.status in ("scheduled", "assigned", "in_progress"):
            by_node[part.assigned_node_id].append(part)
    window_h = days * 24
    return [
        {
            "node": node,
            "parts": by_node[node.pk],
            "busy_h": round(busy[node.pk], 2),
            "utilisation_pct": round(100 * min(busy[node.pk] / window_h, 1.0), 1),
            "awaiting": sum(1 for p in by_node[node.pk] if p.status == "scheduled")
            if node.requires_confirmation
            else 0,
        }
        for node in nodes
    ]


FINISHED_STATUSES = ("completed", "failed", "cancelled")


def vendor_nodes(*, user: User) -> QuerySet[FabricationNode]:
    """The nodes of the caller's vendor companies that they may see."""
    from apps.vendors.selectors import node_list, vendor_organizations_for

    return node_list(user=user).filter(vendor__in=vendor_organizations_for(user=user))


def vendor_work_history(
    *,
    user: User,
    node_id: int | None = None,
    status: str = "",
    finished_from: date | None = None,
    finished_to: date | None = None,
    search: str = "",
) -> QuerySet[Part]:
    """Parts that ended on the caller's nodes (completed, failed or cancelled), newest first,
    filtered by node, outcome, the day they ended (both days included) and part or job name."""
    parts = (
        Part.objects.filter(assigned_node__in=vendor_nodes(user=user), status__in=FINISHED_STATUSES)
        .select_related("job", "assigned_node")
        .order_by(F("finished_at").desc(nulls_last=True), "-id")
    )
    if node_id is not None:
        parts = parts.filter(assigned_node_id=node_id)
    if status:
        parts = parts.filter(status=status)
    if finished_from is not None:
        parts = parts.filter(finished_at__date__gte=finished_from)
    if finished_to is not None:
        parts = parts.filter(finished_at__date__lte=finished_to)
    if search:
        parts = parts.filter(Q(name__icontains=search) | Q(job__title__icontains=search))
    return parts


def part_placements(parts: list[Part]) -> list[dict[str, Any]]:
    """Why each part went where it did, for people (the job page and the schedule API): the
    chosen node, the planned start and finish, and the scored candidates with their names."""
    node_ids = {c["node"] for p in parts for c in p.placement.get("candidates", [])}
    names = dict(FabricationNode.objects.filter(pk__in=node_ids).values_list("pk", "name"))
    rows = []
    for part in parts:
        plan = part.placement
        rows.append(
            {
                "part": part.pk,
                "name": part.name,
                "status": part.status,
                "node": part.assigned_node_id,
                "node_name": part.assigned_node.name if part.assigned_node else None,
                "reason": plan.get("reason", "not scheduled yet"),
                "start_at": part.planned_start,
                "finish_at": part.planned_finish,
                "scheduled_at": part.scheduled_at,
                "late": plan.get("late", False),
                "batched": plan.get("batched", False),
                "shifted_h": plan.get("shifted_h", 0.0),
                "staggered_h": plan.get("staggered_h", 0.0),
                "energy": plan.get("energy"),
                "weights": plan.get("weights", {}),
                "skipped": plan.get("skipped", []),
                "candidates": [
                    {**c, "node_name": names.get(c["node"])} for c in plan.get("candidates", [])
                ],
            }
        )
    return rows
