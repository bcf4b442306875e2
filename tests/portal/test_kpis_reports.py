"""Platform KPIs and the sustainability report, against hand-built histories with known answers.

The history is made through the real services (submit, schedule, start, complete, fail,
reschedule, node transitions; usage and consumption recorded by the part_finished receivers);
then its timestamps are moved into a fixed period two days long, ten days ago, and the kWh /
grams of the recorded rows set to round figures where a test is about the arithmetic."""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from apps.energy.models import Consumption
from apps.jobs.models import Job, Part
from apps.jobs.services import (
    job_submit,
    part_reschedule,
    parts_schedule,
    work_complete,
    work_fail,
    work_start,
)
from apps.materials.models import MaterialUsage
from apps.portal.kpis import platform_kpis
from apps.portal.reports import (
    period_parse,
    report_organizations,
    sustainability_report,
    sustainability_report_csv,
)
from apps.users.models import Organization, User
from apps.users.roles import Role
from apps.vendors.models import FabricationNode, NodeStatusChange
from apps.vendors.services import node_transition
from tests.conftest import jwt_client, portal_client
from tests.fixtures.fleet import Fleet, extended
from tests.fixtures.machines import rival_node
from tests.fixtures.shop import PRINTER, ready_node
from tests.users.factories import OrganizationFactory, UserFactory

pytestmark = pytest.mark.django_db

PLA = {"material": "PLA", "process": "fdm", "size_x_mm": 60, "size_y_mm": 40, "size_z_mm": 30}
ALU = {
    "material": "aluminium 6061",
    "process": "milling",
    "size_x_mm": 50,
    "size_y_mm": 40,
    "size_z_mm": 20,
}
# the period: two whole UTC days, ten days ago
D0 = timezone.make_aware(
    datetime.combine(timezone.localdate() - timedelta(days=10), datetime.min.time())
)
END = D0 + timedelta(days=2)


def h(hours: float) -> datetime:
    return D0 + timedelta(hours=hours)


def submit(by: Any, title: str, parts: list[dict[str, Any]]) -> Job:
    job = job_submit(by=by, title=title, parts=parts)
    parts_schedule()
    return job


def run(part: Part, capture: Any, *, fail: bool = False) -> Part:
    """The node starts the part and completes (or fails) it; receivers record usage and energy."""
    part.refresh_from_db()
    assert part.assigned_node_id is not None, part.status
    node_id = part.assigned_node_id
    with capture(execute=True):
        work_start(node_id=node_id, part_id=part.pk)
        if fail:
            work_fail(node_id=node_id, part_id=part.pk, reason="Warped", machine_fault=False)
        else:
            work_complete(node_id=node_id, part_id=part.pk, quality_score=0.9)
    return part


def place(part: Part, *, started: datetime, finished: datetime, kwh: float | None = None) -> None:
    """Moves a finished part's run, its consumption and its usage to the given times."""
    Part.objects.filter(pk=part.pk).update(started_at=started, finished_at=finished)
    energy: dict[str, Any] = {"started_at": started, "finished_at": finished}
    if kwh is not None:
        energy["kwh"] = kwh
    assert Consumption.objects.filter(part=part).update(**energy) == 1
    assert MaterialUsage.objects.filter(part=part).update(at=finished) == 1


def job_times(job: Job, *, created: datetime, completed: datetime) -> None:
    Job.objects.filter(pk=job.pk).update(created_at=created, completed_at=completed)


def history_before_period(*nodes: FabricationNode) -> None:
    """Everything the nodes went through so far happened before the period."""
    ids = [n.pk for n in nodes]
    FabricationNode.objects.filter(pk__in=ids).update(created_at=D0 - timedelta(days=3))
    NodeStatusChange.objects.filter(node_id__in=ids).update(at=D0 - timedelta(days=1))


@dataclass(frozen=True)
class History(Fleet):
    printer: FabricationNode
    mill: FabricationNode
    jobs: tuple[Job, Job, Job, Job]


