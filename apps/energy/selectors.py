"""Who may see and manage which energy data, and the reads the pages, the API and other apps
(portal KPIs, the sustainability report) share.

ENERGY_MANAGE decides management: admins everything; vendors their own nodes and their own
companies' sites; operators the sites they operate and the nodes standing there. Consumption is
also visible to whoever may see the job (JOB_VIEW, for the roles that see jobs by organization:
designers, engineers, viewers), so designers see their own jobs' energy."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from datetime import time as dt_time
from decimal import Decimal
from typing import Any

from django.core.cache import cache
from django.db.models import Count, Q, QuerySet, Sum
from django.db.models.functions import TruncDate
from django.shortcuts import get_object_or_404

from apps.energy import conf
from apps.energy.calc import money
from apps.energy.models import (
    RENEWABLE_KINDS,
    Consumption,
    EmissionFactor,
    EnergySource,
    HourlyRate,
    SitePowerCap,
)
from apps.jobs.models import Job, Status
from apps.jobs.selectors import job_accounting_visible
from apps.telemetry.site_power import SitePower
from apps.users.models import Organization, User
from apps.users.roles import Action, Scope, scope_for
from apps.vendors.models import FabricationNode
from apps.vendors.selectors import nodes_in_scope

FACTORS_CACHE_KEY = "energy:emission-factors"
FACTORS_CACHE_S = 300
SITE_KINDS = (Organization.Kind.VENDOR, Organization.Kind.OPERATOR_SITE)
ONE_DAY = timedelta(days=1)


# --- Scope -------------------------------------------------------------------------------------


def energy_can_manage(*, user: User) -> bool:
    return scope_for(user, Action.ENERGY_MANAGE) is not None


def energy_nodes(*, user: User) -> QuerySet[FabricationNode]:
    """The nodes whose energy `user` manages."""
    return nodes_in_scope(user=user, action=Action.ENERGY_MANAGE)


def energy_node_get(*, user: User, pk: int) -> FabricationNode:
    """404, not 403, so ids don't leak."""
    return get_object_or_404(energy_nodes(user=user), pk=pk)


def energy_sites(*, user: User) -> QuerySet[Organization]:
    """The sites whose sources, cap and prices `user` manages: all vendor companies and operator
    sites (admins), their own vendor companies (vendors), the sites they operate (operators)."""
    scope = scope_for(user, Action.ENERGY_MANAGE)
    qs = Organization.objects.filter(kind__in=SITE_KINDS)
    if scope == Scope.ALL:
        return qs
    if scope == Scope.OWN_NODES:
        return qs.filter(kind=Organization.Kind.VENDOR, memberships__user=user).distinct()
    if scope == Scope.OPERATED:
        return qs.filter(kind=Organization.Kind.OPERATOR_SITE, memberships__user=user).distinct()
    return qs.none()


def energy_site_get(*, user: User, pk: int) -> Organization:
    return get_object_or_404(energy_sites(user=user), pk=pk)


def energy_sites_visible(*, user: User) -> QuerySet[Organization]:
    """Managed sites plus the sites the managed nodes stand at (a vendor sees the prices and
    outlook of the operator site its machine stands at, but does not set them)."""
    nodes = energy_nodes(user=user)
    keys = Q(pk__in=nodes.filter(site__isnull=False).values("site_id")) | Q(
        pk__in=nodes.filter(site__isnull=True).values("vendor_id")
    )
    managed = Q(pk__in=energy_sites(user=user).values("pk"))
    return Organization.objects.filter(managed | keys)


def energy_site_visible_get(*, user: User, pk: int) -> Organization:
    return get_object_or_404(energy_sites_visible(user=user), pk=pk)


def site_nodes(*, site: Organization) -> QuerySet[FabricationNode]:
    """The nodes whose site key is `site`: those standing there, and the vendor's own nodes
    standing at no operator site."""
    return FabricationNode.objects.filter(Q(site=site) | Q(site__isnull=True, vendor=site)).exclude(
        status=FabricationNode.Status.DECOMMISSIONED
    )


# --- Sources, factors, caps, rates -------------------------------------------------------------


