"""Jobs and nodes speak the catalogue's codes: a node registered with a catalogue process takes
that process's parts, and parts outside the catalogue are refused with the valid codes."""

from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError

from apps.jobs.models import Job, JobTemplate, Status
from apps.jobs.services import (
    job_submit,
    parts_schedule,
    template_instantiate,
    template_spec_check,
)
from apps.vendors import catalog
from apps.vendors.models import FabricationNode
from apps.vendors.services import node_config_save, node_decide, node_transition
from tests.conftest import jwt_client, portal_client
from tests.fixtures.fleet import Fleet
from tests.jobs.factories import JobTemplateFactory
from tests.jobs.test_job_pages import form_data
from tests.vendors.test_vendor_portal import FORM

pytestmark = pytest.mark.django_db

ACRYLIC_SIGN = {
    "name": "sign",
    "material": "acrylic",
    "process": "laser_cutting",
    "quantity": 1,
    "size_x_mm": 300,
    "size_y_mm": 200,
    "size_z_mm": 3,
}
LASER = {
    "name": "Laser-01",
    "kind": "laser_cutter",
    "build_x_mm": 600,
    "build_y_mm": 400,
    "build_z_mm": 20,
    "precision_mm": 0.1,
    "rated_power_kw": 1.5,
}


def bring_up(fleet: Fleet, node_id: int) -> FabricationNode:
    """The admin approves the node and its vendor configures it and sets it idle."""
    node = node_decide(node=FabricationNode.objects.get(pk=node_id), by=fleet.admin, approve=True)
    node_config_save(node=node, by=fleet.vendor, config={"power_pct": 80})
    return node_transition(node=node, to="idle", by=fleet.vendor, reason="ready")


def test_a_vendors_node_takes_the_catalogue_process_jobs(fleet: Fleet):
    # given a laser cutter registered over the API as its vendor writes it
    vendor = jwt_client(fleet.vendor)
    body = {**LASER, "processes": ["Laser cutting"], "materials": ["Acrylic", "plywood"]}
    registered = vendor.post("/api/v1/nodes/", body, format="json")
    assert registered.status_code == 201, registered.json()
    laser = bring_up(fleet, registered.json()["id"])
    # when a designer submits a laser_cutting part over the API and the scheduler runs
    submitted = jwt_client(fleet.designer).post(
        "/api/v1/jobs/", {"title": "Signs", "parts": [ACRYLIC_SIGN]}, format="json"
    )
    assert submitted.status_code == 201, submitted.json()
    parts_schedule()
    # then the part is placed on that node
    part = Job.objects.get(pk=submitted.json()["id"]).parts.get()
    assert part.status == Status.SCHEDULED and part.assigned_node_id == laser.pk
    assert (part.process, part.material) == ("laser_cutting", "acrylic")


def test_a_node_registered_through_the_forms_takes_a_job_from_the_job_form(fleet: Fleet):
    # given a laser cutter registered through the vendor portal's catalogue checkboxes
    form = {
        **FORM,
        **LASER,
        "vendor": fleet.forge.pk,
        "processes": ["laser_cutting"],
        "materials": ["acrylic", "plywood"],
    }
    response = portal_client(fleet.vendor).post("/vendor/nodes/new/", form)
    assert response.status_code == 302
    laser = bring_up(fleet, FabricationNode.objects.get(name="Laser-01").pk)
    # when a designer submits plywood laser cutting through the job form
    sizes = {"size_x_mm": 300, "size_y_mm": 200, "size_z_mm": 6}
    data = {**form_data("confirm", **sizes), "parts-0-process": "laser_cutting"}
    confirmed = portal_client(fleet.designer).post(
        "/jobs/new/", {**data, "parts-0-material": "plywood"}
    )
    assert confirmed.status_code == 302, confirmed.content.decode()[-2000:]
    parts_schedule()
    # then it is placed there, and the pages show labels
    part = Job.objects.get().parts.get()
    assert part.assigned_node_id == laser.pk
    page = portal_client(fleet.designer).get(f"/jobs/{part.job_id}/").content.decode()
    assert "Plywood / Laser cutting" in page