@pytest.fixture
def history(fleet: Fleet, django_capture_on_commit_callbacks: Any) -> History:
    """Printer P (Forge's, at Site A) and the rival's mill R (at no site), in [D0, D0 + 48 h):

    job  node  created  part                               finished  machine h  kWh
    A    P     0 h      a completed first time             6 h       4 (2-6)    1.0
    M    R     8 h      r completed first time             12 h      2 (10-12)  3.0
    B    P     20 h     b rescheduled once, then completed 30 h      4 (26-30)  2.0
    C    P     28 h     c failed                           32 h      2 (30-32)  0.5
    P goes to maintenance from 36 h to 42 h; both nodes are idle the rest of the time."""
    capture = django_capture_on_commit_callbacks
    printer = ready_node(fleet, **PRINTER)
    mill = rival_node(fleet)
    designer = fleet.designer

    job_a = submit(designer, "Bracket", [{**PLA, "name": "a"}])
    part_a = run(job_a.parts.get(), capture)
    job_m = submit(designer, "Plate", [{**ALU, "name": "r"}])
    part_r = run(job_m.parts.get(), capture)
    job_b = submit(designer, "Frame", [{**PLA, "name": "b"}])
    part_b = job_b.parts.get()
    part_reschedule(part=part_b, reason="node taken out for a test")
    parts_schedule()
    run(part_b, capture)
    job_c = submit(designer, "Hinge", [{**PLA, "name": "c"}])
    part_c = run(job_c.parts.get(), capture, fail=True)
    assert Part.objects.get(pk=part_r.pk).assigned_node_id == mill.pk
    placed = Part.objects.filter(pk__in=[part_a.pk, part_b.pk, part_c.pk])
    assert set(placed.values_list("assigned_node_id", flat=True)) == {printer.pk}

    place(part_a, started=h(2), finished=h(6), kwh=1.0)
    place(part_r, started=h(10), finished=h(12), kwh=3.0)
    place(part_b, started=h(26), finished=h(30), kwh=2.0)
    place(part_c, started=h(30), finished=h(32), kwh=0.5)
    job_times(job_a, created=h(0), completed=h(6))
    job_times(job_m, created=h(8), completed=h(12))
    job_times(job_b, created=h(20), completed=h(30))
    job_times(job_c, created=h(28), completed=h(32))

    history_before_period(printer, mill)
    vendor = fleet.vendor
    node_transition(node=printer, to=FabricationNode.Status.MAINTENANCE, by=vendor, reason="belt")
    node_transition(node=printer, to=FabricationNode.Status.IDLE, by=vendor, reason="fixed")
    down, up = NodeStatusChange.objects.filter(node=printer).order_by("-id")[:2][::-1]
    NodeStatusChange.objects.filter(pk=down.pk).update(at=h(36))
    NodeStatusChange.objects.filter(pk=up.pk).update(at=h(42))
    return extended(History, fleet, printer=printer, mill=mill, jobs=(job_a, job_m, job_b, job_c))


# --- KPIs --------------------------------------------------------------------------------------


def test_kpis_of_the_whole_platform(history):
    kpis = platform_kpis(user=history.admin, start=D0, end=END)

    assert kpis.scope == "all"
    # jobs A and M completed on the first day, B on the second; C failed
    assert kpis.jobs_completed == 3
    assert [(d.day, d.jobs_completed) for d in kpis.days] == [
        (D0.date(), 2),
        ((D0 + timedelta(days=1)).date(), 1),
    ]
    assert kpis.jobs_per_day == pytest.approx(1.5)
    # (6 + 4 + 10) / 3 hours
    assert kpis.avg_completion_hours == pytest.approx(20 / 3)
    # a and r first time; b was rescheduled, c failed
    assert (kpis.parts_finished, kpis.parts_first_time) == (4, 2)
    assert kpis.first_time_success_rate == pytest.approx(0.5)
    # 12 machine hours over 2 nodes x 48 h; 6 h on each day
    assert kpis.nodes_in_service == 2
    assert kpis.machine_hours == pytest.approx(12)
    assert kpis.utilisation == pytest.approx(12 / 96)
    assert [d.utilisation for d in kpis.days] == pytest.approx([6 / 48, 6 / 48])
    # 6.5 kWh over 4 parts; 4 kWh on the first day, 2.5 on the second
    assert kpis.kwh == pytest.approx(6.5)
    assert kpis.energy_per_part_kwh == pytest.approx(6.5 / 4)
    assert [d.kwh for d in kpis.days] == pytest.approx([4.0, 2.5])
    # P was in maintenance 6 of its 48 hours, R up all 48
    assert kpis.node_hours == pytest.approx(96)
    assert kpis.up_hours == pytest.approx(90)
    assert kpis.uptime == pytest.approx(90 / 96)