def source_list(
    *, user: User, node_id: int | None = None, site_id: int | None = None
) -> QuerySet[EnergySource]:
    qs = EnergySource.objects.filter(
        Q(node__in=energy_nodes(user=user).values("pk"))
        | Q(site__in=energy_sites(user=user).values("pk"))
    ).select_related("node", "site")
    if node_id is not None:
        qs = qs.filter(node_id=node_id)
    if site_id is not None:
        qs = qs.filter(site_id=site_id)
    return qs


def source_get_for_user(*, user: User, pk: int) -> EnergySource:
    return get_object_or_404(source_list(user=user), pk=pk)


def node_sources(*, node: FabricationNode) -> list[EnergySource]:
    """What a node may draw from: its own sources and its site's."""
    site_id = node.site_id if node.site_id is not None else node.vendor_id
    return list(EnergySource.objects.filter(Q(node=node) | Q(site_id=site_id)))


def emission_factors() -> dict[str, float]:
    """kg CO2e per kWh for every source kind (cached; services clear it when they change)."""
    cached = cache.get(FACTORS_CACHE_KEY)
    if cached is not None:
        return dict(cached)
    factors = dict(conf.DEFAULT_EMISSION_FACTORS)
    factors.update(EmissionFactor.objects.values_list("kind", "kg_co2e_per_kwh"))
    cache.set(FACTORS_CACHE_KEY, factors, FACTORS_CACHE_S)
    return factors


def emission_factor_list() -> QuerySet[EmissionFactor]:
    return EmissionFactor.objects.all()


def site_cap(*, site_id: int) -> SitePowerCap | None:
    return SitePowerCap.objects.filter(site_id=site_id).first()


def cap_of(site: Organization) -> SitePowerCap | None:
    """The site's cap row, from `select_related("power_cap")` when the caller used it."""
    try:
        return site.power_cap
    except SitePowerCap.DoesNotExist:
        return None


def rate_list(
    *,
    user: User,
    site_id: int | None = None,
    start: datetime | None = None,
    end: datetime | None = None,
) -> QuerySet[HourlyRate]:
    qs = HourlyRate.objects.filter(
        site__in=energy_sites_visible(user=user).values("pk")
    ).select_related("site")
    if site_id is not None:
        qs = qs.filter(site_id=site_id)
    if start is not None:
        qs = qs.filter(hour__gte=start)
    if end is not None:
        qs = qs.filter(hour__lt=end)
    return qs


# --- Consumption -------------------------------------------------------------------------------


def consumption_list(
    *,
    user: User,
    job_id: int | None = None,
    node_id: int | None = None,
    site_id: int | None = None,
    start: datetime | None = None,
    end: datetime | None = None,
) -> QuerySet[Consumption]:
    """Consumption on the nodes `user` manages, and of the jobs they may see by organization."""
    rule = Q(node__in=energy_nodes(user=user).values("pk")) | job_accounting_visible(user=user)
    qs = Consumption.objects.filter(rule).select_related("node", "part", "job")
    return consumption_filter(
        qs, job_id=job_id, node_id=node_id, site_id=site_id, start=start, end=end
    )


def consumption_filter(
    qs: QuerySet[Consumption],
    *,
    job_id: int | None = None,
    node_id: int | None = None,
    site_id: int | None = None,
    start: datetime | None = None,
    end: datetime | None = None,
) -> QuerySet[Consumption]:
    if job_id is not None:
        qs = qs.filter(job_id=job_id)
    if node_id is not None:
        qs = qs.filter(node_id=node_id)
    if site_id is not None:
        qs = qs.filter(site_id=site_id)
    if start is not None:
        qs = qs.filter(finished_at__gte=start)
    if end is not None:
        qs = qs.filter(finished_at__lt=end)
    return qs


@dataclass(frozen=True)
class ConsumptionSummary:
    """Totals of a set of consumption records. `cost` is in `currency` (the platform's); rows
    priced in other currencies are in `cost_by_currency` only."""

    kwh: float = 0.0
    co2e_kg: float = 0.0
    renewable_kwh: float = 0.0
    cost: Decimal = Decimal("0.0000")
    currency: str = field(default_factory=conf.currency)
    parts: int = 0
    kwh_by_source: dict[str, float] = field(default_factory=dict)
    cost_by_currency: dict[str, Decimal] = field(default_factory=dict)

    @property
    def renewable_share(self) -> float:
        """kWh from solar and wind / all kWh (0 when nothing was drawn)."""
        return self.renewable_kwh / self.kwh if self.kwh > 0 else 0.0

    @property
    def co2e_per_kwh(self) -> float:
        return self.co2e_kg / self.kwh if self.kwh > 0 else 0.0

    def as_dict(self) -> dict[str, Any]:
        return {
            "kwh": round(self.kwh, 4),
            "co2e_kg": round(self.co2e_kg, 4),
            "renewable_kwh": round(self.renewable_kwh, 4),
            "renewable_share": round(self.renewable_share, 4),
            "cost": str(self.cost),
            "currency": self.currency,
            "parts": self.parts,
            "kwh_by_source": {k: round(v, 4) for k, v in self.kwh_by_source.items()},
            "cost_by_currency": {k: str(v) for k, v in self.cost_by_currency.items()},
        }


