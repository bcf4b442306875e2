"""The sustainability report of one organization over a period: energy (kWh, renewable share,
cost), carbon (kg CO2e, total and per part) and material (used, waste) of everything the
organization is party to, with a per-job breakdown for the CSV export. Also the reporting
period the pages and the API share (`period_parse`).

An organization is party to a record as in `apps.energy.selectors.consumption_summary`: its
jobs (a design team), its nodes (a vendor: `node.vendor`), the nodes standing at it (an operator
site: `node.site`)."""

from __future__ import annotations

import csv
import io
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from typing import Any

from django.core.exceptions import ValidationError
from django.db.models import Count, Q, QuerySet, Sum
from django.shortcuts import get_object_or_404
from django.utils import timezone
from django.utils.dateparse import parse_date, parse_datetime

from apps.energy.models import Consumption
from apps.energy.selectors import consumption_summary
from apps.jobs.models import Job, Part, Status
from apps.materials.models import MaterialUsage
from apps.users.models import Organization, User
from apps.users.roles import Action, user_can
from apps.users.selectors import user_organization_ids

# --- Period ------------------------------------------------------------------------------------

PERIOD_DAYS = (7, 30, 90)
DEFAULT_DAYS = 30
MAX_PERIOD_DAYS = 366


@dataclass(frozen=True)
class Period:
    """[start, end), aware. `days` is the preset it came from (None: a custom range)."""

    start: datetime
    end: datetime
    days: int | None = None

    @property
    def label(self) -> str:
        if self.days is not None:
            return f"last {self.days} days"
        last = timezone.localtime(self.end - timedelta(microseconds=1))
        return f"{timezone.localtime(self.start):%Y-%m-%d} to {last:%Y-%m-%d}"


def _moment(raw: str, *, name: str, end_of_day: bool) -> datetime:
    """A date (YYYY-MM-DD: its midnight, or the next one for an end) or an ISO 8601 datetime
    (naive ones are in the current time zone)."""
    value = raw.strip()
    try:
        day = parse_date(value)
        moment = parse_datetime(value) if day is None else None
    except ValueError:
        day = moment = None
    if day is not None:
        if end_of_day:
            day += timedelta(days=1)
        return timezone.make_aware(datetime.combine(day, time.min))
    if moment is None:
        raise ValidationError({name: [f"{value!r} is not a date (YYYY-MM-DD) or a date-time."]})
    return moment if timezone.is_aware(moment) else timezone.make_aware(moment)


def period_parse(
    *,
    days: str | None = None,
    start: str | None = None,
    end: str | None = None,
    now: datetime | None = None,
) -> Period:
    """The period asked for: `start`/`end` (an end date counts whole: to=2025-03-31 includes
    that day; a missing start is `DEFAULT_DAYS` before the end, a missing end is now), else the
    last `days` (7, 30 or 90; 30 by default). ValidationError naming the bad field otherwise."""
    now = now or timezone.now()
    start, end = (start or "").strip(), (end or "").strip()
    if start or end:
        end_at = _moment(end, name="end", end_of_day=True) if end else now
        start_at = (
            _moment(start, name="start", end_of_day=False)
            if start
            else end_at - timedelta(days=DEFAULT_DAYS)
        )
        if start_at >= end_at:
            raise ValidationError({"end": ["The end must come after the start."]})
        if start_at >= now:
            raise ValidationError({"start": ["The period starts in the future."]})
        if end_at - start_at > timedelta(days=MAX_PERIOD_DAYS):
            raise ValidationError({"start": [f"A period spans at most {MAX_PERIOD_DAYS} days."]})
        return Period(start=start_at, end=end_at)
    raw = (days or "").strip()
    if not raw:
        return Period(start=now - timedelta(days=DEFAULT_DAYS), end=now, days=DEFAULT_DAYS)
    if not raw.isdigit() or int(raw) not in PERIOD_DAYS:
        choices = ", ".join(str(d) for d in PERIOD_DAYS)
        raise ValidationError({"days": [f"One of {choices}."]})
    return Period(start=now - timedelta(days=int(raw)), end=now, days=int(raw))


# --- Who may report on what --------------------------------------------------------------------


