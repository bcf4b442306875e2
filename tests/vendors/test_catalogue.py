"""The process/material catalogue on nodes: spellings map to codes, unknown values are refused
with the valid codes, old free text is migrated without losing anything, and the vendor hears
when a node can take no job."""

from __future__ import annotations

import importlib
import re
from typing import Any

import pytest
from django.apps import apps as django_apps

from apps.jobs.estimates import MATERIALS, PROCESS_MODES
from apps.materials.catalog import standard_materials
from apps.vendors import catalog
from apps.vendors.models import FabricationNode
from tests.conftest import jwt_client, portal_client
from tests.fixtures.fleet import NODE_FIELDS, Fleet, make_node
from tests.vendors.test_vendor_portal import FORM

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(
    ("spelling", "code"),
    [
        ("laser cutting", "laser_cutting"),
        ("Laser-Cutting", "laser_cutting"),
        ("  LASER_CUTTING ", "laser_cutting"),
        ("FDM", "fdm"),
        ("fused deposition", "fdm"),
        ("Fused Filament Fabrication", "fdm"),
        ("CNC milling", "milling"),
        ("lathe", "turning"),
    ],
)
def test_process_spellings_map_to_their_code(spelling, code):
    assert catalog.process_code(spelling) == code


@pytest.mark.parametrize(
    ("spelling", "code"),
    [("PLA", "pla"), ("Aluminum 6061", "aluminium_6061"), ("PET-G", "petg"), ("PMMA", "acrylic")],
)
def test_material_spellings_map_to_their_code(spelling, code):
    assert catalog.material_code(spelling) == code


@pytest.mark.parametrize("unknown", ["PLA+", "laser cuttin", "", "pla pla", "nylon"])
def test_values_the_catalogue_does_not_list_are_not_guessed(unknown):
    # "PLA+" may well be another material: unknown, not silently PLA
    assert catalog.material_code(unknown) is None
    assert catalog.process_code(unknown) is None


def test_every_catalogue_entry_has_estimates_and_a_stock_row():
    assert set(PROCESS_MODES) == set(catalog.PROCESS_CODES)
    assert {code: mode for code, (mode, _rate) in PROCESS_MODES.items()} == {
        p.code: p.mode for p in catalog.PROCESSES
    }
    assert set(MATERIALS) == set(catalog.MATERIAL_CODES)
    # the materials app's standard rows are named by the catalogue's labels
    assert {row["name"] for row in standard_materials()} == {m.label for m in catalog.MATERIALS}


def test_the_api_stores_codes_for_labels_and_known_spellings(fleet: Fleet):
    body = {
        **NODE_FIELDS,
        "name": "Laser-01",
        "kind": "laser_cutter",
        "processes": ["Laser cutting", "laser-cutting"],
        "materials": ["Plywood", "PMMA"],
    }
    response = jwt_client(fleet.vendor).post("/api/v1/nodes/", body, format="json")
    assert response.status_code == 201, response.json()
    assert response.json()["processes"] == ["laser_cutting"]
    assert response.json()["materials"] == ["acrylic", "plywood"]
    assert response.json()["capability_problems"] == []


def test_the_api_refuses_unknown_processes_and_materials_naming_the_codes(fleet: Fleet):
    client = jwt_client(fleet.vendor)
    body = {**NODE_FIELDS, "processes": ["milling", "laser cuttin"], "materials": ["PLA+"]}
    response = client.post("/api/v1/nodes/", body, format="json")
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "invalid"
    [processes] = error["details"]["processes"]
    assert "Unknown process 'laser cuttin'" in processes
    assert ", ".join(catalog.PROCESS_CODES) in processes
    assert not FabricationNode.objects.exists()

    node = make_node(fleet)
    response = client.patch(f"/api/v1/nodes/{node.pk}/", {"materials": ["PLA+"]}, format="json")
    assert response.status_code == 400
    [materials] = response.json()["error"]["details"]["materials"]
    assert "Unknown material 'PLA+'" in materials and "pla, petg" in materials
    node.refresh_from_db()
    assert node.materials == ["aluminium_6061", "steel"]


def test_an_unknown_value_is_cut_short_in_the_error():
    message = catalog.unknown_message("material", "z" * 5000, *["q"] * 11)
    assert "z" * 60 + "…" in message and "z" * 61 not in message
    assert "and 2 more" in message and len(message) < 400


def test_a_node_whose_processes_work_none_of_its_materials_is_flagged(fleet: Fleet):
    # given a mill that lists only PLA (no catalogue process of it works PLA)
    client = jwt_client(fleet.vendor)
    response = client.post("/api/v1/nodes/", {**NODE_FIELDS, "materials": ["PLA"]}, format="json")
    # then the API says so on save
    assert response.status_code == 201
    [problem] = response.json()["capability_problems"]
    assert "None of its processes works any of its materials" in problem
    assert "Aluminium 6061" in problem and "Steel" in problem
    # and a working combination clears it
    node_id = response.json()["id"]
    fixed = client.patch(f"/api/v1/nodes/{node_id}/", {"materials": ["steel"]}, format="json")
    assert fixed.status_code == 200 and fixed.json()["capability_problems"] == []