def test_an_operator_sees_only_the_nodes_at_their_site(history):
    kpis = platform_kpis(user=history.operator, start=D0, end=END)

    assert kpis.scope == "operated"
    # the mill's job M is not theirs: A and B completed, C failed
    assert kpis.jobs_completed == 2
    assert kpis.avg_completion_hours == pytest.approx(8)
    assert (kpis.parts_finished, kpis.parts_first_time) == (3, 1)
    assert kpis.nodes_in_service == 1
    assert kpis.utilisation == pytest.approx(10 / 48)
    assert kpis.energy_per_part_kwh == pytest.approx(3.5 / 3)
    assert kpis.uptime == pytest.approx(42 / 48)


def test_kpis_are_empty_outside_the_history(history):
    kpis = platform_kpis(user=history.admin, start=END, end=END + timedelta(days=1))
    assert kpis.jobs_completed == 0 and kpis.avg_completion is None
    assert kpis.first_time_success_rate is None and kpis.energy_per_part_kwh is None
    assert kpis.utilisation == 0
    assert kpis.uptime == 1.0  # both idle the whole day


def test_kpis_take_a_fixed_number_of_queries_whatever_the_fleet(history, fleet: Fleet):
    with CaptureQueriesContext(connection) as before:
        platform_kpis(user=history.admin, start=D0, end=END)
    more = [ready_node(fleet, **{**PRINTER, "name": f"Extra-{i}"}) for i in range(3)]
    history_before_period(*more)
    for node in more:
        node_transition(
            node=node, to=FabricationNode.Status.MAINTENANCE, by=fleet.vendor, reason="x"
        )
    with CaptureQueriesContext(connection) as after:
        kpis = platform_kpis(user=history.admin, start=D0, end=END)
    # metered energy (apps.energy.selectors.metered_energy_of) adds a fixed few: the node ids,
    # the hourly rollup and the raw edges of the period, for its partial first day and the rest
    assert len(after) == len(before) <= 15
    assert kpis.nodes_in_service == 5


def test_roles_without_kpi_view_are_refused(history):
    for role in ("designer", "viewer", "vendor"):
        with pytest.raises(PermissionDenied):
            platform_kpis(user=history.user(role), start=D0, end=END)


def test_kpi_api(history):
    params = {"start": D0.date().isoformat(), "end": (D0.date() + timedelta(days=1)).isoformat()}
    body = jwt_client(history.engineer).get("/api/v1/kpis/", params).json()
    assert body["scope"] == "all"
    assert body["jobs_completed"] == 3
    assert body["first_time_success_rate"] == 0.5
    assert body["uptime"] == pytest.approx(0.9375)
    assert [d["jobs_completed"] for d in body["days"]] == [2, 1]

    op = jwt_client(history.operator).get("/api/v1/kpis/", params).json()
    assert op["scope"] == "operated" and op["jobs_completed"] == 2


