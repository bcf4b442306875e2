"""Platform KPIs for the ops portal and the API: jobs completed per day, average completion
time, first-time success rate, utilisation, energy per part and uptime over a period.

Scope (Action.KPI_VIEW): ALL sees the whole platform; OPERATED the nodes standing at the
operator sites the user belongs to, and the jobs with parts on them. A fixed number of queries,
whatever the size of the fleet (node histories are replayed in Python from one query)."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Any

from django.core.exceptions import PermissionDenied
from django.db.models import (
    Avg,
    Count,
    DurationField,
    Exists,
    ExpressionWrapper,
    F,
    OuterRef,
    Q,
    QuerySet,
    Subquery,
    Sum,
)
from django.db.models.functions import TruncDate
from django.utils import timezone

from apps.energy.models import Consumption
from apps.energy.selectors import consumption_summary, metered_energy_of
from apps.jobs.lifecycle import RESCHEDULE_FROM
from apps.jobs.models import Job, Part, Status, StatusChange
from apps.users.models import User
from apps.users.roles import Action, Scope, scope_for
from apps.vendors.models import FabricationNode, NodeStatusChange
from apps.vendors.selectors import nodes_in_scope

NodeStatus = FabricationNode.Status
# A node is up while it can take or is doing work.
UP_STATUSES = frozenset({NodeStatus.IDLE, NodeStatus.ASSIGNED, NodeStatus.EXECUTING})
# Node-time counts from when a node is put in service until it is retired: time in REGISTERED
# or CONFIGURED (not in service yet) and DECOMMISSIONED (retired) is nobody's downtime.
IN_SERVICE_STATUSES = UP_STATUSES | {NodeStatus.MAINTENANCE}


def kpi_can_view(*, user: User) -> bool:
    return scope_for(user, Action.KPI_VIEW) is not None


def kpi_nodes(*, user: User) -> QuerySet[FabricationNode]:
    """The nodes whose figures `user` sees; PermissionDenied for roles without KPI_VIEW."""
    if scope_for(user, Action.KPI_VIEW) is None:
        raise PermissionDenied("Your role does not show platform KPIs.")
    return nodes_in_scope(user=user, action=Action.KPI_VIEW)


@dataclass(frozen=True)
class KpiDay:
    day: date
    jobs_completed: int = 0
    machine_hours: float = 0.0
    available_hours: float = 0.0
    kwh: float = 0.0  # recorded for the parts that finished that day
    metered_kwh: float = 0.0  # what the nodes drew that day (their power telemetry)

    @property
    def utilisation(self) -> float | None:
        return self.machine_hours / self.available_hours if self.available_hours > 0 else None


@dataclass(frozen=True)
class PlatformKpis:
    """Figures over [start, end); `end` is never later than the moment they were computed.
    Rates and averages are None when there is nothing to divide by."""

    start: datetime
    end: datetime
    scope: str
    jobs_completed: int
    avg_completion: timedelta | None
    parts_finished: int  # completed or failed in the period
    parts_first_time: int  # completed without ever failing or being rescheduled
    nodes_in_service: int  # approved, idle / assigned / executing / in maintenance now
    machine_hours: float  # of parts running in the period, clipped to it
    available_hours: float  # nodes in service x hours of the period
    kwh: float  # recorded for the parts that finished (energy_parts of them)
    # what the nodes drew, idle or running (power telemetry): the energy dashboard's figure
    metered_kwh: float
    energy_parts: int  # parts whose consumption is recorded
    node_hours: float  # approved nodes' time in service in the period
    up_hours: float  # ... of it idle, assigned or executing
    days: list[KpiDay] = field(default_factory=list)

    @property
    def period_hours(self) -> float:
        return (self.end - self.start).total_seconds() / 3600

    @property
    def jobs_per_day(self) -> float:
        span_days = self.period_hours / 24
        return self.jobs_completed / span_days if span_days > 0 else 0.0

    @property
    def avg_completion_hours(self) -> float | None:
        return None if self.avg_completion is None else self.avg_completion.total_seconds() / 3600

    @property
    def first_time_success_rate(self) -> float | None:
        return self.parts_first_time / self.parts_finished if self.parts_finished else None

    @property
    def utilisation(self) -> float | None:
        return self.machine_hours / self.available_hours if self.available_hours > 0 else None

    @property
    def energy_per_part_kwh(self) -> float | None:
        return self.kwh / self.energy_parts if self.energy_parts else None

    @property
    def uptime(self) -> float | None:
        return self.up_hours / self.node_hours if self.node_hours > 0 else None

    def as_dict(self) -> dict[str, Any]:
        def rounded(value: float | None) -> float | None:
            return None if value is None else round(value, 4)

        return {
            "start": self.start,
            "end": self.end,
            "scope": self.scope,
            "jobs_completed": self.jobs_completed,
            "jobs_per_day": rounded(self.jobs_per_day),
            "avg_completion_hours": rounded(self.avg_completion_hours),
            "parts_finished": self.parts_finished,
            "parts_first_time": self.parts_first_time,
            "first_time_success_rate": rounded(self.first_time_success_rate),
            "nodes_in_service": self.nodes_in_service,
            "machine_hours": rounded(self.machine_hours),
            "available_hours": rounded(self.available_hours),
            "utilisation": rounded(self.utilisation),
            "kwh": rounded(self.kwh),
            "metered_kwh": rounded(self.metered_kwh),
            "energy_parts": self.energy_parts,
            "energy_per_part_kwh": rounded(self.energy_per_part_kwh),
            "node_hours": rounded(self.node_hours),
            "up_hours": rounded(self.up_hours),
            "uptime": rounded(self.uptime),
            "days": [
                {
                    "day": d.day,
                    "jobs_completed": d.jobs_completed,
                    "machine_hours": rounded(d.machine_hours),
                    "utilisation": rounded(d.utilisation),
                    "kwh": rounded(d.kwh),
                    "metered_kwh": rounded(d.metered_kwh),
                }
                for d in self.days
            ],
        }


def _day_bounds(start: datetime, end: datetime) -> list[tuple[date, datetime, datetime]]:
    """The local days [start, end) touches, each with its share of the period."""
    out: list[tuple[date, datetime, datetime]] = []
    day = timezone.localtime(start).date()
    while True:
        day_start = timezone.make_aware(datetime.combine(day, time.min))
        if day_start >= end:
            return out
        day_end = timezone.make_aware(datetime.combine(day + timedelta(days=1), time.min))
        out.append((day, max(day_start, start), min(day_end, end)))
        day += timedelta(days=1)


def _hours(a: datetime, b: datetime) -> float:
    return max((b - a).total_seconds(), 0.0) / 3600


def _jobs(*, scope_all: bool, nodes: QuerySet[FabricationNode]) -> QuerySet[Job]:
    if scope_all:
        return Job.objects.all()
    return Job.objects.filter(
        pk__in=Part.objects.filter(assigned_node__in=nodes.values("pk")).values("job_id")
    )


def _parts_finished(
    *, scope_all: bool, nodes: QuerySet[FabricationNode], start: datetime, end: datetime
) -> tuple[int, int]:
    """(parts finished in the period, those completed the first time). One query."""
    troubled = StatusChange.objects.filter(part=OuterRef("pk")).filter(
        Q(to_status=Status.FAILED) | Q(to_status=Status.VALIDATED, from_status__in=RESCHEDULE_FROM)
    )
    parts = Part.objects.filter(
        status__in=[Status.COMPLETED, Status.FAILED], finished_at__gte=start, finished_at__lt=end
    )
    if not scope_all:
        parts = parts.filter(assigned_node__in=nodes.values("pk"))
    counts = parts.annotate(troubled=Exists(troubled)).aggregate(
        n=Count("id"), ok=Count("id", filter=Q(status=Status.COMPLETED, troubled=False))
    )
    return counts["n"], counts["ok"]


def _machine_hours(
    *, in_service: QuerySet[FabricationNode], start: datetime, end: datetime, now: datetime
) -> dict[date, float]:
    """Hours of parts running on nodes in service, per local day, clipped to [start, end):
    finished parts from start to finish, a running part until now. One query."""
    runs = (
        Part.objects.filter(
            assigned_node__in=in_service.values("pk"),
            started_at__isnull=False,
            started_at__lt=end,
        )
        .filter(Q(finished_at__gt=start) | Q(finished_at__isnull=True, status=Status.IN_PROGRESS))
        .values_list("started_at", "finished_at")
    )
    days = _day_bounds(start, end)
    hours: dict[date, float] = defaultdict(float)
    for started, finished in runs:
        assert started is not None  # (filtered above)
        run_start, run_end = max(started, start), min(finished or now, end)
        for day, day_start, day_end in days:
            hours[day] += _hours(max(run_start, day_start), min(run_end, day_end))
    return hours


def _uptime(
    *, nodes: QuerySet[FabricationNode], start: datetime, end: datetime
) -> tuple[float, float]:
    """(node hours in service, of them up) of the approved nodes over [start, end), replayed
    from their status changes. Two queries."""
    approved = nodes.filter(approval=FabricationNode.Approval.APPROVED)
    history = NodeStatusChange.objects.filter(node=OuterRef("pk")).order_by()
    rows = approved.annotate(
        status_before=Subquery(
            history.filter(at__lt=start).order_by("-at", "-id").values("to_status")[:1]
        ),
        status_first=Subquery(
            history.filter(at__gte=start).order_by("at", "id").values("from_status")[:1]
        ),
    ).values_list("pk", "created_at", "status", "status_before", "status_first")
    changes: dict[int, list[tuple[datetime, str]]] = defaultdict(list)
    for node_id, at, to_status in (
        NodeStatusChange.objects.filter(node__in=approved.values("pk"), at__gte=start, at__lt=end)
        .order_by("node_id", "at", "id")
        .values_list("node_id", "at", "to_status")
    ):
        changes[node_id].append((at, to_status))
    total = up = 0.0

    def count(status: str, a: datetime, b: datetime) -> None:
        nonlocal total, up
        if status in IN_SERVICE_STATUSES:
            total += _hours(a, b)
            if status in UP_STATUSES:
                up += _hours(a, b)

    for node_id, created_at, current, before, first in rows:
        cursor = max(start, created_at)
        # the status at the start: the last change before it, else where the first change in
        # the period came from, else (no change since) the status it has now
        status = before or first or current
        for at, to_status in changes.get(node_id, []):
            if at > cursor:
                count(status, cursor, at)
                cursor = at
            status = to_status
        if end > cursor:
            count(status, cursor, end)
    return total, up


def platform_kpis(*, user: User, start: datetime, end: datetime) -> PlatformKpis:
    """The KPIs `user` may see over [start, end) (end clipped to now). PermissionDenied for
    roles without KPI_VIEW."""
    nodes = kpi_nodes(user=user)
    scope = scope_for(user, Action.KPI_VIEW)
    scope_all = scope == Scope.ALL
    now = timezone.now()
    end = min(end, now)
    start = min(start, end)

    completed = _jobs(scope_all=scope_all, nodes=nodes).filter(
        status=Status.COMPLETED, completed_at__gte=start, completed_at__lt=end
    )
    totals = completed.aggregate(
        n=Count("id"),
        avg=Avg(
            ExpressionWrapper(F("completed_at") - F("created_at"), output_field=DurationField())
        ),
    )
    jobs_by_day = dict(
        completed.order_by()
        .annotate(day=TruncDate("completed_at"))
        .values("day")
        .annotate(n=Count("id"))
        .values_list("day", "n")
    )
    parts_finished, parts_first_time = _parts_finished(
        scope_all=scope_all, nodes=nodes, start=start, end=end
    )
    in_service = nodes.filter(
        approval=FabricationNode.Approval.APPROVED, status__in=IN_SERVICE_STATUSES
    )
    nodes_in_service = in_service.count()
    machine = _machine_hours(in_service=in_service, start=start, end=end, now=now)
    energy = consumption_summary(nodes=None if scope_all else nodes, start=start, end=end)
    consumption = Consumption.objects.filter(finished_at__gte=start, finished_at__lt=end)
    if not scope_all:
        consumption = consumption.filter(node__in=nodes.values("pk"))
    kwh_by_day = dict(
        consumption.order_by()
        .annotate(day=TruncDate("finished_at"))
        .values("day")
        .annotate(kwh=Sum("kwh"))
        .values_list("day", "kwh")
    )
    node_hours, up_hours = _uptime(nodes=nodes, start=start, end=end)
    metered = metered_energy_of(nodes=nodes, start=start, end=end)
    days = [
        KpiDay(
            day=day,
            jobs_completed=jobs_by_day.get(day, 0),
            machine_hours=machine.get(day, 0.0),
            available_hours=nodes_in_service * _hours(day_start, day_end),
            kwh=kwh_by_day.get(day) or 0.0,
            metered_kwh=metered.by_day.get(day, 0.0),
        )
        for day, day_start, day_end in _day_bounds(start, end)
    ]
    return PlatformKpis(
        start=start,
        end=end,
        scope=str(scope),
        jobs_completed=totals["n"],
        avg_completion=totals["avg"],
        parts_finished=parts_finished,
        parts_first_time=parts_first_time,
        nodes_in_service=nodes_in_service,
        machine_hours=sum(machine.values()),
        available_hours=nodes_in_service * _hours(start, end),
        kwh=energy.kwh,
        metered_kwh=metered.kwh,
        energy_parts=energy.parts,
        node_hours=node_hours,
        up_hours=up_hours,
        days=days,
    )