def test_a_node_with_no_process_or_material_is_flagged(fleet: Fleet):
    no_process = make_node(fleet, name="Empty", processes=[])
    assert no_process.capability_problems == [
        "It offers no catalogue process, so it can take no job."
    ]
    no_material = make_node(fleet, name="Bare", materials=[])
    assert no_material.capability_problems == [
        "It works no catalogue material, so it can take no job."
    ]
    # a zero build volume cannot be saved (validators); a row written around them is flagged
    FabricationNode.objects.filter(pk=no_material.pk).update(materials=["steel"], build_z_mm=0)
    no_material.refresh_from_db()
    assert no_material.capability_problems == ["Its build volume is zero, so no part fits."]


def test_the_vendor_is_warned_on_save_and_on_the_node_page(fleet: Fleet):
    client = portal_client(fleet.vendor)
    form = {**FORM, "vendor": fleet.forge.pk, "processes": ["fdm"], "materials": ["steel"]}
    response = client.post("/vendor/nodes/new/", form, follow=True)
    assert response.status_code == 200
    said = [str(m) for m in response.context["messages"]]
    assert any("Printer-7: None of its processes works any of its materials" in m for m in said)
    node = FabricationNode.objects.get(name="Printer-7")
    page = client.get(f"/vendor/nodes/{node.pk}/").content.decode()
    assert 'id="capability-problems"' in page and "its processes work PLA, PETG, ABS, TPU" in page
    assert "May get no work" in client.get("/vendor/nodes/").content.decode()
    # the admin deciding on it sees it too, with the labels
    queue = portal_client(fleet.admin).get("/ops/approvals/").content.decode()
    assert "Processes: FDM printing · Materials: Steel" in queue
    assert "None of its processes works any of its materials" in queue


def test_the_node_form_offers_the_catalogue_and_refuses_other_values(fleet: Fleet):
    client = portal_client(fleet.vendor)
    page = client.get("/vendor/nodes/new/").content.decode()
    assert 'value="laser_cutting"' in page and "Laser cutting" in page
    assert 'type="checkbox"' in page and 'value="aluminium_6061"' in page
    bad = client.post(
        "/vendor/nodes/new/",
        {**FORM, "vendor": fleet.forge.pk, "processes": ["laser cutting"], "materials": []},
    )
    assert bad.status_code == 400
    assert set(bad.context["form"].errors) == {"processes", "materials"}
    assert not FabricationNode.objects.exists()


def test_the_vendor_edits_a_node_through_the_form_and_others_may_not(fleet: Fleet):
    node = make_node(fleet)
    url = f"/vendor/nodes/{node.pk}/edit/"
    client = portal_client(fleet.vendor)
    page = client.get(url)
    assert page.status_code == 200
    assert re.search(r'value="milling" id="[^"]+" checked', page.content.decode())
    assert not re.search(r'value="turning" id="[^"]+" checked', page.content.decode())
    form: dict[str, Any] = {k: v for k, v in FORM.items() if k != "vendor"}
    form.update(name=node.name, kind=node.kind, site=fleet.site.pk)
    form.update(processes=["milling", "turning"], materials=["brass"])
    response = client.post(url, form)
    assert response.status_code == 302 and response["Location"] == f"/vendor/nodes/{node.pk}/"
    node.refresh_from_db()
    assert node.processes == ["milling", "turning"] and node.materials == ["brass"]

    # a rival vendor does not even see it; the site's operator and a designer may not edit
    for who, status in (("rival", 404), ("operator", 403), ("designer", 403)):
        assert portal_client(fleet.user(who)).get(url).status_code == status, who
        refused = portal_client(fleet.user(who)).post(url, {**form, "materials": ["steel"]})
        assert refused.status_code == status, who
    node.refresh_from_db()
    assert node.materials == ["brass"]


def test_the_migration_maps_free_text_to_codes_and_keeps_what_it_cannot_map(fleet: Fleet):
    # given nodes written before the catalogue (free text, as the old form stored it)
    mill = make_node(fleet)
    laser = make_node(fleet, name="Laser-01")
    FabricationNode.objects.filter(pk=mill.pk).update(
        processes=["CNC Milling", "drilling"], materials=["Aluminum 6061", "Steel", "steel"]
    )
    FabricationNode.objects.filter(pk=laser.pk).update(
        processes=["laser cutting", "engraving"], materials=["PLA+", "Plywood"]
    )
    # when the data migration runs
    migration = importlib.import_module("apps.vendors.migrations.0003_catalogue_codes")
    migration.to_codes(django_apps, None)
    # then known spellings are codes and unknown values are kept, and flagged to the vendor
    mill.refresh_from_db()
    laser.refresh_from_db()
    assert mill.processes == ["milling", "drilling"]
    assert mill.materials == ["aluminium_6061", "steel"]
    assert laser.processes == ["laser_cutting", "engraving"]
    assert laser.materials == ["plywood", "PLA+"]
    assert laser.capability_problems == [
        "“engraving” is not a catalogue process; no job asks for it.",
        "“PLA+” is not a catalogue material; no job asks for it.",
    ]
    page = portal_client(fleet.vendor).get(f"/vendor/nodes/{laser.pk}/").content.decode()
    assert "engraving" in page and "not a catalogue process" in page
