"""Job submission, estimates, listing, cancel and priority over the API, with the role matrix."""

from __future__ import annotations

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from apps.jobs.models import Job, StatusChange
from tests.fixtures.shop import Shop
from tests.jobs.conftest import STL_CUBE_ASCII

pytestmark = pytest.mark.django_db

PART = {
    "name": "bracket",
    "material": "PLA",
    "process": "fdm",
    "quantity": 2,
    "size_x_mm": 100,
    "size_y_mm": 50,
    "size_z_mm": 20,
}


def submit(client, **overrides):
    body = {"title": "Drone frame", "parts": [PART], **overrides}
    return client.post("/api/v1/jobs/", body, format="json")


def test_designer_uploads_an_stl_and_submits_a_two_part_job(shop: Shop, as_user):
    designer = as_user(shop.designer)
    upload = SimpleUploadedFile("box.stl", STL_CUBE_ASCII.encode(), "model/stl")
    response = designer.post("/api/v1/jobs/cad/", {"file": upload}, format="multipart")
    assert response.status_code == 201, response.json()
    cad = response.json()
    assert cad["volume_cm3"] == pytest.approx(6.0) and cad["watertight"]

    parts = [
        {"cad_file": cad["id"], "material": "PETG", "process": "fdm", "quantity": 3},
        {**PART, "name": "plate", "material": "steel", "process": "milling"},
    ]
    response = submit(designer, parts=parts, priority=8)
    assert response.status_code == 201, response.json()
    job = response.json()
    assert job["status"] == "validated" and job["parts_total"] == 2
    assert [p["name"] for p in job["parts"]] == ["box", "plate"]
    assert job["parts"][0]["size_z_mm"] == 30 and job["parts"][0]["volume_cm3"] == 6.0
    assert set(job["parts"][0]["estimates"]["candidates"]) == {
        shop.printer_a.pk,
        shop.printer_b.pk,
    }
    assert job["parts"][1]["estimates"]["candidates"] == [shop.mill.pk]
    estimates = job["estimates"]
    assert estimates["duration_h"] > 0 and estimates["energy_kwh"] > 0
    assert set(estimates["cost"]) == {
        "material",
        "energy",
        "machine_time",
        "platform_fee",
        "total",
        "currency",
    }
    assert estimates["earliest_completion"]
    history = [(h["part"], h["from_status"], h["to_status"]) for h in job["history"]]
    assert history[0] == (None, "", "submitted") and history[-1] == (None, "submitted", "validated")
    assert StatusChange.objects.filter(job_id=job["id"], part__isnull=False).count() == 2


def test_estimate_before_submitting_stores_nothing(shop: Shop, as_user):
    response = as_user(shop.designer).post(
        "/api/v1/jobs/estimate/", {"parts": [PART]}, format="json"
    )
    assert response.status_code == 200
    assert response.json()["feasible"] is True
    assert Job.objects.count() == 0


def test_an_infeasible_job_is_rejected_naming_the_part(shop: Shop, as_user):
    parts = [PART, {**PART, "name": "gear", "process": "sls"}, {**PART, "size_x_mm": 900}]
    response = submit(as_user(shop.designer), parts=parts)
    assert response.status_code == 400
    error = response.json()["error"]
    assert set(error["details"]) == {"parts[1]", "parts[2]"}
    assert "gear: No approved node offers the process 'sls'" in error["details"]["parts[1]"][0]
    assert "fits 900 x 50 x 20 mm" in error["details"]["parts[2]"][0]
    assert Job.objects.count() == 0


