"""The job form's material comes from the catalogue and must be one the part's process works;
the page gives its script the pairs to offer, and the server refuses any other pair."""

from __future__ import annotations

import json
import re

import pytest

from apps.jobs.forms import materials_by_process
from apps.jobs.models import Job
from apps.vendors import catalog
from tests.conftest import portal_client
from tests.fixtures.shop import Shop
from tests.jobs.test_job_pages import form_data

pytestmark = pytest.mark.django_db


def test_a_process_and_a_material_it_does_not_work_are_refused_precisely(shop: Shop):
    client = portal_client(shop.designer)
    refused = client.post(
        "/jobs/new/", form_data("estimate", process="fdm", material="aluminium_6061")
    )
    assert refused.status_code == 400
    error = refused.context["formset"].forms[0].errors["material"][0]
    assert error.startswith("FDM printing does not work Aluminium 6061; it works ")
    assert "PLA" in error and "PETG" in error
    assert not Job.objects.exists()
    # a pair the catalogue knows goes on to the estimate
    fine = client.post(
        "/jobs/new/", form_data("estimate", size_x_mm=20, size_y_mm=20, size_z_mm=20)
    )
    assert fine.status_code == 200 and "Feasibility and estimate" in fine.content.decode()


def test_the_page_gives_the_material_list_per_process(shop: Shop):
    page = portal_client(shop.designer).get("/jobs/new/")
    html = page.content.decode()
    found = re.search(
        r'<script id="materials-by-process" type="application/json">(.*?)</script>', html
    )
    assert found, html
    pairs = json.loads(found.group(1))
    assert pairs == materials_by_process()
    assert "pla" in pairs["fdm"] and "aluminium_6061" not in pairs["fdm"]
    for process, materials in pairs.items():
        assert materials, process
        assert all(catalog.works(process, m) for m in materials)
    assert "job_submit.js" in html


def test_the_job_form_needs_a_sign_in_and_the_right_to_create_jobs(shop: Shop):
    from django.test import Client

    assert Client().get("/jobs/new/").status_code == 302
    assert portal_client(shop.vendor).get("/jobs/new/").status_code == 403