def test_kpi_api_refuses_roles_without_kpi_view_and_bad_dates(history):
    denied = jwt_client(history.viewer).get("/api/v1/kpis/")
    assert denied.status_code == 403
    assert denied.json()["error"]["code"] == "permission_denied"
    assert jwt_client(history.designer).get("/api/v1/kpis/").status_code == 403

    admin = jwt_client(history.admin)
    bad = admin.get("/api/v1/kpis/", {"start": "2025-13-40"})
    assert bad.status_code == 400
    assert "start" in bad.json()["error"]["details"]
    backwards = admin.get("/api/v1/kpis/", {"start": "2025-03-10", "end": "2025-03-01"})
    assert backwards.status_code == 400 and "end" in backwards.json()["error"]["details"]
    assert admin.get("/api/v1/kpis/", {"days": "12"}).status_code == 400


def test_kpi_page_with_data_empty_and_bad_dates(history):
    client = portal_client(history.admin)
    page = client.get(
        "/ops/kpis/",
        {"start": D0.date().isoformat(), "end": (END - timedelta(days=1)).date().isoformat()},
    )
    assert page.status_code == 200
    text = page.content.decode()
    assert 'data-chart="kpi-jobs-data"' in text and 'data-chart="kpi-use-data"' in text
    assert "first-time success (2 of 4 parts)" in text
    assert page.context["kpis"].jobs_completed == 3

    empty = client.get("/ops/kpis/", {"days": "7"})  # the history is ten days old
    assert empty.status_code == 200
    assert b"No jobs completed, no parts run" in empty.content
    assert b"data-chart=" not in empty.content

    bad = client.get("/ops/kpis/", {"start": "yesterday"})
    assert bad.status_code == 200
    assert b"is not a date" in bad.content and b"Showing the last 30 days" in bad.content


def test_kpi_page_is_for_kpi_roles_only(history):
    assert portal_client(history.operator).get("/ops/kpis/").status_code == 200
    assert portal_client(history.viewer).get("/ops/kpis/").status_code == 403
    assert portal_client(history.designer).get("/ops/kpis/").status_code == 403


def test_home_pages_link_the_new_pages(history):
    ops = portal_client(history.operator).get("/ops/").content.decode()
    assert 'href="/ops/kpis/"' in ops and 'href="/reports/sustainability/"' in ops
    assert (
        'href="/reports/sustainability/"'
        in portal_client(history.designer).get("/designer/").content.decode()
    )
    assert (
        'href="/reports/sustainability/"'
        in portal_client(history.vendor).get("/vendor/").content.decode()
    )


# --- Sustainability report ---------------------------------------------------------------------


@dataclass(frozen=True)
class StudioHistory(Fleet):
    other_team: Organization
    outsider: User
    bracket: Job
    frame: Job
    studio: Organization


@pytest.fixture
def studio_history(
    fleet: Fleet,
    django_capture_on_commit_callbacks: Any,
) -> StudioHistory:
    """Studio's jobs on Forge's printer at Site A, with round figures:

    job     part  outcome    finished  kWh  source  kg CO2e  cost  used g  waste g
    Bracket a     completed  5 h       2.0  solar   0        0.40  100     10
    Frame   b1    completed  20 h      1.0  grid    0.475    0.30  50      5
    Frame   b2    failed     22 h      1.0  grid    0.475    0.30  50      50
    Old     o     completed  a day before the period: 5 kWh, 500 g (left out)
    and another team's job on the rival's mill in the period (7 kWh; not Studio's, Forge's nor
    Site A's)."""
    capture = django_capture_on_commit_callbacks
    ready_node(fleet, **PRINTER)
    rival_node(fleet)
    designer = fleet.designer
    other_team = OrganizationFactory.create(name="Other team", slug="other-team")
    outsider = UserFactory.create(role=Role.DESIGNER, email="out@f.test", organization=other_team)

    bracket = submit(designer, "Bracket", [{**PLA, "name": "a"}])
    part_a = run(bracket.parts.get(), capture)
    frame = submit(designer, "Frame", [{**PLA, "name": "b1"}, {**PLA, "name": "b2"}])
    b1, b2 = frame.parts.order_by("name")
    run(b1, capture)
    run(b2, capture, fail=True)
    old = submit(designer, "Old", [{**PLA, "name": "o"}])
    part_o = run(old.parts.get(), capture)
    foreign = submit(outsider, "Foreign", [{**ALU, "name": "f"}])
    part_f = run(foreign.parts.get(), capture)

    figures = [
        (part_a, h(5), 2.0, "solar", 0.0, "0.40", 100, 10),
        (b1, h(20), 1.0, "grid", 0.475, "0.30", 50, 5),
        (b2, h(22), 1.0, "grid", 0.475, "0.30", 50, 50),
        (part_o, D0 - timedelta(days=1), 5.0, "grid", 2.375, "1.50", 500, 50),
        (part_f, h(10), 7.0, "grid", 3.325, "2.10", 300, 30),
    ]
    for part, finished, kwh, kind, co2e, cost, used, waste in figures:
        started = finished - timedelta(hours=1)
        Part.objects.filter(pk=part.pk).update(started_at=started, finished_at=finished)
        assert (
            Consumption.objects.filter(part=part).update(
                started_at=started,
                finished_at=finished,
                kwh=kwh,
                source_kind=kind,
                co2e_kg=co2e,
                cost=Decimal(cost),
            )
            == 1
        )
        assert (
            MaterialUsage.objects.filter(part=part).update(at=finished, used_g=used, waste_g=waste)
            == 1
        )
    return extended(
        StudioHistory,
        fleet,
        other_team=other_team,
        outsider=outsider,
        bracket=bracket,
        frame=frame,
        studio=Organization.objects.get(slug="studio"),
    )


