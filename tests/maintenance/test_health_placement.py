"""Node health in placement and self-healing, end to end (issue 18, items 1 and 3): telemetry
through the real ingest path, the threshold rules and the fleet monitor (Celery tasks, eager
as in the test settings), jobs scheduled by the task that runs after submission.

- A sick node is skipped and the reason is shown: in the stored plan, the job API and the
  job page; a node that never reported still gets work.
- A silent node loses every unfinished part, is marked offline and gets no new work, until
  it reports again."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import pytest
from django.utils import timezone

from apps.jobs import providers
from apps.jobs.models import Status
from apps.jobs.scheduler import NodeRisk
from apps.jobs.services import job_submit, part_transition
from apps.jobs.tasks import parts_heal_task, parts_schedule_task
from apps.maintenance.models import NodeHealth, Ticket
from apps.maintenance.selectors import node_risks
from apps.maintenance.tasks import fleet_monitor_task
from apps.telemetry.services import telemetry_ingest
from apps.vendors.models import FabricationNode
from tests.conftest import portal_client
from tests.fixtures.shop import Shop, ready_node
from tests.maintenance.factories import NodeHealthFactory

pytestmark = pytest.mark.django_db

STEEL = {
    "material": "steel",
    "process": "milling",
    "size_x_mm": 80,
    "size_y_mm": 60,
    "size_z_mm": 40,
}
PLA = {"material": "PLA", "process": "fdm", "size_x_mm": 60, "size_y_mm": 40, "size_z_mm": 30}


@pytest.fixture
def ingest(django_capture_on_commit_callbacks: Any) -> Any:
    """Readings through the real ingest path; its on-commit signal runs the threshold rules."""

    def send(node: FabricationNode, at: datetime, **values: float) -> None:
        with django_capture_on_commit_callbacks(execute=True):
            report = telemetry_ingest(
                points=[{"node": node.pk, "time": at.isoformat(), **values}], node_id=node.pk
            )
        assert report.accepted == 1, report.as_dict()

    return send


@pytest.fixture
def run(django_capture_on_commit_callbacks: Any) -> Any:
    """Run a service or task with what it queues after commit (scheduling) executed."""

    def call(fn: Any, *args: Any, **kwargs: Any) -> Any:
        with django_capture_on_commit_callbacks(execute=True):
            return fn(*args, **kwargs)

    return call


def test_a_sick_mill_is_skipped_with_the_reason_shown_in_the_plan_api_and_page(
    shop: Shop,
    default_rules,
    ingest,
    run,
    as_user,
):
    # given: Mill-01, frugal (it would win on energy), and the healthy Mill-A, never heard from
    sick = ready_node(shop, name="Mill-01", rated_power_kw=5.0)
    healthy = shop.mill
    # Mill-01 vibrates at 13.7 mm/s (critical above 4): the rules open a critical ticket
    now = timezone.now()
    for seconds in (60, 45, 30, 15, 1):
        ingest(sick, now - timedelta(seconds=seconds), vibration_mm_s=13.7)
    ticket = Ticket.objects.get(node=sick, severity="critical")
    # and the fleet monitor (every minute) scores it
    run(fleet_monitor_task.delay)
    assert NodeHealth.objects.get(node=sick).score < 100

    # when: a milling job is submitted (scheduling runs after commit)
    job = run(job_submit, by=shop.designer, title="Bracket", parts=[{**STEEL, "name": "b"}])

    # then: the part is on the healthy mill, and every view says why Mill-01 was skipped
    part = job.parts.get()
    assert part.status == Status.SCHEDULED
    assert part.assigned_node_id == healthy.pk
    said = f"Mill-01 skipped: critical ticket #{ticket.pk}"
    assert said in part.placement["reason"]
    designer = as_user(shop.designer)
    detail = designer.get(f"/api/v1/jobs/{job.pk}/").json()
    assert said in detail["parts"][0]["placement"]["reason"]
    explained = designer.get(f"/api/v1/jobs/{job.pk}/schedule/").json()["parts"][0]
    assert [s["node"] for s in explained["skipped"]] == [sick.pk]
    assert explained["skipped"][0]["name"] == "Mill-01"
    assert f"critical ticket #{ticket.pk}" in explained["skipped"][0]["reason"]
    assert {c["node_name"] for c in explained["candidates"]} == {"Mill-A"}
    page = portal_client(shop.designer).get(f"/jobs/{job.pk}/")
    assert page.status_code == 200
    assert said in page.content.decode()
    # the explanation is the job's: a vendor of no node on it sees nothing
    assert as_user(shop.rival).get(f"/api/v1/jobs/{job.pk}/schedule/").status_code == 404


def test_when_only_sick_nodes_can_make_a_part_it_waits_and_says_so(
    shop: Shop,
    run,
):
    from apps.maintenance.services import machine_fault_ticket

    ticket = machine_fault_ticket(node_id=shop.mill.pk, part_id=0, reason="spindle seized")
    job = run(job_submit, by=shop.designer, title="Bracket", parts=[{**STEEL, "name": "b"}])
    part = job.parts.get()
    assert part.status == Status.VALIDATED and part.assigned_node is None
    assert part.placement["reason"] == (
        f"no suitable node available: Mill-A skipped: critical ticket #{ticket.pk}"
    )


def test_maintenance_reports_rul_and_failure_risk_and_jobs_checks_them_per_part(
    shop: Shop,
    run,
):
    # given: Mill-A has 12 h of life left and Mill-02 a long queue-free run ahead of it
    NodeHealthFactory.create(node=shop.mill, rul_hours=12.0, score=80.0)
    other = ready_node(shop, name="Mill-02", rated_power_kw=9.0)
    risk = node_risks(node_ids=[shop.mill.pk, other.pk], now=timezone.now())
    assert risk[shop.mill.pk].rul_h == 12.0 and "RUL 12 h" in risk[shop.mill.pk].reasons
    assert other.pk not in risk  # nothing known: healthy
    # when: a short and a long part are submitted
    short = run(job_submit, by=shop.designer, title="S", parts=[{**STEEL, "name": "s"}])
    long = run(
        job_submit,
        by=shop.designer,
        title="L",
        parts=[{**STEEL, "name": "l", "quantity": 40, "size_z_mm": 200}],
    )
    # then: the short one may go to the worn mill; no lot of the long one runs past its life
    assert short.parts.get().assigned_node_id == shop.mill.pk
    for lot in long.parts.all():
        if lot.assigned_node_id == shop.mill.pk:
            assert lot.planned_finish is not None
            assert lot.planned_finish <= timezone.now() + timedelta(hours=12)
    assert any("Mill-A skipped: RUL 12 h" in lot.placement["reason"] for lot in long.parts.all())


def test_a_providers_out_of_range_risk_is_clamped(shop: Shop, run, monkeypatch):
    # a health provider that says more than it may: risk 5 is "as sick as it gets"
    registry: list[Any] = []
    monkeypatch.setattr(providers, "_health_providers", registry)
    said: dict[str, float] = {"risk": 5.0}
    providers.register_health_provider(
        lambda ids, now, h: {shop.mill.pk: NodeRisk(risk=said["risk"], reasons=("bad",))}
    )
    job = run(job_submit, by=shop.designer, title="B", parts=[{**STEEL, "name": "b"}])
    part = job.parts.get()
    assert part.assigned_node is None
    assert "Mill-A skipped: health 0/100, bad" in part.placement["reason"]
    # a risk that is no number is taken as the worst, not as healthy
    said["risk"] = float("nan")
    run(parts_schedule_task.delay)
    part.refresh_from_db()
    assert part.assigned_node is None
    assert "Mill-A skipped: health 0/100, bad" in part.placement["reason"]
    # and a negative one as no risk at all
    said["risk"] = -3.0
    run(parts_schedule_task.delay)
    part.refresh_from_db()
    assert part.assigned_node_id == shop.mill.pk


def test_a_silent_node_loses_all_its_parts_and_gets_work_again_once_it_reports(
    shop: Shop,
    ingest,
    run,
):
    a, b = shop.printer_a, shop.printer_b
    # given: printer A has reported before, and holds three parts: one running, two queued
    job = run(
        job_submit,
        by=shop.designer,
        title="Frame",
        parts=[{**PLA, "name": n} for n in ("running", "queued-1", "queued-2")],
    )
    job.parts.update(assigned_node=a)
    running = job.parts.get(name="running")
    for status in (Status.ASSIGNED, Status.IN_PROGRESS):
        part_transition(part=running, to=status, by=None, reason="node agent")
    FabricationNode.objects.filter(pk=a.pk).update(status=FabricationNode.Status.EXECUTING)
    # printer B is healthy and reporting; A's last report was 10 minutes ago
    now = timezone.now()
    ingest(b, now - timedelta(seconds=5), power_kw=0.1)
    ingest(a, now - timedelta(minutes=10), power_kw=0.2)

    # when: self-healing runs (Celery beat, every minute)
    moved = run(parts_heal_task.delay).get()

    # then: all three parts moved to printer B, and A is idle and offline
    assert moved == 3
    for part in job.parts.all():
        assert part.status == Status.SCHEDULED, part.name
        assert part.assigned_node_id == b.pk, part.name
        moved_back = part.history.filter(to_status=Status.VALIDATED).last()
        assert "has sent nothing for 10 min" in moved_back.reason
    a.refresh_from_db()
    assert a.status == FabricationNode.Status.IDLE
    health = NodeHealth.objects.get(node=a)
    assert not health.online and health.went_offline_at is not None

    # when: a new job comes while A is still silent, then B goes into maintenance
    later = run(job_submit, by=shop.designer, title="Clip", parts=[{**PLA, "name": "c"}])
    clip = later.parts.get()
    assert clip.assigned_node_id == b.pk  # never to the silent node
    assert "Printer-A skipped: offline for 10 min" in clip.placement["reason"]

    # when: printer A reports again
    ingest(a, timezone.now(), power_kw=0.05)
    run(fleet_monitor_task.delay)
    assert NodeHealth.objects.get(node=a).online

    # then: it gets new work again (B is busy with four parts, A is free)
    again = run(job_submit, by=shop.designer, title="Hook", parts=[{**PLA, "name": "h"}])
    hook = again.parts.get()
    assert hook.assigned_node_id == a.pk
    assert "skipped" not in hook.placement["reason"]
    assert run(parts_schedule_task.delay).get() == 0  # nothing left waiting


def test_a_node_that_never_reported_is_not_silent_and_keeps_its_work(
    shop: Shop,
    run,
):
    job = run(job_submit, by=shop.designer, title="Frame", parts=[{**PLA, "name": "arm"}])
    part = job.parts.get()
    assert part.status == Status.SCHEDULED
    # hours later, nothing was ever heard from either printer (no edge gateway)
    assert run(parts_heal_task.delay).get() == 0
    part.refresh_from_db()
    assert part.status == Status.SCHEDULED
    assert node_risks(node_ids=[part.assigned_node_id], now=timezone.now()) == {}


def test_work_moved_for_silence_never_goes_back_even_if_maintenance_allows_longer(
    shop: Shop,
    ingest,
    run,
    settings,
):
    # maintenance calls a node offline only after 30 min; self-healing moves work after 5
    settings.MAINTENANCE_OFFLINE_MINUTES = 30
    a, b = shop.printer_a, shop.printer_b
    job = run(job_submit, by=shop.designer, title="F", parts=[{**PLA, "name": "arm"}])
    job.parts.update(assigned_node=a)
    ingest(a, timezone.now() - timedelta(minutes=10), power_kw=0.2)
    assert run(parts_heal_task.delay).get() == 1
    part = job.parts.get()
    assert part.assigned_node_id == b.pk
    assert "Printer-A skipped: silent for 10 min" in part.placement["reason"]
