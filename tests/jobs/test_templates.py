"""Templates: saved part sets with scale and quantity parameters that create jobs."""

from __future__ import annotations

import pytest

from apps.jobs.models import Job
from tests.fixtures.shop import Shop

pytestmark = pytest.mark.django_db

BRACKET = {
    "name": "bracket",
    "material": "PLA",
    "process": "fdm",
    "quantity": 2,
    "size_x_mm": 40,
    "size_y_mm": 30,
    "size_z_mm": 10,
}
PARAMS = {"scale": {"min": 0.5, "max": 2, "default": 1}, "quantity": {"min": 1, "max": 50}}


def create(client, **overrides):
    body = {"name": "Bracket kit", "parts": [BRACKET], "parameters": PARAMS, **overrides}
    return client.post("/api/v1/jobs/templates/", body, format="json")


def test_a_template_creates_a_scaled_job(shop: Shop, as_user):
    designer = as_user(shop.designer)
    template = create(designer).json()
    assert template["parameters"]["quantity"] == {"min": 1.0, "max": 50.0, "default": 1.0}
    response = designer.post(
        f"/api/v1/jobs/templates/{template['id']}/instantiate/",
        {"parameters": {"scale": 1.5, "quantity": 3}, "priority": 7},
        format="json",
    )
    assert response.status_code == 201, response.json()
    job = response.json()
    assert job["title"] == "Bracket kit" and job["status"] == "validated" and job["priority"] == 7
    part = job["parts"][0]
    assert (part["size_x_mm"], part["size_y_mm"], part["size_z_mm"]) == (60, 45, 15)
    # six units, long enough to run as two lots of three on the two printers
    assert [(p["quantity"], p["lot"], p["lots"]) for p in job["parts"]] == [(3, 1, 2), (3, 2, 2)]
    assert Job.objects.get(pk=job["id"]).template_id == template["id"]


def test_parameters_are_checked(shop: Shop, as_user):
    designer = as_user(shop.designer)
    assert "parameters" in create(designer, parameters={"colour": {}}).json()["error"]["details"]
    bad_bounds = create(designer, parameters={"scale": {"min": 2, "max": 1}})
    assert bad_bounds.status_code == 400
    template = create(designer).json()
    url = f"/api/v1/jobs/templates/{template['id']}/instantiate/"
    too_big = designer.post(url, {"parameters": {"scale": 3}}, format="json")
    assert too_big.json()["error"]["details"] == {"parameters.scale": ["Between 0.5 and 2."]}
    unknown = designer.post(url, {"parameters": {"colour": 1}}, format="json")
    assert "no parameter colour" in unknown.json()["error"]["details"]["parameters"][0]
    # scaled beyond every machine's build volume: refused like any infeasible job
    huge = create(designer, parts=[{**BRACKET, "size_x_mm": 200}]).json()
    refused = designer.post(
        f"/api/v1/jobs/templates/{huge['id']}/instantiate/",
        {"parameters": {"scale": 2}},
        format="json",
    )
    assert refused.status_code == 400 and "parts[0]" in refused.json()["error"]["details"]


def test_templates_stay_in_their_organization(shop: Shop, as_user, make_user):
    template = create(as_user(shop.designer)).json()
    assert as_user(shop.engineer).get("/api/v1/jobs/templates/").json()["count"] == 1
    stranger = as_user(make_user("designer"))
    assert stranger.get("/api/v1/jobs/templates/").json()["count"] == 0
    url = f"/api/v1/jobs/templates/{template['id']}/instantiate/"
    assert stranger.post(url, {}, format="json").status_code == 404
    assert as_user(shop.viewer).post(url, {}, format="json").status_code == 403
    assert create(as_user(shop.vendor)).status_code == 403


def test_a_job_is_saved_as_a_template_and_deleted_only_by_its_author(
    shop: Shop, as_user, make_user
):
    designer = as_user(shop.designer)
    job = designer.post(
        "/api/v1/jobs/", {"title": "Frame", "parts": [BRACKET]}, format="json"
    ).json()
    saved = designer.post(
        f"/api/v1/jobs/{job['id']}/save-template/",
        {"name": "Frame kit", "max_scale": 3, "max_quantity": 20},
        format="json",
    )
    assert saved.status_code == 201, saved.json()
    template = saved.json()
    assert template["parts"][0]["size_x_mm"] == 40 and template["parts"][0]["quantity"] == 2
    assert template["parameters"]["scale"] == {"min": 0.5, "max": 3.0, "default": 1.0}
    blank = designer.post(f"/api/v1/jobs/{job['id']}/save-template/", {"name": " "}, format="json")
    assert blank.status_code == 400 and "name" in blank.json()["error"]["details"]

    url = f"/api/v1/jobs/templates/{template['id']}/"
    assert designer.get(url).json()["name"] == "Frame kit"
    # a colleague sees it but may not delete it; a stranger does not see it
    assert as_user(shop.engineer).get(url).status_code == 200
    assert as_user(shop.engineer).delete(url).status_code == 403
    assert as_user(shop.rival).get(url).status_code == 404
    assert (
        as_user(shop.viewer)
        .post(f"/api/v1/jobs/{job['id']}/save-template/", {"name": "x"}, format="json")
        .status_code
        == 403
    )
    assert designer.delete(url).status_code == 204
    assert designer.get(url).status_code == 404
    assert Job.objects.filter(pk=job["id"]).exists()


def test_templates_in_the_portal(shop: Shop, as_user, signed_in):
    designer_api = as_user(shop.designer)
    template = create(designer_api).json()
    designer = signed_in(shop.designer)
    page = designer.get("/jobs/templates/").content.decode()
    assert "Bracket kit" in page and "Scale (0.5–2)" in page

    used = designer.post(
        f"/jobs/templates/{template['id']}/use/",
        {"title": "Big brackets", "scale": "1.5", "quantity": "2", "priority": "6"},
        follow=True,
    )
    job = Job.objects.get(title="Big brackets")
    assert used.redirect_chain[-1][0] == f"/jobs/{job.pk}/"
    parts = list(job.parts.all())
    assert {p.size_x_mm for p in parts} == {60} and job.priority == 6
    assert sum(p.quantity for p in parts) == 4

    too_big = designer.post(
        f"/jobs/templates/{template['id']}/use/", {"scale": "9", "priority": "5"}, follow=True
    )
    assert "Between 0.5 and 2" in too_big.content.decode()
    assert Job.objects.count() == 1

    saved = designer.post(
        f"/jobs/{job.pk}/save-template/",
        {"name": "Big kit", "max_scale": "2", "max_quantity": "10"},
        follow=True,
    )
    assert "Saved as template Big kit" in saved.content.decode()
    viewer = signed_in(shop.viewer)
    assert "Big kit" in viewer.get("/jobs/templates/").content.decode()  # same organization
    assert viewer.post(f"/jobs/templates/{template['id']}/use/", {"priority": 5}).status_code == 403
    assert "No templates" in signed_in(shop.rival).get("/jobs/templates/").content.decode()
    deleted = designer.post(f"/jobs/templates/{template['id']}/delete/", follow=True)
    assert "Deleted template Bracket kit" in deleted.content.decode()