def test_the_report_of_a_design_team(studio_history):
    report = sustainability_report(organization=studio_history.studio, start=D0, end=END)

    assert report.kwh == pytest.approx(4.0)
    assert report.renewable_share == pytest.approx(0.5)
    assert report.co2e_kg == pytest.approx(0.95)
    assert report.cost == Decimal("1.0000")
    assert (report.parts, report.parts_completed) == (3, 2)
    assert report.kwh_per_part == pytest.approx(4 / 3)
    assert report.co2e_kg_per_part == pytest.approx(0.95 / 3)
    assert (report.used_g, report.waste_g) == (200, 65)
    assert report.waste_share == pytest.approx(0.325)
    lines = [
        (line.job_id, line.title, line.parts, line.kwh, line.co2e_kg, line.used_g, line.waste_g)
        for line in report.jobs
    ]
    assert lines == [
        (studio_history.bracket.pk, "Bracket", 1, 2.0, 0.0, 100, 10),
        (studio_history.frame.pk, "Frame", 2, 2.0, pytest.approx(0.95), 100, 55),
    ]


def test_vendor_and_site_reports_cover_their_machines(studio_history):
    forge = sustainability_report(organization=studio_history.forge, start=D0, end=END)
    site = sustainability_report(organization=studio_history.site, start=D0, end=END)
    rival = sustainability_report(
        organization=Organization.objects.get(slug="rival"), start=D0, end=END
    )
    team = sustainability_report(organization=studio_history.other_team, start=D0, end=END)

    assert forge.kwh == site.kwh == pytest.approx(4.0)
    assert forge.parts == site.parts == 3
    assert (rival.kwh, rival.parts, rival.used_g) == (pytest.approx(7.0), 1, 300)
    assert [line.title for line in team.jobs] == ["Foreign"]
    empty = sustainability_report(
        organization=studio_history.studio, start=END, end=END + timedelta(days=1)
    )
    assert empty.is_empty and empty.kwh_per_part is None and empty.waste_share == 0


def test_the_csv_export(studio_history):
    report = sustainability_report(organization=studio_history.studio, start=D0, end=END)
    rows = list(csv.reader(io.StringIO(sustainability_report_csv(report))))

    assert rows[0] == ["job_id", "title", "parts", "kwh", "kg_co2e", "material_used_g", "waste_g"]
    assert rows[1] == [
        str(studio_history.bracket.pk),
        "Bracket",
        "1",
        "2.0000",
        "0.0000",
        "100.0",
        "10.0",
    ]
    assert rows[2] == [
        str(studio_history.frame.pk),
        "Frame",
        "2",
        "2.0000",
        "0.9500",
        "100.0",
        "55.0",
    ]
    assert rows[3] == ["TOTAL", "", "3", "4.0000", "0.9500", "200.0", "65.0"]
    summary = {row[0]: row[1] for row in rows[5:]}
    assert summary["# organization"] == "Studio"
    assert summary["# renewable_share"] == "0.5000"
    assert summary["# kwh_per_part"] == "1.3333"
    assert summary["# waste_share"] == "0.3250"
    assert summary["# energy_cost"].startswith("1.0000 ")