def test_bad_input_is_reported_precisely(shop: Shop, as_user):
    designer = as_user(shop.designer)
    response = submit(designer, parts=[{**PART, "quantity": 0}], priority=11)
    details = response.json()["error"]["details"]
    assert response.status_code == 400 and "priority" in details
    response = submit(designer, parts=[{"material": "PLA", "process": "fdm"}])
    assert response.status_code == 400
    assert "size_x_mm" in response.json()["error"]["details"]["parts[0]"][0]
    response = submit(designer, parts=[{**PART, "cad_file": 99999}])
    assert response.json()["error"]["details"]["parts[0]"] == ["cad_file: no such upload of yours."]
    response = submit(designer, deadline="2001-01-01T00:00:00Z")
    assert "deadline" in response.json()["error"]["details"]
    response = designer.post(
        "/api/v1/jobs/cad/",
        {"file": SimpleUploadedFile("x.stl", b"solid x\nendsolid x\n")},
        format="multipart",
    )
    assert response.status_code == 400 and "file" in response.json()["error"]["details"]


def test_roles_that_may_not_create_jobs_are_refused(shop: Shop, as_user):
    for role in ("viewer", "vendor", "operator"):
        response = submit(as_user(shop.user(role)))
        assert response.status_code == 403, role
        upload = SimpleUploadedFile("box.stl", STL_CUBE_ASCII.encode())
        response = as_user(shop.user(role)).post("/api/v1/jobs/cad/", {"file": upload})
        assert response.status_code == 403, role
    assert as_user(shop.engineer).post("/api/v1/jobs/", {}, format="json").status_code == 400


def test_who_sees_which_job(shop: Shop, as_user, make_user, api):
    job_id = submit(as_user(shop.designer)).json()["id"]
    assert as_user(shop.viewer).get(f"/api/v1/jobs/{job_id}/").status_code == 200  # same org
    assert as_user(shop.admin).get(f"/api/v1/jobs/{job_id}/").status_code == 200
    stranger = make_user("designer")
    assert as_user(stranger).get(f"/api/v1/jobs/{job_id}/").status_code == 404
    assert as_user(stranger).get("/api/v1/jobs/").json()["count"] == 0
    # vendors see jobs only once a part is on one of their nodes (scheduling comes next)
    assert as_user(shop.vendor).get(f"/api/v1/jobs/{job_id}/").status_code == 404
    assert api.get("/api/v1/jobs/").status_code == 401


def test_list_filters_and_paginates(shop: Shop, as_user):
    designer = as_user(shop.designer)
    for i in range(3):
        submit(designer, title=f"Job {i}", priority=i + 1)
    listing = designer.get("/api/v1/jobs/?priority_min=2&ordering=-priority").json()
    assert [j["title"] for j in listing["results"]] == ["Job 2", "Job 1"]
    # each bracket (two units, 4.5 h) runs as two lots on the two printers
    assert [j["parts_total"] for j in listing["results"]] == [2, 2]
    assert designer.get("/api/v1/jobs/?search=job 0").json()["count"] == 1
    assert designer.get("/api/v1/jobs/?status=validated&page_size=2").json()["pages"] == 2
    assert designer.get("/api/v1/jobs/?status=bogus").status_code == 400


def test_cancel_and_priority_by_owner_only(shop: Shop, as_user):
    designer = as_user(shop.designer)
    job_id = submit(designer).json()["id"]
    engineer = as_user(shop.engineer)  # same organization, not the owner
    assert engineer.post(f"/api/v1/jobs/{job_id}/cancel/", {"reason": "x"}).status_code == 403
    assert engineer.post(f"/api/v1/jobs/{job_id}/priority/", {"priority": 9}).status_code == 403
    response = designer.post(f"/api/v1/jobs/{job_id}/priority/", {"priority": 9})
    assert response.status_code == 200 and response.json()["priority"] == 9
    assert designer.post(f"/api/v1/jobs/{job_id}/cancel/", {}).status_code == 400
    response = designer.post(f"/api/v1/jobs/{job_id}/cancel/", {"reason": "Design changed"})
    assert response.status_code == 200
    job = response.json()
    assert job["status"] == "cancelled" and all(p["status"] == "cancelled" for p in job["parts"])
    assert job["history"][-1]["reason"] == "Design changed"
    again = designer.post(f"/api/v1/jobs/{job_id}/cancel/", {"reason": "again"})
    assert again.status_code == 409
    assert designer.post(f"/api/v1/jobs/{job_id}/priority/", {"priority": 2}).status_code == 409


