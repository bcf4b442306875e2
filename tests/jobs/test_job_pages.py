"""The jobs pages: list, two-step submission with an STL upload, job page, cancel, access."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.utils import timezone

from apps.jobs.models import Job
from apps.jobs.services import job_submit, parts_schedule
from tests.conftest import portal_client
from tests.fixtures.shop import Shop
from tests.jobs.conftest import STL_CUBE_ASCII

pytestmark = pytest.mark.django_db


def form_data(step: str, **part):
    return {
        "title": "Bracket run",
        "priority": 6,
        "deadline": "",
        "parts-TOTAL_FORMS": 1,
        "parts-INITIAL_FORMS": 0,
        "parts-MIN_NUM_FORMS": 1,
        "parts-MAX_NUM_FORMS": 20,
        "parts-0-name": "bracket",
        "parts-0-material": "pla",
        "parts-0-process": "fdm",
        "parts-0-quantity": 2,
        "parts-0-complexity": 5,
        "step": step,
        **{f"parts-0-{k}": v for k, v in part.items()},
    }


def test_estimate_then_confirm_with_an_uploaded_model(shop: Shop):
    client = portal_client(shop.designer)
    page = client.get("/jobs/new/")
    assert page.status_code == 200 and b"Check feasibility" in page.content
    upload = SimpleUploadedFile("box.stl", STL_CUBE_ASCII.encode())
    estimate = client.post("/jobs/new/", {**form_data("estimate"), "parts-0-cad_upload": upload})
    assert estimate.status_code == 200
    html = estimate.content.decode()
    assert "Feasibility and estimate" in html and "Confirm and submit" in html
    cad_id = estimate.context["formset"].forms[0].data["parts-0-cad_file"]
    assert Job.objects.count() == 0
    confirmed = client.post("/jobs/new/", form_data("confirm", cad_file=cad_id))
    job = Job.objects.get()
    assert confirmed.status_code == 302 and confirmed["Location"] == f"/jobs/{job.pk}/"
    part = job.parts.get()
    assert part.cad_file_id == int(cad_id) and part.size_z_mm == 30


def test_an_infeasible_job_shows_why_and_bad_files_are_refused(shop: Shop):
    client = portal_client(shop.designer)
    response = client.post(
        "/jobs/new/", form_data("estimate", size_x_mm=900, size_y_mm=10, size_z_mm=10)
    )
    assert "cannot be made on the fleet" in response.content.decode()
    assert "fits 900 x 10 x 10 mm" in response.content.decode()
    bad = SimpleUploadedFile("broken.stl", b"solid x\nendsolid x\n")
    response = client.post("/jobs/new/", {**form_data("estimate"), "parts-0-cad_upload": bad})
    assert response.status_code == 400 and "parts[0]" in response.content.decode()


def test_job_page_explains_the_schedule_and_the_owner_cancels(shop: Shop):
    job = job_submit(
        by=shop.designer,
        title="Frame",
        parts=[
            {
                "name": "arm",
                "material": "PLA",
                "process": "fdm",
                "size_x_mm": 50,
                "size_y_mm": 50,
                "size_z_mm": 50,
            }
        ],
    )
    parts_schedule()
    client = portal_client(shop.designer)
    html = client.get(f"/jobs/{job.pk}/").content.decode()
    assert "Why each part went where it did" in html and "Printer-A" in html
    assert "Cancel the job" in html
    listing = client.get("/jobs/?status=scheduled").content.decode()
    assert "Frame" in listing
    assert (
        "Cancel the job" not in portal_client(shop.viewer).get(f"/jobs/{job.pk}/").content.decode()
    )
    response = client.post(f"/jobs/{job.pk}/cancel/", {"reason": "Changed design"}, follow=True)
    assert "Job cancelled." in response.content.decode()
    job.refresh_from_db()
    assert job.status == "cancelled"


def test_who_may_open_which_page(shop: Shop, make_user):
    job = job_submit(
        by=shop.designer,
        title="Frame",
        parts=[
            {
                "name": "arm",
                "material": "PLA",
                "process": "fdm",
                "size_x_mm": 5,
                "size_y_mm": 5,
                "size_z_mm": 5,
            }
        ],
    )
    assert portal_client(make_user("designer")).get(f"/jobs/{job.pk}/").status_code == 404
    assert portal_client(shop.viewer).get("/jobs/new/").status_code == 403
    assert (
        portal_client(shop.vendor).post(f"/jobs/{job.pk}/cancel/", {"reason": "x"}).status_code
        == 403
    )
    from django.test import Client

    assert Client().get("/jobs/").status_code == 302  # to the login page
    empty = portal_client(make_user("designer")).get("/jobs/").content.decode()
    assert "No jobs" in empty


def test_vendor_sees_work_and_utilisation_on_own_nodes_only(shop: Shop):
    from datetime import timedelta

    from django.utils import timezone

    from apps.jobs.models import Part
    from apps.jobs.services import work_complete, work_start

    job = job_submit(
        by=shop.designer,
        title="Frame",
        parts=[
            {
                "name": n,
                "material": "PLA",
                "process": "fdm",
                "size_x_mm": 5,
                "size_y_mm": 5,
                "size_z_mm": 5,
            }
            for n in ("arm", "leg", "hip")
        ],
    )
    parts_schedule()
    done = job.parts.get(name="arm")
    assert done.assigned_node_id is not None
    work_start(node_id=done.assigned_node_id, part_id=done.pk)
    work_complete(node_id=done.assigned_node_id, part_id=done.pk, quality_score=0.9)
    Part.objects.filter(pk=done.pk).update(
        started_at=timezone.now() - timedelta(hours=16, minutes=48), finished_at=timezone.now()
    )
    html = portal_client(shop.vendor).get("/vendor/work/").content.decode()
    assert "Printer-A" in html and "Printer-B" in html and "Mill-A" in html
    assert "leg" in html and "hip" in html and ">arm<" not in html  # done parts leave the queue
    assert "utilisation 10.0% (16.8 h)" in html  # 16.8 of 168 hours
    rival = portal_client(shop.rival).get("/vendor/work/").content.decode()
    assert "Printer-A" not in rival and "no fabrication nodes yet" in rival
    assert portal_client(shop.designer).get("/vendor/work/").status_code == 403


def test_home_pages_summarise_jobs_and_the_fleet(shop: Shop, signed_in):
    designer = signed_in(shop.designer)
    assert "No jobs yet" in designer.get("/designer/").content.decode()
    job_submit(
        by=shop.designer,
        title="Gears",
        parts=[
            {
                "name": "g",
                "material": "PLA",
                "process": "fdm",
                "size_x_mm": 20,
                "size_y_mm": 20,
                "size_z_mm": 10,
            }
        ],
    )
    home = designer.get("/designer/").content.decode()
    assert "Gears" in home and "1 job under way" in home and "No jobs yet" not in home
    # three idle nodes (two printers and a mill) of one vendor: counted together
    vendor_home = signed_in(shop.vendor).get("/vendor/").content.decode()
    assert "Idle: 3" in vendor_home


def test_designer_lets_the_platform_pick_greener_hours_before_a_deadline(shop: Shop):
    client = portal_client(shop.designer)
    dims = {"size_x_mm": 40, "size_y_mm": 40, "size_z_mm": 20}
    page = client.get("/jobs/new/")
    assert (
        b"When to run it" in page.content and b"Lowest carbon before the deadline" in page.content
    )
    # without a deadline the choice is refused with the reason, and nothing is stored
    refused = client.post("/jobs/new/", {**form_data("confirm", **dims), "timing": "lowest_carbon"})
    assert refused.status_code == 400
    assert "Give a deadline" in refused.content.decode()
    assert Job.objects.count() == 0
    # with one it is kept and shown on the job's page
    deadline = (timezone.now() + timedelta(days=2)).strftime("%Y-%m-%dT%H:%M")
    done = client.post(
        "/jobs/new/",
        {**form_data("confirm", **dims), "timing": "lowest_carbon", "deadline": deadline},
    )
    job = Job.objects.get()
    assert done.status_code == 302 and job.timing == Job.Timing.LOWEST_CARBON
    assert "Lowest carbon before the deadline" in client.get(f"/jobs/{job.pk}/").content.decode()


def test_vendor_work_history_keeps_finished_parts_with_filters_and_own_nodes_only(shop: Shop):
    from apps.jobs.models import Part
    from apps.jobs.services import work_complete, work_fail
    from tests.jobs.conftest import start_in_turn

    def part(name):
        return {
            "name": name,
            "material": "PLA",
            "process": "fdm",
            "size_x_mm": 5,
            "size_y_mm": 5,
            "size_z_mm": 5,
        }

    job = job_submit(by=shop.designer, title="Frame", parts=[part("arm"), part("leg")])
    other = job_submit(by=shop.designer, title="Gearbox", parts=[part("cog")])
    parts_schedule()
    arm, leg = job.parts.get(name="arm"), job.parts.get(name="leg")
    cog = other.parts.get()
    # each made in its node's turn (parts ahead of it in the plan are completed first)
    start_in_turn(leg)
    assert leg.assigned_node_id is not None
    work_fail(node_id=leg.assigned_node_id, part_id=leg.pk, reason="warped", machine_fault=False)
    for p in (arm, cog):
        p.refresh_from_db()
        if p.status != Part.Status.COMPLETED:
            start_in_turn(p)
            assert p.assigned_node_id is not None
            work_complete(node_id=p.assigned_node_id, part_id=p.pk, quality_score=0.93)
    Part.objects.filter(pk=cog.pk).update(finished_at=timezone.now() - timedelta(days=3))
    client = portal_client(shop.vendor)

    html = client.get("/vendor/work/history/").content.decode()
    for name in ("arm", "leg", "cog", f"#{job.pk} Frame", "warped"):
        assert name in html, name
    assert "3 parts." in html
    # the newest first: leg (failed now), arm (completed now), cog (3 days ago)
    assert html.index("cog") > html.index("arm")

    failed = client.get("/vendor/work/history/?status=failed").content.decode()
    assert "warped" in failed and "Gearbox" not in failed and "1 part." in failed
    recent = client.get(
        f"/vendor/work/history/?finished_from={(timezone.now() - timedelta(days=1)).date()}"
    ).content.decode()
    assert "Gearbox" not in recent and "2 parts." in recent
    found = client.get("/vendor/work/history/?q=gear").content.decode()
    assert "cog" in found and "Frame" not in found
    on_node = client.get(f"/vendor/work/history/?node={cog.assigned_node_id}").content.decode()
    assert "Gearbox" in on_node

    # bad filters: a precise error, nothing hidden
    bad = client.get("/vendor/work/history/?finished_from=2026-12-05&finished_to=2026-12-01")
    assert bad.status_code == 400 and "The end day is before the start day." in bad.content.decode()
    assert client.get("/vendor/work/history/?node=abc").status_code == 400
    none = client.get("/vendor/work/history/?q=nothing-like-this").content.decode()
    assert "No finished part matches these filters." in none

    # another vendor's node is not a choice and shows nothing of ours
    rival = portal_client(shop.rival)
    page = rival.get("/vendor/work/history/")
    assert page.status_code == 200 and "Frame" not in page.content.decode()
    assert "no fabrication nodes yet" in page.content.decode()
    assert rival.get(f"/vendor/work/history/?node={cog.assigned_node_id}").status_code == 400
    assert portal_client(shop.designer).get("/vendor/work/history/").status_code == 403