def test_report_api_json_and_csv(studio_history):
    client = jwt_client(studio_history.designer)
    params = {
        "organization": studio_history.studio.pk,
        "start": D0.date().isoformat(),
        "end": (END - timedelta(days=1)).date().isoformat(),
    }
    body = client.get("/api/v1/reports/sustainability/", params).json()
    assert body["organization"]["name"] == "Studio"
    assert body["kwh"] == 4.0 and body["parts"] == 3 and body["waste_share"] == 0.325
    assert body["cost"] == "1.0000"
    assert [job["title"] for job in body["jobs"]] == ["Bracket", "Frame"]

    exported = client.get("/api/v1/reports/sustainability/", {**params, "format": "csv"})
    assert exported.status_code == 200
    assert exported["Content-Type"].startswith("text/csv")
    first, last = D0.strftime("%Y%m%d"), (END - timedelta(days=1)).strftime("%Y%m%d")
    assert exported["Content-Disposition"] == (
        f'attachment; filename="sustainability-studio-{first}-{last}.csv"'
    )
    assert exported.content.decode().splitlines()[3] == "TOTAL,,3,4.0000,0.9500,200.0,65.0"


def test_report_api_hides_other_organizations(studio_history):
    designer = jwt_client(studio_history.designer)
    for org in (studio_history.forge, studio_history.site, studio_history.other_team):
        response = designer.get("/api/v1/reports/sustainability/", {"organization": org.pk})
        assert response.status_code == 404
        assert response.json()["error"]["code"] == "not_found"
    as_csv = designer.get(
        "/api/v1/reports/sustainability/",
        {"organization": studio_history.forge.pk, "format": "csv"},
    )
    assert as_csv.status_code == 404 and as_csv.json()["error"]["code"] == "not_found"
    missing = designer.get("/api/v1/reports/sustainability/")
    assert missing.status_code == 400 and "organization" in missing.json()["error"]["details"]
    # an admin reports on anyone; a vendor on their own company
    admin = jwt_client(studio_history.admin)
    assert (
        admin.get(
            "/api/v1/reports/sustainability/", {"organization": studio_history.forge.pk}
        ).status_code
        == 200
    )
    vendor = jwt_client(studio_history.vendor)
    assert (
        vendor.get(
            "/api/v1/reports/sustainability/", {"organization": studio_history.forge.pk}
        ).status_code
        == 200
    )
    assert list(report_organizations(user=studio_history.vendor)) == [studio_history.forge]


def test_report_page_with_data_csv_and_empty(studio_history):
    client = portal_client(studio_history.designer)
    params = {"start": D0.date().isoformat(), "end": (END - timedelta(days=1)).date().isoformat()}
    page = client.get("/reports/sustainability/", params)
    assert page.status_code == 200
    assert page.context["organization"] == studio_history.studio
    text = page.content.decode()
    assert "Bracket" in text and "Frame" in text and "Download CSV" in text
    assert "format=csv" in page.context["csv_query"]

    exported = client.get("/reports/sustainability/?" + page.context["csv_query"])
    assert exported.status_code == 200 and exported["Content-Type"].startswith("text/csv")
    assert exported["Content-Disposition"].startswith("attachment; filename=")
    assert "TOTAL,,3,4.0000" in exported.content.decode()

    empty = client.get("/reports/sustainability/", {"days": "7"})
    assert empty.status_code == 200 and b"No part of Studio's jobs" in empty.content
    assert empty.context["metered"] is None  # a design team has no machines

    bad = client.get("/reports/sustainability/", {"start": "2025-02-30"})
    assert bad.status_code == 200 and b"is not a date" in bad.content


