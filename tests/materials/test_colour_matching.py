"""The scheduler matches a part's colour through the materials placement provider: only a
printer with a spool of the part's material in that colour loaded (with enough grams) takes it;
a part whose colour no printer has loaded waits, saying so."""

from __future__ import annotations

import pytest

from apps.jobs.models import Status
from apps.jobs.services import job_submit, parts_schedule
from apps.materials.models import Spool
from tests.conftest import jwt_client
from tests.fixtures.fleet import Fleet
from tests.fixtures.shop import PRINTER, ready_node
from tests.materials.factories import SpoolFactory

PART = {"material": "PLA", "process": "fdm", "size_x_mm": 30, "size_y_mm": 30, "size_z_mm": 10}


@pytest.fixture
def printers(fleet: Fleet, catalog):
    a = ready_node(fleet, **{**PRINTER, "name": "Red-printer"})
    b = ready_node(fleet, **{**PRINTER, "name": "Black-printer"})
    pla = catalog["pla"]
    SpoolFactory.create(node=a, material=pla, colour_hex="#e11d48", remaining_g=800)
    SpoolFactory.create(node=b, material=pla, colour_hex="#000000", remaining_g=800)
    return a, b


@pytest.mark.django_db
def test_a_coloured_part_goes_to_the_printer_with_that_colour_loaded(fleet: Fleet, printers):
    red_printer, black_printer = printers
    job = job_submit(
        by=fleet.designer,
        title="Colours",
        parts=[
            {**PART, "name": "red", "colour_hex": "E11D48"},
            {**PART, "name": "black", "colour_hex": "#000000"},
            {**PART, "name": "any"},
        ],
    )
    parts_schedule()
    parts = {p.name: p for p in job.parts.all()}
    assert parts["red"].colour_hex == "#e11d48"
    assert parts["red"].assigned_node == red_printer
    assert parts["black"].assigned_node == black_printer
    assert parts["any"].assigned_node in (red_printer, black_printer)


@pytest.mark.django_db
def test_a_colour_no_printer_has_loaded_waits_with_the_reason(fleet: Fleet, catalog, printers):
    _, black_printer = printers
    job = job_submit(
        by=fleet.designer, title="Green", parts=[{**PART, "name": "g", "colour_hex": "#00ff00"}]
    )
    parts_schedule()
    part = job.parts.get()
    assert part.assigned_node is None and part.status == Status.VALIDATED
    reason = part.placement["reason"]
    assert reason.lower().startswith(
        "it needs a printer with pla #00ff00 loaded, and no node has that now"
    ), reason
    # the reason is on the job's page for its designer
    page = jwt_client(fleet.designer).get(f"/api/v1/jobs/{job.pk}/").json()
    assert "#00ff00" in str(page)
    # when a green spool is loaded on the black printer, the part goes there
    Spool.objects.filter(node=black_printer).update(node=None)
    SpoolFactory.create(
        node=black_printer, material=catalog["pla"], colour_hex="#00ff00", remaining_g=500
    )
    parts_schedule()
    part.refresh_from_db()
    assert part.assigned_node == black_printer


@pytest.mark.django_db
def test_a_spool_too_light_for_the_part_does_not_count(fleet: Fleet, catalog, printers):
    red_printer, _ = printers
    Spool.objects.filter(node=red_printer).update(remaining_g=0.5)
    job = job_submit(
        by=fleet.designer, title="Red", parts=[{**PART, "name": "r", "colour_hex": "#e11d48"}]
    )
    parts_schedule()
    part = job.parts.get()
    assert part.estimates["material_g"] > 0.5
    assert part.assigned_node is None


@pytest.mark.django_db
def test_a_colour_that_is_not_hex_is_refused_by_the_api(fleet: Fleet, printers):
    response = jwt_client(fleet.designer).post(
        "/api/v1/jobs/",
        {"title": "Bad", "parts": [{**PART, "name": "x", "colour_hex": "red"}]},
        format="json",
    )
    assert response.status_code == 400
    assert "A colour is #rrggbb (hex digits)." in str(response.json())
