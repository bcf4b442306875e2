"""The job form keeps an uploaded model across its steps and shows what was measured in it: a
browser empties a file input on every page load, so the kept upload is what carries the model."""

from __future__ import annotations

import re

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from apps.jobs.models import CadFile, Job
from apps.users.roles import Role
from tests.conftest import portal_client
from tests.fixtures.shop import Shop
from tests.jobs.conftest import STL_CUBE_ASCII
from tests.jobs.test_job_pages import form_data
from tests.users.factories import UserFactory

pytestmark = pytest.mark.django_db


def _estimate_with_upload(client):
    upload = SimpleUploadedFile("box.stl", STL_CUBE_ASCII.encode())
    return client.post("/jobs/new/", {**form_data("estimate"), "parts-0-cad_upload": upload})


def test_the_estimate_names_the_kept_model_with_its_measured_size(shop: Shop):
    client = portal_client(shop.designer)
    page = _estimate_with_upload(client)
    assert page.status_code == 200
    cad = CadFile.objects.get()
    html = page.content.decode()
    # the measured size of the 20 x 20 x 30 mm box, the file's name, and the token kept
    kept = re.search(r'<p class="kept-upload" data-kept-upload="(\d+)">(.*?)</p>', html, re.S)
    assert kept and int(kept.group(1)) == cad.pk
    assert "box.stl" in kept.group(2)
    size = f"{cad.size_x_mm:g} × {cad.size_y_mm:g} × {cad.size_z_mm:g} mm"
    assert f"measured {size}" in kept.group(2)
    assert f'name="parts-0-cad_file" value="{cad.pk}"' in html
    assert "Replace the model (optional)" in html
    assert f'placeholder="{cad.size_z_mm:g} measured"' in html
    # estimating again without picking the file again keeps the same model
    again = client.post("/jobs/new/", form_data("estimate", cad_file=cad.pk))
    assert again.status_code == 200 and f'data-kept-upload="{cad.pk}"' in again.content.decode()
    assert CadFile.objects.count() == 1
    # and confirming makes the part from it
    confirmed = client.post("/jobs/new/", form_data("confirm", cad_file=cad.pk))
    assert confirmed.status_code == 302
    assert Job.objects.get().parts.get().cad_file_id == cad.pk


def test_a_kept_model_survives_a_step_refused_for_another_field(shop: Shop):
    client = portal_client(shop.designer)
    cad_id = _estimate_with_upload(client).context["formset"].forms[0].data["parts-0-cad_file"]
    refused = client.post("/jobs/new/", form_data("estimate", cad_file=cad_id, quantity=0))
    assert refused.status_code == 400
    html = refused.content.decode()
    assert f'data-kept-upload="{cad_id}"' in html and "box.stl" in html


def test_another_users_upload_is_neither_shown_nor_used(shop: Shop):
    cad_id = (
        _estimate_with_upload(portal_client(shop.designer))
        .context["formset"]
        .forms[0]
        .data["parts-0-cad_file"]
    )
    other = UserFactory.create(role=Role.DESIGNER, email="other@f.test", organization=shop.forge)
    client = portal_client(other)
    page = client.post("/jobs/new/", form_data("estimate", cad_file=cad_id))
    html = page.content.decode()
    assert "box.stl" not in html and "data-kept-upload" not in html
    assert page.status_code == 400 and "no such upload of yours" in html