def consumption_summary(
    *,
    jobs: QuerySet[Job] | None = None,
    organization: Organization | None = None,
    nodes: QuerySet[FabricationNode] | None = None,
    rows: QuerySet[Consumption] | None = None,
    start: datetime | None = None,
    end: datetime | None = None,
) -> ConsumptionSummary:
    """kWh, kg CO2e, renewable share, cost and parts counted over the consumption of `jobs`, of
    `organization` (everything it is party to: its jobs as a design team, its nodes as a
    vendor, the nodes at it as an operator site), of `nodes`, or of given `rows` (combined with
    AND when several are given), finished in [start, end). One query."""
    qs = rows if rows is not None else Consumption.objects.all()
    if jobs is not None:
        qs = qs.filter(job__in=jobs.values("pk"))
    if organization is not None:
        qs = qs.filter(
            Q(job__organization=organization) | Q(node__vendor=organization) | Q(site=organization)
        )
    if nodes is not None:
        qs = qs.filter(node__in=nodes.values("pk"))
    qs = consumption_filter(qs, start=start, end=end)
    grouped = (
        qs.order_by()
        .values("source_kind", "currency")
        .annotate(kwh=Sum("kwh"), co2e=Sum("co2e_kg"), cost=Sum("cost"), n=Count("id"))
    )
    main = conf.currency()
    kwh = co2e = renewable = 0.0
    parts = 0
    by_source: dict[str, float] = defaultdict(float)
    by_currency: dict[str, Decimal] = defaultdict(lambda: Decimal("0"))
    for row in grouped:
        kwh += row["kwh"] or 0.0
        co2e += row["co2e"] or 0.0
        parts += row["n"]
        by_source[row["source_kind"]] += row["kwh"] or 0.0
        by_currency[row["currency"]] += row["cost"] or Decimal("0")
        if row["source_kind"] in RENEWABLE_KINDS:
            renewable += row["kwh"] or 0.0
    return ConsumptionSummary(
        kwh=kwh,
        co2e_kg=co2e,
        renewable_kwh=renewable,
        cost=money(by_currency.get(main, Decimal("0"))),
        currency=main,
        parts=parts,
        kwh_by_source=dict(by_source),
        cost_by_currency={k: money(v) for k, v in by_currency.items()},
    )


def consumption_daily(
    rows: QuerySet[Consumption], *, start: datetime, end: datetime
) -> list[dict[str, Any]]:
    """Per day of [start, end) (UTC days): kWh, kg CO2e, cost and kWh per source kind."""
    grouped = (
        consumption_filter(rows, start=start, end=end)
        .order_by()
        .annotate(day=TruncDate("finished_at"))
        .values("day", "source_kind")
        .annotate(kwh=Sum("kwh"), co2e=Sum("co2e_kg"), cost=Sum("cost"))
    )
    days: dict[date, dict[str, Any]] = {}
    last = (end - timedelta(microseconds=1)).date()
    current = start.date()
    while current <= last:
        days[current] = _empty_day(current)
        current += timedelta(days=1)
    for row in grouped:
        day = days.setdefault(row["day"], _empty_day(row["day"]))
        day["kwh"] += row["kwh"] or 0.0
        day["co2e_kg"] += row["co2e"] or 0.0
        day["cost"] += row["cost"] or Decimal("0")
        day["by_source"][row["source_kind"]] = row["kwh"] or 0.0
    return [days[d] for d in sorted(days)]