def report_organizations(*, user: User) -> QuerySet[Organization]:
    """The organizations `user` may report on: their own (memberships); admins any."""
    if user_can(user, Action.SYSTEM_ADMIN):
        return Organization.objects.all()
    return Organization.objects.filter(pk__in=user_organization_ids(user=user))


def report_organization_get(*, user: User, pk: int) -> Organization:
    """404, not 403, so ids don't leak."""
    return get_object_or_404(report_organizations(user=user), pk=pk)


# --- The report --------------------------------------------------------------------------------


@dataclass(frozen=True)
class JobLine:
    """One job's share of the report (job None: consumption or usage whose job was deleted)."""

    job_id: int | None
    title: str
    parts: int = 0
    kwh: float = 0.0
    co2e_kg: float = 0.0
    used_g: float = 0.0
    waste_g: float = 0.0


@dataclass(frozen=True)
class SustainabilityReport:
    """`parts` are the parts finished (completed or failed) in the period; the per-part
    figures divide by them (a failed part's energy and material were spent all the same).
    `cost` is in `currency`; consumption priced in other currencies is left out of it."""

    organization: Organization
    start: datetime
    end: datetime
    kwh: float
    renewable_kwh: float
    co2e_kg: float
    cost: Decimal
    currency: str
    parts: int
    parts_completed: int
    used_g: float
    waste_g: float
    jobs: list[JobLine] = field(default_factory=list)

    @property
    def renewable_share(self) -> float:
        return self.renewable_kwh / self.kwh if self.kwh > 0 else 0.0

    @property
    def waste_share(self) -> float:
        return self.waste_g / self.used_g if self.used_g > 0 else 0.0

    @property
    def kwh_per_part(self) -> float | None:
        return self.kwh / self.parts if self.parts else None

    @property
    def co2e_kg_per_part(self) -> float | None:
        return self.co2e_kg / self.parts if self.parts else None

    @property
    def is_empty(self) -> bool:
        return not (self.parts or self.kwh or self.used_g or self.jobs)

    def as_dict(self) -> dict[str, Any]:
        def rounded(value: float | None) -> float | None:
            return None if value is None else round(value, 4)

        return {
            "organization": {"id": self.organization.pk, "name": self.organization.name},
            "start": self.start,
            "end": self.end,
            "kwh": rounded(self.kwh),
            "renewable_kwh": rounded(self.renewable_kwh),
            "renewable_share": rounded(self.renewable_share),
            "co2e_kg": rounded(self.co2e_kg),
            "cost": str(self.cost),
            "currency": self.currency,
            "parts": self.parts,
            "parts_completed": self.parts_completed,
            "kwh_per_part": rounded(self.kwh_per_part),
            "co2e_kg_per_part": rounded(self.co2e_kg_per_part),
            "material_used_g": rounded(self.used_g),
            "waste_g": rounded(self.waste_g),
            "waste_share": rounded(self.waste_share),
            "jobs": [
                {
                    "job_id": line.job_id,
                    "title": line.title,
                    "parts": line.parts,
                    "kwh": rounded(line.kwh),
                    "co2e_kg": rounded(line.co2e_kg),
                    "material_used_g": rounded(line.used_g),
                    "waste_g": rounded(line.waste_g),
                }
                for line in self.jobs
            ],
        }


def _party(organization: Organization, *, node: str) -> Q:
    """Rows `organization` is party to: its jobs, its nodes, the nodes at its site."""
    return (
        Q(job__organization=organization)
        | Q(**{f"{node}__vendor": organization})
        | Q(**{f"{node}__site": organization})
    )


