"""The energy API's scoping: vendors manage their own nodes' and companies' sources, operators
their sites', admins all; others' objects are 404; designers manage nothing but see their own
jobs' consumption; emission factors are read by all and written by admins."""

from __future__ import annotations

from datetime import timedelta

import pytest

from apps.energy.api.sources import SourceCreateSerializer, SourceFieldsSerializer, SourceSerializer
from apps.energy.forms import CapForm, SourceForm
from apps.energy.models import Consumption, EnergySource, SitePowerCap
from apps.energy.selectors import emission_factors
from apps.energy.services import SOURCE_FIELDS
from apps.jobs.services import job_submit, work_complete
from apps.users.models import Organization
from apps.users.roles import Role
from tests.energy.conftest import PLA, submit_and_start
from tests.energy.factories import EnergySourceFactory
from tests.fixtures.fleet import Fleet
from tests.users.factories import OrganizationFactory, UserFactory

pytestmark = pytest.mark.django_db

SOLAR = {"kind": "solar", "capacity_kw": 4, "efficiency": 0.9}


def test_a_vendor_manages_its_nodes_sources_and_not_the_rivals(
    fleet: Fleet, printer, rival, as_user
):
    vendor = as_user(fleet.vendor)
    created = vendor.post("/api/v1/energy/sources/", {"node": printer.pk, **SOLAR}, format="json")
    assert created.status_code == 201, created.json()
    source_id = created.json()["id"]
    assert created.json()["node"] == printer.pk and created.json()["site"] is None
    changed = vendor.patch(f"/api/v1/energy/sources/{source_id}/", {"status": "offline"})
    assert changed.status_code == 200 and changed.json()["status"] == "offline"

    rival_source = EnergySourceFactory.create(node=rival, kind="wind", capacity_kw=2)
    for method in ("get", "patch", "delete"):
        response = getattr(vendor, method)(f"/api/v1/energy/sources/{rival_source.pk}/")
        assert response.status_code == 404, method
    assert (
        vendor.post(
            "/api/v1/energy/sources/", {"node": rival.pk, **SOLAR}, format="json"
        ).status_code
        == 404
    )
    listed = vendor.get("/api/v1/energy/sources/").json()["results"]
    assert [s["id"] for s in listed] == [source_id]
    assert vendor.delete(f"/api/v1/energy/sources/{source_id}/").status_code == 204
    assert EnergySource.objects.filter(pk=rival_source.pk).exists()


def test_site_sources_belong_to_the_sites_managers(fleet: Fleet, printer, as_user):
    site = fleet.site
    body = {"site": site.pk, "kind": "battery", "capacity_kw": 5, "capacity_kwh": 20, "soc_pct": 70}
    # the vendor's printer stands at the operator's site, but the site is the operator's
    assert (
        as_user(fleet.vendor).post("/api/v1/energy/sources/", body, format="json").status_code
        == 404
    )
    operator = as_user(fleet.operator)
    created = operator.post("/api/v1/energy/sources/", body, format="json")
    assert created.status_code == 201
    # its own vendor company is a vendor's site
    forge = {"site": fleet.forge.pk, **SOLAR}
    assert (
        as_user(fleet.vendor).post("/api/v1/energy/sources/", forge, format="json").status_code
        == 201
    )
    # exactly one of site and node; batteries need their kWh, others may not have them
    both = operator.post(
        "/api/v1/energy/sources/", {"site": site.pk, "node": printer.pk, **SOLAR}, format="json"
    )
    assert both.status_code == 400
    no_kwh = operator.post(
        "/api/v1/energy/sources/", {"site": site.pk, "kind": "battery", "capacity_kw": 1}
    )
    assert no_kwh.status_code == 400 and "capacity_kwh" in no_kwh.json()["error"]["details"]
    solar_soc = operator.post("/api/v1/energy/sources/", {"site": site.pk, "soc_pct": 5, **SOLAR})
    assert solar_soc.status_code == 400 and "soc_pct" in solar_soc.json()["error"]["details"]