def test_parts_outside_the_catalogue_are_refused_with_the_valid_codes(fleet: Fleet):
    designer = jwt_client(fleet.designer)
    parts = [
        {**ACRYLIC_SIGN, "name": "ok"},
        {**ACRYLIC_SIGN, "name": "typo", "process": "laser cuttin"},
        {**ACRYLIC_SIGN, "name": "plus", "material": "PLA+", "process": "fdm"},
    ]
    response = designer.post("/api/v1/jobs/", {"title": "Signs", "parts": parts}, format="json")
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "invalid" and set(error["details"]) == {"parts[1]", "parts[2]"}
    assert error["details"]["parts[1]"] == [
        "process: Unknown process 'laser cuttin'; use one of the catalogue codes (or their "
        f"labels): {', '.join(catalog.PROCESS_CODES)}."
    ]
    [material] = error["details"]["parts[2]"]
    assert material.startswith("material: Unknown material 'PLA+'")
    assert not Job.objects.exists()
    # the estimate preview says the same
    preview = designer.post("/api/v1/jobs/estimate/", {"parts": parts[1:2]}, format="json")
    assert preview.status_code == 400 and "parts[0]" in preview.json()["error"]["details"]


def test_labels_and_known_spellings_are_stored_as_codes(fleet: Fleet):
    laser = jwt_client(fleet.vendor).post(
        "/api/v1/nodes/",
        {**LASER, "processes": ["laser_cutting"], "materials": ["acrylic"]},
        format="json",
    )
    bring_up(fleet, laser.json()["id"])
    part = {**ACRYLIC_SIGN, "process": "Laser-Cutting", "material": "PMMA"}
    job = job_submit(by=fleet.designer, title="Signs", parts=[part])
    assert list(job.parts.values_list("process", "material")) == [("laser_cutting", "acrylic")]


def test_the_job_form_offers_only_catalogue_materials(fleet: Fleet):
    client = portal_client(fleet.designer)
    page = client.get("/jobs/new/").content.decode()
    assert '<select name="parts-0-material"' in page and 'value="aluminium_6061"' in page
    refused = client.post("/jobs/new/", {**form_data("confirm"), "parts-0-material": "PLA+"})
    assert refused.status_code == 400
    errors = refused.context["formset"].forms[0].errors
    assert "material" in errors and "PLA+" in errors["material"][0]
    assert not Job.objects.exists()


def test_templates_and_listings_check_parts_against_the_catalogue(fleet: Fleet):
    # a listing's template parts (the marketplace path) are refused outside the catalogue
    with pytest.raises(ValidationError) as refused:
        template_spec_check(parts=[{**ACRYLIC_SIGN, "material": "unobtainium"}], parameters={})
    assert "Unknown material 'unobtainium'" in refused.value.message_dict["parts[0]"][0]
    cleaned, _ = template_spec_check(parts=[{**ACRYLIC_SIGN, "material": "Acrylic"}], parameters={})
    assert cleaned[0]["material"] == "acrylic"
    # a template saved before the catalogue ("Laser cutting", "Plywood") still makes jobs,
    # in codes; one with a value the catalogue does not know is refused, naming it
    laser = jwt_client(fleet.vendor).post(
        "/api/v1/nodes/",
        {**LASER, "processes": ["laser_cutting"], "materials": ["plywood"]},
        format="json",
    )
    bring_up(fleet, laser.json()["id"])
    old = {**ACRYLIC_SIGN, "process": "Laser cutting", "material": "Plywood"}
    template = JobTemplateFactory.create(
        owner=fleet.designer, organization=fleet.designer.organizations.get(), parts=[old]
    )
    job = template_instantiate(template=template, by=fleet.designer, values={})
    assert list(job.parts.values_list("process", "material")) == [("laser_cutting", "plywood")]
    JobTemplate.objects.filter(pk=template.pk).update(parts=[{**old, "material": "Ply-ish"}])
    template.refresh_from_db()
    with pytest.raises(ValidationError, match="Unknown material 'Ply-ish'"):
        template_instantiate(template=template, by=fleet.designer, values={})