def test_job_detail_costs_the_same_queries_for_3_parts_or_12_and_any_history(
    shop: Shop, as_user, django_assert_num_queries
):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from apps.jobs.services import parts_schedule

    designer = as_user(shop.designer)
    small = submit(designer, parts=[PART] * 3).json()["id"]
    large = submit(designer, parts=[PART] * 12).json()["id"]
    parts_schedule()  # more history rows (every part placed), by the platform
    counts = []
    for job_id in (small, large):
        with CaptureQueriesContext(connection) as queries:
            response = designer.get(f"/api/v1/jobs/{job_id}/")
        assert response.status_code == 200
        counts.append(len(queries))
    body = response.json()
    # (each part of quantity 2 is made as two lots: 24 parts)
    assert len(body["parts"]) == 24 and body["parts_total"] == 24 and len(body["history"]) > 24
    assert counts[0] == counts[1]
    # the user with its token's revocation and the permissions version, the job's version
    # (with its parts' count), the job, its parts, its history
    assert counts[1] == 5


def test_a_status_poll_costs_three_queries_and_counts_the_parts_once(shop: Shop, as_user):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    designer = as_user(shop.designer)
    job_id = submit(designer, parts=[PART] * 3).json()["id"]
    url = f"/api/v1/jobs/{job_id}/?fields=id,status,parts_total"
    with CaptureQueriesContext(connection) as queries:
        answer = designer.get(url)
    assert answer.json() == {"id": job_id, "status": "validated", "parts_total": 6}
    # the user (with revocation and permissions version), the job's version, the job
    assert len(queries) == 3, [q["sql"] for q in queries]
    assert not any("auth_permission" in q["sql"] for q in queries)


def test_job_detail_gives_the_fields_a_client_asks_for(shop: Shop, as_user):
    designer = as_user(shop.designer)
    job_id = submit(designer, parts=[PART] * 3).json()["id"]
    full = designer.get(f"/api/v1/jobs/{job_id}/")
    status_only = designer.get(f"/api/v1/jobs/{job_id}/?fields=id,status,parts_total")
    assert status_only.status_code == 200
    total = len(full.json()["parts"])
    assert status_only.json() == {"id": job_id, "status": "validated", "parts_total": total}
    assert len(status_only.content) < len(full.content) / 10
    lean = designer.get(f"/api/v1/jobs/{job_id}/?omit=history,parts").json()
    assert "history" not in lean and "parts" not in lean and lean["parts_total"] == total
    assert lean["title"] == full.json()["title"]

    misspelt = designer.get(f"/api/v1/jobs/{job_id}/?fields=id,stauts")
    assert misspelt.status_code == 400
    error = misspelt.json()["error"]
    assert error["code"] == "invalid"
    assert "Unknown field stauts" in str(error["details"]["fields"])
    assert designer.get(f"/api/v1/jobs/{job_id}/?omit=nothing").status_code == 400
    # asking for fields does not widen access
    assert as_user(shop.vendor).get(f"/api/v1/jobs/{job_id}/?fields=id").status_code == 404


def test_polling_an_unchanged_job_answers_304_until_it_changes(shop: Shop, as_user):
    designer = as_user(shop.designer)
    job_id = submit(designer).json()["id"]
    first = designer.get(f"/api/v1/jobs/{job_id}/?fields=id,status,priority")
    etag = first.headers["ETag"]
    again = designer.get(
        f"/api/v1/jobs/{job_id}/?fields=id,status,priority", HTTP_IF_NONE_MATCH=etag
    )
    assert again.status_code == 304 and again.content == b""
    assert designer.post(f"/api/v1/jobs/{job_id}/priority/", {"priority": 9}).status_code == 200
    changed = designer.get(
        f"/api/v1/jobs/{job_id}/?fields=id,status,priority", HTTP_IF_NONE_MATCH=etag
    )
    assert changed.status_code == 200 and changed.json()["priority"] == 9
    assert changed.headers["ETag"] != etag