def test_a_designer_may_not_manage_and_an_admin_may_anything(fleet: Fleet, printer, rival, as_user):
    designer = as_user(fleet.designer)
    body = {"node": printer.pk, **SOLAR}
    assert designer.post("/api/v1/energy/sources/", body, format="json").status_code == 403
    assert designer.get("/api/v1/energy/sources/").status_code == 403
    assert designer.get(f"/api/v1/energy/sites/{fleet.site.pk}/outlook/").status_code == 403
    assert designer.get(f"/api/v1/energy/nodes/{printer.pk}/opportunities/").status_code == 403
    admin = as_user(fleet.admin)
    for node in (printer, rival):
        response = admin.post("/api/v1/energy/sources/", {"node": node.pk, **SOLAR}, format="json")
        assert response.status_code == 201
    cap = admin.put(f"/api/v1/energy/sites/{fleet.site.pk}/cap/", {"max_kw": 3.5})
    assert cap.status_code == 200 and cap.json()["max_kw"] == 3.5


def test_caps_are_set_by_the_sites_manager(fleet: Fleet, printer, as_user):
    url = f"/api/v1/energy/sites/{fleet.site.pk}/cap/"
    assert as_user(fleet.vendor).put(url, {"max_kw": 2}).status_code == 404
    assert as_user(fleet.vendor).get(url).json()["max_kw"] is None  # sees it
    assert as_user(fleet.rival).get(url).status_code == 404
    operator = as_user(fleet.operator)
    saved = operator.put(url, {"max_kw": 2, "renewable_price_per_kwh": "0.04"}, format="json")
    assert saved.status_code == 200
    assert saved.json() == {
        "site": fleet.site.pk,
        "max_kw": 2.0,
        "renewable_price_per_kwh": "0.04000",
        "currency": saved.json()["currency"],
    }
    sites = {s["id"]: s for s in operator.get("/api/v1/energy/sites/").json()}
    assert sites[fleet.site.pk]["can_manage"] and sites[fleet.site.pk]["cap"]["max_kw"] == 2


def test_a_site_without_a_cap_names_the_currency_a_cap_would_use(
    fleet: Fleet, printer, as_user, settings
):
    # The schema says currency is three letters; "" broke it for every site without a cap.
    url = f"/api/v1/energy/sites/{fleet.site.pk}/cap/"
    cap = as_user(fleet.operator).get(url).json()
    assert cap["max_kw"] is None
    assert cap["currency"] == settings.JOBS_CURRENCY
    sites = as_user(fleet.operator).get("/api/v1/energy/sites/").json()
    assert {s["cap"]["currency"] for s in sites} == {settings.JOBS_CURRENCY}


def test_emission_factors_are_read_by_all_and_set_by_admins(fleet: Fleet, as_user):
    factors = as_user(fleet.designer).get("/api/v1/energy/factors/").json()
    assert {f["kind"]: f["kg_co2e_per_kwh"] for f in factors} == {
        "battery": 0.1,
        "fuel_cell": 0.2,
        "grid": 0.475,
        "solar": 0.0,
        "wind": 0.0,
    }
    assert emission_factors()["grid"] == 0.475  # (now cached)
    body = {"kg_co2e_per_kwh": 0.39, "note": "2026 national mix"}
    assert as_user(fleet.vendor).put("/api/v1/energy/factors/grid/", body).status_code == 403
    assert as_user(fleet.operator).put("/api/v1/energy/factors/grid/", body).status_code == 403
    saved = as_user(fleet.admin).put("/api/v1/energy/factors/grid/", body)
    assert saved.status_code == 200 and saved.json()["kg_co2e_per_kwh"] == 0.39
    assert emission_factors()["grid"] == 0.39  # the cache was refreshed
    bad = as_user(fleet.admin).put("/api/v1/energy/factors/coal/", body)
    assert bad.status_code == 400