def sustainability_report(
    *, organization: Organization, start: datetime, end: datetime
) -> SustainabilityReport:
    """The organization's figures for [start, end): energy and carbon from the consumption
    recorded for parts that finished then, material from their usage. Six queries."""
    energy = consumption_summary(organization=organization, start=start, end=end)
    consumption = (
        Consumption.objects.filter(
            Q(job__organization=organization) | Q(node__vendor=organization) | Q(site=organization)
        )
        .filter(finished_at__gte=start, finished_at__lt=end)
        .order_by()
        .values("job_id")
        .annotate(kwh=Sum("kwh"), co2e=Sum("co2e_kg"))
    )
    usage = (
        MaterialUsage.objects.filter(_party(organization, node="node"), at__gte=start, at__lt=end)
        .order_by()
        .values("job_id")
        .annotate(used=Sum("used_g"), waste=Sum("waste_g"))
    )
    parts = (
        Part.objects.filter(
            _party(organization, node="assigned_node"),
            status__in=[Status.COMPLETED, Status.FAILED],
            finished_at__gte=start,
            finished_at__lt=end,
        )
        .order_by()
        .values("job_id")
        .annotate(n=Count("id"), done=Count("id", filter=Q(status=Status.COMPLETED)))
    )
    lines: dict[int | None, dict[str, Any]] = defaultdict(dict)
    for energy_row in consumption:
        lines[energy_row["job_id"]].update(
            kwh=energy_row["kwh"] or 0.0, co2e_kg=energy_row["co2e"] or 0.0
        )
    for usage_row in usage:
        lines[usage_row["job_id"]].update(
            used_g=usage_row["used"] or 0.0, waste_g=usage_row["waste"] or 0.0
        )
    parts_total = parts_completed = 0
    for parts_row in parts:
        lines[parts_row["job_id"]]["parts"] = parts_row["n"]
        parts_total += parts_row["n"]
        parts_completed += parts_row["done"]
    titles = dict(
        Job.objects.filter(pk__in=[pk for pk in lines if pk is not None]).values_list("pk", "title")
    )
    jobs = [
        JobLine(job_id=pk, title=titles.get(pk, "") if pk else "(deleted job)", **values)
        for pk, values in sorted(lines.items(), key=lambda item: (item[0] is None, item[0] or 0))
    ]
    return SustainabilityReport(
        organization=organization,
        start=start,
        end=end,
        kwh=energy.kwh,
        renewable_kwh=energy.renewable_kwh,
        co2e_kg=energy.co2e_kg,
        cost=energy.cost,
        currency=energy.currency,
        parts=parts_total,
        parts_completed=parts_completed,
        used_g=sum(line.used_g for line in jobs),
        waste_g=sum(line.waste_g for line in jobs),
        jobs=jobs,
    )


def _cell(text: str) -> str:
    """Text a spreadsheet would run as a formula is quoted (CSV injection)."""
    return f"'{text}" if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


CSV_HEADER = ["job_id", "title", "parts", "kwh", "kg_co2e", "material_used_g", "waste_g"]


def sustainability_report_csv(report: SustainabilityReport) -> str:
    """The per-job rows, then a TOTAL row and the headline figures (one `# name,value` line
    each, so spreadsheets keep the table rectangular above them)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CSV_HEADER)
    for line in report.jobs:
        writer.writerow(
            [
                line.job_id if line.job_id is not None else "",
                _cell(line.title),
                line.parts,
                f"{line.kwh:.4f}",
                f"{line.co2e_kg:.4f}",
                f"{line.used_g:.1f}",
                f"{line.waste_g:.1f}",
            ]
        )
    writer.writerow(
        [
            "TOTAL",
            "",
            report.parts,
            f"{report.kwh:.4f}",
            f"{report.co2e_kg:.4f}",
            f"{report.used_g:.1f}",
            f"{report.waste_g:.1f}",
        ]
    )
    writer.writerow([])

    def optional(value: float | None, digits: int) -> str:
        return "" if value is None else f"{value:.{digits}f}"

    summary: list[tuple[str, object]] = [
        ("organization", _cell(report.organization.name)),
        ("start", report.start.isoformat()),
        ("end", report.end.isoformat()),
        ("renewable_share", f"{report.renewable_share:.4f}"),
        ("energy_cost", f"{report.cost} {report.currency}"),
        ("kwh_per_part", optional(report.kwh_per_part, 4)),
        ("kg_co2e_per_part", optional(report.co2e_kg_per_part, 4)),
        ("waste_share", f"{report.waste_share:.4f}"),
        ("parts_completed", report.parts_completed),
    ]
    for name, value in summary:
        writer.writerow([f"# {name}", value])
    return out.getvalue()


def report_filename(report: SustainabilityReport) -> str:
    slug = report.organization.slug or f"org-{report.organization.pk}"
    last: date = timezone.localtime(report.end - timedelta(microseconds=1)).date()
    first: date = timezone.localtime(report.start).date()
    return f"sustainability-{slug}-{first:%Y%m%d}-{last:%Y%m%d}.csv"
