"""Node settings per kind: the vendor's node page offers the kind's own fields with units and
limits instead of a raw JSON box (JSON stays, as the advanced option), and both save versions
of the same configuration document with the same rules."""

from __future__ import annotations

import pytest

from apps.vendors import node_settings
from apps.vendors.models import FabricationNode, NodeConfigProfile
from tests.conftest import portal_client
from tests.fixtures.fleet import Fleet, make_node
from tests.vendors.test_vendor_portal import FORM

pytestmark = pytest.mark.django_db


def _current(node: FabricationNode) -> dict:
    return node.configs.latest("version").config


def test_registering_a_printer_leads_to_its_own_settings_form(fleet: Fleet):
    client = portal_client(fleet.vendor)
    done = client.post("/vendor/nodes/new/", {**FORM, "vendor": fleet.forge.pk})
    page = client.get(done["Location"])
    html = page.content.decode()
    assert "FDM printer settings" in html
    for label in (
        "Nozzle diameter (mm)",
        "Bed, highest temperature (°C)",
        "Enclosed build chamber",
    ):
        assert label in html, label
    assert "Spindle" not in html  # a mill's field
    # the JSON box is still there, folded away as the advanced option
    assert '<details id="config-json">' in html and "Configuration (JSON)" in html


def test_a_mills_settings_are_saved_into_the_document_keeping_other_keys(fleet: Fleet):
    node = make_node(fleet)
    client = portal_client(fleet.vendor)
    url = f"/vendor/nodes/{node.pk}/config/"
    # a key no setting names, entered as JSON
    client.post(url, {"config": '{"controller": {"ip": "10.0.0.7"}, "coolant": "mist"}'})
    saved = client.post(
        url,
        {
            "spindle__max_rpm": "15000",
            "axes": "5",
            "coolant": "flood",
            "tool_slots": "24",
            "message": "retrofit",
        },
    )
    assert saved.status_code == 302
    assert _current(node) == {
        "controller": {"ip": "10.0.0.7"},
        "coolant": "flood",
        "spindle": {"max_rpm": 15000},
        "axes": 5,
        "tool_slots": 24,
    }
    latest = node.configs.latest("version")
    assert (latest.version, latest.message) == (2, "retrofit")
    node.refresh_from_db()
    assert node.status == FabricationNode.Status.CONFIGURED
    # the form shows what is saved
    page = client.get(f"/vendor/nodes/{node.pk}/").content.decode()
    assert 'name="spindle__max_rpm" value="15000"' in page
    # an emptied field leaves the document; the rest stays
    client.post(
        url, {"spindle__max_rpm": "15000", "axes": "5", "coolant": "flood", "tool_slots": ""}
    )
    assert "tool_slots" not in _current(node) and _current(node)["controller"] == {"ip": "10.0.0.7"}


def test_bad_settings_are_refused_field_by_field_and_nothing_is_saved(fleet: Fleet):
    node = make_node(
        fleet, name="Printer-9", kind="fdm_printer", processes=["fdm"], materials=["pla"]
    )
    client = portal_client(fleet.vendor)
    bad = client.post(
        f"/vendor/nodes/{node.pk}/config/",
        {"nozzle_mm": "5", "bed_max_c": "hot", "filament_mm": "3.00", "hotend_max_c": "260"},
    )
    assert bad.status_code == 400
    errors = bad.context["settings_form"].errors
    assert errors["nozzle_mm"] == ["Ensure this value is less than or equal to 2.0."]
    assert errors["bed_max_c"] == ["Enter a whole number."]
    assert "3.00 is not one of the available choices" in errors["filament_mm"][0]
    html = bad.content.decode()
    assert "The settings were not saved" in html and 'value="260"' in html  # kept as typed
    assert not NodeConfigProfile.objects.exists()
    # a good one stores numbers as numbers
    ok = client.post(
        f"/vendor/nodes/{node.pk}/config/",
        {"nozzle_mm": "0.4", "filament_mm": "1.75", "hotend_max_c": "260", "enclosed": "on"},
    )
    assert ok.status_code == 302
    assert _current(node) == {
        "nozzle_mm": 0.4,
        "filament_mm": 1.75,
        "hotend_max_c": 260,
        "enclosed": True,
    }
    # the same settings again: nothing changed, as with JSON
    same = client.post(
        f"/vendor/nodes/{node.pk}/config/",
        {"nozzle_mm": "0.4", "filament_mm": "1.75", "hotend_max_c": "260", "enclosed": "on"},
        follow=True,
    )
    assert b"Nothing changed" in same.content and node.configs.count() == 1


def test_json_stays_the_advanced_option_with_its_checks(fleet: Fleet):
    node = make_node(fleet)
    client = portal_client(fleet.vendor)
    url = f"/vendor/nodes/{node.pk}/config/"
    bad = client.post(url, {"config": "[1, 2]"}, follow=True)
    assert b"must be a JSON object" in bad.content
    bad = client.post(url, {"config": '{"a": 1'}, follow=True)
    assert b"Not valid JSON" in bad.content
    assert not node.configs.exists()


def test_only_the_nodes_vendor_saves_its_settings(fleet: Fleet):
    node = make_node(fleet)
    for who in ("rival", "designer", "operator"):
        response = portal_client(fleet.user(who)).post(
            f"/vendor/nodes/{node.pk}/config/", {"spindle__max_rpm": "9000"}
        )
        assert response.status_code in (403, 404), who
    assert not node.configs.exists()


def test_every_kind_has_settings_with_units_or_choices():
    for kind in FabricationNode.Kind.values:
        settings = node_settings.settings_for(kind)
        assert settings, kind
        for s in settings:
            assert s.kind in ("float", "int", "choice", "bool"), (kind, s.path)
            if s.kind in ("float", "int"):
                assert s.unit or s.path == "tool_slots", (kind, s.path)
                assert s.low is not None and s.high is not None and s.low < s.high
            if s.kind == "choice":
                assert s.choices
