"""The estimate is the plan (issue 18, item 6): a job's estimated completion comes from a dry
run of the scheduler on the fleet as it stands (queues, power caps), so it agrees with the
plan the job gets once submitted; nothing is stored by the estimate."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from apps.jobs.models import Job, Part
from apps.jobs.services import job_submit, parts_schedule
from tests.fixtures.shop import Shop

pytestmark = pytest.mark.django_db

PLA = {"material": "PLA", "process": "fdm", "size_x_mm": 60, "size_y_mm": 40, "size_z_mm": 30}
LONG = {**PLA, "size_x_mm": 200, "size_y_mm": 200, "size_z_mm": 150}  # hours of printing


def completion(parts) -> datetime:
    finishes = [p.planned_finish for p in parts]
    assert all(finishes), "every part is planned"
    return max(finishes)


def test_the_estimate_counts_the_queue_and_agrees_with_the_plan(shop: Shop, as_user):
    # both printers are busy for hours with an earlier job
    busy = job_submit(
        by=shop.designer,
        title="Busy",
        parts=[{**LONG, "name": "hull-a"}, {**LONG, "name": "hull-b"}],
        priority=9,
    )
    parts_schedule()
    queued_until = completion(busy.parts.all())
    client = as_user(shop.designer)
    body = {"parts": [{**PLA, "name": "clip"}], "priority": 5}
    before = Part.objects.count()

    estimate = client.post("/api/v1/jobs/estimate/", body, format="json")
    assert estimate.status_code == 200
    figures = estimate.json()
    assert Part.objects.count() == before  # a dry run stores nothing
    promised = datetime.fromisoformat(figures["earliest_completion"])
    # the run alone is short; the queue ahead makes it long, and the estimate says so
    assert figures["run_time_h"] < 2 < figures["wall_time_h"]
    assert promised > queued_until
    (row,) = figures["plan"]["parts"]
    assert row["name"] == "clip" and row["node_name"] in {"Printer-A", "Printer-B"}
    assert datetime.fromisoformat(row["start_at"]) >= queued_until - timedelta(seconds=1)

    # submitted and scheduled, the job's plan is what the estimate said
    job = Job.objects.get(
        pk=client.post("/api/v1/jobs/", {**body, "title": "Clips"}, "json").json()["id"]
    )
    assert datetime.fromisoformat(job.estimates["earliest_completion"]) == pytest.approx(
        promised, abs=timedelta(seconds=30)
    )
    parts_schedule()
    planned = completion(job.parts.all())
    assert abs(planned - promised) < timedelta(seconds=30)
    node = job.parts.get().assigned_node
    assert node is not None and node.name == row["node_name"]


def test_a_higher_priority_estimate_jumps_the_queue_as_the_plan_would(shop: Shop, as_user):
    job_submit(by=shop.designer, title="Waiting", parts=[{**LONG, "name": "hull"}] * 2)
    client = as_user(shop.designer)
    parts = [{**PLA, "name": "clip"}]
    # the waiting job's parts are not placed yet: the dry run plans them with the new job
    low = client.post("/api/v1/jobs/estimate/", {"parts": parts, "priority": 1}, "json").json()
    high = client.post("/api/v1/jobs/estimate/", {"parts": parts, "priority": 10}, "json").json()
    assert high["wall_time_h"] < 2 < low["wall_time_h"]
    bad = client.post("/api/v1/jobs/estimate/", {"parts": parts, "priority": 11}, "json")
    assert bad.status_code == 400 and "priority" in bad.json()["error"]["details"]


def test_the_submit_page_shows_the_plan_behind_the_estimate(shop: Shop, signed_in):
    job_submit(by=shop.designer, title="Busy", parts=[{**LONG, "name": "hull"}] * 2, priority=9)
    parts_schedule()
    page = signed_in(shop.designer).post(
        "/jobs/new/",
        {
            "title": "Clips",
            "priority": 5,
            "timing": "asap",
            "parts-TOTAL_FORMS": 1,
            "parts-INITIAL_FORMS": 0,
            "parts-0-name": "clip",
            "parts-0-material": "pla",
            "parts-0-process": "fdm",
            "parts-0-quantity": 1,
            "parts-0-size_x_mm": 60,
            "parts-0-size_y_mm": 40,
            "parts-0-size_z_mm": 30,
            "parts-0-complexity": 5,
        },
    )
    assert page.status_code == 200
    html = page.content.decode()
    assert "Where it would run if submitted now" in html
    assert "the rest waiting for machines" in html
    assert "from the scheduler&#x27;s plan" in html or "from the scheduler's plan" in html


def test_the_estimate_refuses_what_submission_would(shop: Shop, as_user):
    client = as_user(shop.designer)
    parts = [{**PLA, "name": "clip"}]
    for extra, field, message in [
        ({"deadline": "1999-01-01T00:00:00Z"}, "deadline", "The deadline must be in the future."),
        ({"timing": "balanced"}, "timing", "Give a deadline"),
    ]:
        for url, body in [
            ("/api/v1/jobs/estimate/", {"parts": parts, **extra}),
            ("/api/v1/jobs/", {"title": "T", "parts": parts, **extra}),
        ]:
            refused = client.post(url, body, format="json")
            assert refused.status_code == 400, (url, refused.content)
            assert refused.json()["error"]["details"][field][0].startswith(message)
    assert not Job.objects.filter(title="T").exists()