def consumption_by_node(
    rows: QuerySet[Consumption], *, start: datetime, end: datetime
) -> dict[int, Mapping[str, Any]]:
    """Per node of `rows` finished in [start, end): kWh, kg CO2e, cost and parts. One query."""
    grouped = (
        consumption_filter(rows, start=start, end=end)
        .order_by()
        .values("node_id")
        .annotate(kwh=Sum("kwh"), co2e=Sum("co2e_kg"), cost=Sum("cost"), parts=Count("id"))
    )
    return {row["node_id"]: row for row in grouped}


def _empty_day(day: date) -> dict[str, Any]:
    return {"day": day, "kwh": 0.0, "co2e_kg": 0.0, "cost": Decimal("0"), "by_source": {}}


@dataclass(frozen=True)
class JobEnergy:
    """A job's energy and carbon: measured where consumption is recorded, else the estimate."""

    kwh: float
    co2e_kg: float
    is_estimate: bool
    recorded_parts: int
    total_parts: int
    cost: Decimal | None = None
    currency: str = ""
    renewable_share: float = 0.0


def job_machine_time_kwh(*, job: Job, time_scale: float) -> float:
    """The job's recorded kWh in machine time when its parts ran `time_scale` times faster than
    that (the demo's DEMO_TIME_SCALE): telemetry measured over the short run, scaled up; a
    reported or estimated figure is in machine time already."""
    total = 0.0
    for method, kwh in Consumption.objects.filter(job=job).values_list("method", "kwh"):
        total += kwh * time_scale if method == Consumption.Method.TELEMETRY else kwh
    return total


def job_energy(*, job: Job) -> JobEnergy:
    total_parts = job.parts.exclude(status=Status.CANCELLED).count()
    summary = consumption_summary(rows=Consumption.objects.filter(job=job))
    if summary.parts:
        return JobEnergy(
            kwh=summary.kwh,
            co2e_kg=summary.co2e_kg,
            is_estimate=False,
            recorded_parts=summary.parts,
            total_parts=total_parts,
            cost=summary.cost,
            currency=summary.currency,
            renewable_share=summary.renewable_share,
        )
    kwh = float((job.estimates or {}).get("energy_kwh") or 0.0)
    return JobEnergy(
        kwh=kwh,
        co2e_kg=kwh * emission_factors()["grid"],
        is_estimate=True,
        recorded_parts=0,
        total_parts=total_parts,
    )


# --- Metered energy and the draw now (from telemetry) ------------------------------------------


@dataclass(frozen=True)
class Metered:
    """kWh the nodes drew over a period as their power telemetry shows it (idle and running),
    per node and per UTC day. Parts' recorded consumption is the share of this drawn while
    parts ran."""

    by_node: dict[int, float]
    by_day: dict[date, float]

    @property
    def kwh(self) -> float:
        return sum(self.by_node.values())


def metered_energy(*, node_ids: list[int], start: datetime, end: datetime) -> Metered:
    """Metered kWh of `node_ids` over [start, end) (apps.telemetry.selectors.
    power_kwh_by_day_rolled: whole hours from the hourly rollup, raw points for the partial
    hours at the ends and the hours a node did not report steadily). Whole past days are cached
    per node, so a 30-day page reads the database only for the days it has not seen, the
    partial first day and today."""
    from apps.telemetry.selectors import power_kwh_by_day_rolled as power_kwh_by_day

    node_ids = sorted(set(node_ids))
    gap = conf.METERED_MAX_GAP_S

    def midnight(day: date) -> datetime:
        return datetime.combine(day, dt_time(), tzinfo=UTC)

    first_whole = start.date() if start == midnight(start.date()) else start.date() + ONE_DAY
    today = end.date()
    whole = [first_whole + i * ONE_DAY for i in range(max((today - first_whole).days, 0))]
    keys = {(n, d): f"energy:metered:{n}:{d.isoformat()}" for n in node_ids for d in whole}
    cached = cache.get_many(list(keys.values())) if keys else {}
    missing = [d for d in whole if any(keys[(n, d)] not in cached for n in node_ids)]
    body_from = midnight(missing[0]) if missing else midnight(max(today, first_whole))
    read = power_kwh_by_day(node_ids=node_ids, start=max(body_from, start), end=end, max_gap_s=gap)
    head_end = min(midnight(first_whole), end)
    if start < head_end:  # the part of the first day inside the period
        head = power_kwh_by_day(node_ids=node_ids, start=start, end=head_end, max_gap_s=gap)
        for node_id, per_day in head.items():
            read.setdefault(node_id, {}).update(per_day)
    by_node: dict[int, float] = defaultdict(float)
    by_day: dict[date, float] = defaultdict(float)
    for (node_id, day), key in keys.items():
        if day < body_from.date() and (value := float(cached[key])):
            by_node[node_id] += value
            by_day[day] += value
    to_cache: dict[str, float] = {}
    for node_id in node_ids:
        for day, value in read.get(node_id, {}).items():
            by_node[node_id] += value
            by_day[day] += value
        for day in whole:
            if day >= body_from.date():
                to_cache[keys[(node_id, day)]] = read.get(node_id, {}).get(day, 0.0)
    if to_cache:
        cache.set_many(to_cache, conf.METERED_DAY_CACHE_S)
    return Metered(by_node=dict(by_node), by_day=dict(by_day))