def test_a_304_is_answered_before_the_job_is_loaded_and_follows_every_change(shop: Shop, as_user):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from apps.jobs.services import parts_schedule, work_progress, work_start

    designer = as_user(shop.designer)
    job_id = submit(designer, parts=[PART] * 3).json()["id"]
    parts_schedule()
    url = f"/api/v1/jobs/{job_id}/?fields=id,status,parts"
    with CaptureQueriesContext(connection) as full:  # the answer is built
        first = designer.get(url)
    assert first.status_code == 200
    etag = first.headers["ETag"]
    with CaptureQueriesContext(connection) as cheap:
        unchanged = designer.get(url, HTTP_IF_NONE_MATCH=etag)
    assert unchanged.status_code == 304 and unchanged.headers["ETag"] == etag
    assert len(cheap) < len(full)
    assert not any(
        "jobs_part" in q["sql"] and "assigned_node" in q["sql"].split("FROM")[0] for q in cheap
    )  # the parts themselves were not read
    # a part's progress (no status change, no history row) changes the answer and its tag
    part = Job.objects.get(pk=job_id).parts.earliest("id")
    assert part.assigned_node_id is not None
    work_start(node_id=part.assigned_node_id, part_id=part.pk)
    assert designer.get(url, HTTP_IF_NONE_MATCH=etag).status_code == 200
    etag = designer.get(url).headers["ETag"]
    work_progress(node_id=part.assigned_node_id, part_id=part.pk, progress_pct=40)
    moved = designer.get(url, HTTP_IF_NONE_MATCH=etag)
    assert moved.status_code == 200
    assert [p["progress_pct"] for p in moved.json()["parts"] if p["id"] == part.pk] == [40.0]
    # another shape of the same job has its own tag; someone else's job is a 404, not a 304
    assert (
        designer.get(f"/api/v1/jobs/{job_id}/?fields=id", HTTP_IF_NONE_MATCH=etag).status_code
        == 200
    )
    stranger = as_user(shop.rival)
    assert stranger.get(url, HTTP_IF_NONE_MATCH="*").status_code == 404


def test_an_answer_built_once_serves_every_poller_until_the_job_changes(shop: Shop, as_user):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from apps.jobs.services import parts_schedule, work_progress, work_start

    designer = as_user(shop.designer)
    job_id = submit(designer, parts=[PART] * 3).json()["id"]
    parts_schedule()
    url = f"/api/v1/jobs/{job_id}/"
    built = designer.get(url)
    # another poller of the team (no ETag: a fresh app) gets the same answer without the job,
    # its parts or its history being read again: its rights and the job's version only
    teammate = as_user(shop.engineer)
    assert teammate.get("/api/v1/auth/me/").status_code == 200  # their rights, read once
    with CaptureQueriesContext(connection) as queries:
        served = teammate.get(url)
    assert served.status_code == 200 and served.json() == built.json()
    assert served.headers["ETag"] == built.headers["ETag"]
    assert len(queries) == 2, [q["sql"] for q in queries]  # building it takes 5 (above)
    # the answer follows a change at once (a new version is a new entry)
    part = Job.objects.get(pk=job_id).parts.earliest("id")
    assert part.assigned_node_id is not None
    work_start(node_id=part.assigned_node_id, part_id=part.pk)
    work_progress(node_id=part.assigned_node_id, part_id=part.pk, progress_pct=40)
    moved = teammate.get(url).json()
    assert [p["progress_pct"] for p in moved["parts"] if p["id"] == part.pk] == [40.0]
    assert moved != built.json()
    # and the cache gives nothing to who may not see the job (a vendor whose machines make
    # none of its parts)
    assert as_user(shop.rival).get(url).status_code == 404