def test_designers_see_only_their_own_jobs_consumption(
    fleet: Fleet, printer, as_user, django_capture_on_commit_callbacks
):
    part = submit_and_start(fleet, ran_for=timedelta(minutes=30))
    with django_capture_on_commit_callbacks(execute=True):
        work_complete(node_id=printer.pk, part_id=part.pk, quality_score=0.9)
    row = Consumption.objects.get(part=part)
    # a designer of another team with a job of their own
    other_team = OrganizationFactory.create(
        name="Other", slug="other", kind=Organization.Kind.DESIGN_TEAM
    )
    stranger = UserFactory.create(role=Role.DESIGNER, email="s@f.test", organization=other_team)
    job_submit(by=stranger, title="Theirs", parts=[{**PLA, "name": "x"}])

    mine = as_user(fleet.designer).get("/api/v1/energy/consumption/").json()["results"]
    assert [c["id"] for c in mine] == [row.pk]
    assert mine[0]["kwh"] == pytest.approx(row.kwh) and mine[0]["method"] == "estimate"
    assert as_user(stranger).get("/api/v1/energy/consumption/").json()["results"] == []
    assert (
        as_user(fleet.vendor).get(f"/api/v1/energy/consumption/?node={printer.pk}").json()["count"]
        == 1
    )
    assert as_user(fleet.rival).get("/api/v1/energy/consumption/").json()["count"] == 0

    summary = as_user(fleet.designer).get(f"/api/v1/energy/consumption/summary/?job={part.job_id}")
    assert summary.json()["parts"] == 1
    assert summary.json()["co2e_kg"] == pytest.approx(row.co2e_kg, abs=1e-4)
    job = as_user(fleet.designer).get(f"/api/v1/energy/jobs/{part.job_id}/").json()
    assert job["is_estimate"] is False and job["recorded_parts"] == 1
    assert as_user(stranger).get(f"/api/v1/energy/jobs/{part.job_id}/").status_code == 404


def test_outlook_and_opportunities_are_scoped(fleet: Fleet, printer, rival, as_user):
    vendor = as_user(fleet.vendor)
    outlook = vendor.get(f"/api/v1/energy/sites/{fleet.site.pk}/outlook/?hours=6")
    assert outlook.status_code == 200 and len(outlook.json()["hours"]) == 6
    assert outlook.json()["hours"][0]["price_from"] == "default"
    rival_site = rival.vendor_id
    assert vendor.get(f"/api/v1/energy/sites/{rival_site}/outlook/").status_code == 404
    assert vendor.get(f"/api/v1/energy/sites/{fleet.site.pk}/outlook/?hours=0").status_code == 400
    found = vendor.get(f"/api/v1/energy/nodes/{printer.pk}/opportunities/")
    assert [o["kind"] for o in found.json()] == ["oversizing", "thermal_stress", "peak_shifting"]
    assert vendor.get(f"/api/v1/energy/nodes/{rival.pk}/opportunities/").status_code == 404


def test_a_sources_fields_are_the_same_on_the_page_the_api_and_in_the_services(
    fleet: Fleet, printer, as_user
):
    # one list of what a manager sets: the form, both input serializers and the output
    assert list(SourceForm.base_fields) == list(SOURCE_FIELDS)
    assert list(SourceFieldsSerializer().fields) == list(SOURCE_FIELDS)
    assert [f for f in SourceCreateSerializer().fields if f not in ("site", "node")] == list(
        SOURCE_FIELDS
    )
    assert set(SOURCE_FIELDS) <= set(SourceSerializer().fields)
    # the limits are the model's: a battery of more than 1,000,000 kWh is refused on the field
    # by the API and by the page, with the model's words, and nothing is stored
    battery = {"kind": "battery", "capacity_kw": 5, "capacity_kwh": 2_000_000, "soc_pct": 50}
    refused = as_user(fleet.vendor).post(
        "/api/v1/energy/sources/", {"node": printer.pk, **battery}, format="json"
    )
    assert refused.status_code == 400
    assert refused.json()["error"]["details"]["capacity_kwh"] == [
        "Ensure this value is less than or equal to 1000000."
    ]
    form = SourceForm({**battery, "efficiency": 1, "status": "online", "reserve_pct": 20})
    assert form.errors == {"capacity_kwh": ["Ensure this value is less than or equal to 1000000."]}
    assert not EnergySource.objects.filter(node=printer).exists()


def test_a_sites_power_cap_takes_the_models_limits_on_the_page_and_in_the_api(
    fleet: Fleet, as_user
):
    site = fleet.site
    refused = as_user(fleet.operator).put(
        f"/api/v1/energy/sites/{site.pk}/cap/", {"max_kw": 2_000_000}, format="json"
    )
    assert refused.status_code == 400
    assert refused.json()["error"]["details"]["max_kw"] == [
        "Ensure this value is less than or equal to 1000000."
    ]
    form = CapForm({"max_kw": 2_000_000, "renewable_price_per_kwh": "-1"})
    assert form.errors == {
        "max_kw": ["Ensure this value is less than or equal to 1000000."],
        "renewable_price_per_kwh": ["Ensure this value is greater than or equal to 0."],
    }
    assert not SitePowerCap.objects.filter(site=site).exists()