def metered_energy_of(
    *, nodes: QuerySet[FabricationNode], start: datetime, end: datetime
) -> Metered:
    """The one read of "what these machines drew" for every page that shows it (the energy
    dashboard, the KPIs): `nodes` (the page's scope) without the decommissioned ones, metered
    over [start, end). Two pages with the same nodes and period show the same kWh."""
    node_ids = list(
        nodes.exclude(status=FabricationNode.Status.DECOMMISSIONED).values_list("pk", flat=True)
    )
    return metered_energy(node_ids=node_ids, start=start, end=end)


@dataclass(frozen=True)
class SiteDraw:
    """What the nodes standing at a site draw now, from their newest power readings, against
    the site's power cap."""

    site: Organization
    cap_kw: float | None
    now_kw: float
    reporting: int  # nodes with a fresh reading
    nodes: int

    @property
    def over_cap(self) -> bool:
        return bool(self.cap_kw) and self.now_kw > (self.cap_kw or 0.0)

    @property
    def cap_share(self) -> float | None:
        return self.now_kw / self.cap_kw if self.cap_kw else None


def node_draw_now(*, node_ids: list[int], now: datetime | None = None) -> dict[int, float]:
    """kW each node draws now (its newest power reading, while fresh); silent nodes left out."""
    from apps.telemetry.selectors import current_power_kw

    return current_power_kw(
        node_ids=node_ids, fresh=timedelta(seconds=conf.DRAW_FRESH_SECONDS), now=now
    )


def site_draw(*, sites: list[Organization], now: datetime | None = None) -> dict[int, SiteDraw]:
    """Each site's draw now over all the nodes standing there (the cap is the site's, whoever
    owns the machines), keyed by site id."""
    members: dict[int, list[int]] = {}
    for site in sites:
        members[site.pk] = list(site_nodes(site=site).values_list("pk", flat=True))
    draw = node_draw_now(node_ids=[n for ids in members.values() for n in ids], now=now)
    return {
        site.pk: SiteDraw(
            site=site,
            cap_kw=(cap.max_kw if (cap := cap_of(site)) is not None else None),
            now_kw=round(sum(draw.get(n, 0.0) for n in members[site.pk]), 3),
            reporting=sum(1 for n in members[site.pk] if n in draw),
            nodes=len(members[site.pk]),
        )
        for site in sites
    }


def site_power_live(*, user: User, nodes: Sequence[FabricationNode]) -> list[SitePower]:
    """The Live pages' cap flags (apps.telemetry.site_power, registered in receivers): for the
    sites `nodes` stand at that `user` may see (energy_sites_visible), the draw now of every
    node standing there against the site's cap. Sites without a cap are left out: there is
    nothing to flag."""
    keys: dict[int, list[int]] = defaultdict(list)
    for node in nodes:
        keys[node.site_id or node.vendor_id].append(node.pk)
    sites = list(
        energy_sites_visible(user=user)
        .filter(pk__in=list(keys), power_cap__max_kw__isnull=False)
        .select_related("power_cap")
    )
    if not sites:
        return []
    draws = site_draw(sites=sites)
    return [
        SitePower(
            site_id=site.pk,
            site_name=site.name,
            now_kw=draws[site.pk].now_kw,
            cap_kw=draws[site.pk].cap_kw,
            reporting=draws[site.pk].reporting,
            nodes=draws[site.pk].nodes,
            node_ids=tuple(keys[site.pk]),
        )
        for site in sites
    ]
