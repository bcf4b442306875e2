"""Templates: saved part sets with scale and quantity parameters that create jobs."""

from __future__ import annotations

import pytest

from apps.jobs.models import Job

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


def test_a_template_creates_a_scaled_job(shop, as_user):
    designer = as_user(shop["designer"])
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
    assert part["quantity"] == 6
    assert Job.objects.get(pk=job["id"]).template_id == template["id"]


def test_parameters_are_checked(shop, as_user):
    designer = as_user(shop["designer"])
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


def test_templates_stay_in_their_organization(shop, as_user, make_user):
    template = create(as_user(shop["designer"])).json()
    assert as_user(shop["engineer"]).get("/api/v1/jobs/templates/").json()["count"] == 1
    stranger = as_user(make_user("designer"))
    assert stranger.get("/api/v1/jobs/templates/").json()["count"] == 0
    url = f"/api/v1/jobs/templates/{template['id']}/instantiate/"
    assert stranger.post(url, {}, format="json").status_code == 404
    assert as_user(shop["viewer"]).post(url, {}, format="json").status_code == 403
    assert create(as_user(shop["vendor"])).status_code == 403