def test_report_page_hides_other_organizations_and_needs_one(studio_history):
    client = portal_client(studio_history.designer)
    other = studio_history.forge.pk
    assert client.get("/reports/sustainability/", {"organization": other}).status_code == 404
    assert client.get("/reports/sustainability/", {"organization": "x"}).status_code == 404
    loner = UserFactory.create(role=Role.DESIGNER, email="loner@f.test")
    page = portal_client(loner).get("/reports/sustainability/")
    assert page.status_code == 200 and b"not a member of any organization" in page.content


# --- Period ------------------------------------------------------------------------------------


def test_period_parse():
    now = datetime(2025, 3, 15, 12, 0, tzinfo=UTC)
    last7 = period_parse(days="7", now=now)
    assert (last7.start, last7.end, last7.days) == (now - timedelta(days=7), now, 7)
    assert period_parse(now=now).days == 30
    custom = period_parse(start="2025-03-01", end="2025-03-02", now=now)
    assert custom.start == datetime(2025, 3, 1, tzinfo=UTC)
    assert custom.end == datetime(2025, 3, 3, tzinfo=UTC)  # the end day counts whole
    assert custom.label == "2025-03-01 to 2025-03-02"
    exact = period_parse(start="2025-03-01T06:00:00+00:00", end="2025-03-01T18:00:00Z", now=now)
    assert exact.end - exact.start == timedelta(hours=12)
    for bad, field in [
        ({"days": "12"}, "days"),
        ({"start": "tomorrow"}, "start"),
        ({"start": "2025-03-05", "end": "2025-03-01"}, "end"),
        ({"start": "2025-03-20"}, "end"),  # starts after now (and after its default end)
        ({"start": "2023-01-01", "end": "2025-01-01"}, "start"),
    ]:
        with pytest.raises(ValidationError) as caught:
            period_parse(now=now, **bad)
        assert field in caught.value.message_dict, bad


def _kpi_chart(page: Any, chart_id: str) -> dict[str, Any]:
    return next(c for c in page.context["charts"] if c["id"] == chart_id)


def test_kpi_charts_have_fixed_axes_with_units_and_say_why_when_all_zero():
    """Utilisation runs 0-100 % and counts and kWh start at zero; a period of zeros is an empty
    state that says why, not a flat line on an axis from -1 to 1."""
    from apps.portal.kpis import KpiDay, PlatformKpis
    from apps.portal.views import _kpi_charts

    now = timezone.now()
    days = [KpiDay(day=(now - timedelta(days=i)).date(), available_hours=24.0) for i in range(3)]
    fields: dict[str, Any] = {
        "start": now - timedelta(days=3),
        "end": now,
        "scope": "all",
        "jobs_completed": 0,
        "avg_completion": None,
        "parts_finished": 0,
        "parts_first_time": 0,
        "nodes_in_service": 1,
        "machine_hours": 0.0,
        "available_hours": 72.0,
        "kwh": 0.0,
        "metered_kwh": 0.0,
        "energy_parts": 0,
        "node_hours": 72.0,
        "up_hours": 72.0,
        "days": days,
    }
    kpis = PlatformKpis(**fields)
    jobs, use = _kpi_charts(kpis)
    assert use["y_range"] == [0, 100] and use["axes"] == {
        "y": "Utilisation (%)",
        "y1": "Energy drawn (kWh)",
    }
    assert jobs["y_min"] == 0 and jobs["axes"]["y"] == "Jobs completed"
    assert "No job was completed in this period" in jobs["no_data"]
    assert "utilisation was 0 % on the 1 node in service" in use["no_data"]
    # with a part run, the chart draws
    days[0] = KpiDay(day=days[0].day, machine_hours=6.0, available_hours=24.0, kwh=1.5)
    _, use = _kpi_charts(PlatformKpis(**{**fields, "days": days}))
    assert "no_data" not in use and 25.0 in use["series"][0]["data"]
