"""Spools imported from Spoolman (a test server speaking its REST API): material, colour,
grams left and the printer each is loaded on; what cannot be taken is reported with why."""

from __future__ import annotations

from io import StringIO

import pytest
from django.core.exceptions import PermissionDenied
from django.core.management import CommandError, call_command

from apps.materials.models import Spool
from apps.materials.services import spoolman_fetch, spools_import_spoolman
from tests.conftest import jwt_client
from tests.fixtures.fleet import Fleet
from tests.fixtures.shop import PRINTER, ready_node
from tests.materials.spoolman import SpoolmanServer, spool


@pytest.fixture
def spoolman():
    server = SpoolmanServer(
        [
            spool(1, "PLA", "e11d48", 812.5, "Printer-A", name="PolyTerra Red"),
            spool(2, "PETG", "#1D4ED8", 350, "Printer-B"),
            spool(3, "PLA", "000000", 1000),  # on the shelf
            spool(4, "Unobtainium", "ffffff", 500),
            spool(5, "PLA", "red", 500),
            spool(6, "PLA", "ffffff", 20, "Printer-A"),  # a second spool "in" Printer-A
            spool(7, "PLA", "00ff00", 0, "Printer-B", archived=True),
        ]
    )
    yield server
    server.stop()


@pytest.mark.django_db
def test_spools_are_imported_and_updated_from_spoolman(fleet: Fleet, catalog, spoolman):
    a = ready_node(fleet, **PRINTER)
    b = ready_node(fleet, **{**PRINTER, "name": "Printer-B"})
    # when the vendor imports its Spoolman
    spools = spoolman_fetch(url=spoolman.url)
    report = spools_import_spoolman(vendor=fleet.forge, by=fleet.vendor, spools=spools)
    # then the good spools are there, loaded where Spoolman says
    assert (report.created, report.updated) == (3, 0)
    red = Spool.objects.get(spoolman_id=1)
    assert (red.material.name, red.colour_hex, red.remaining_g) == ("PLA", "#e11d48", 812.5)
    assert red.name == "PolyTerra Red" and red.node == a and red.vendor == fleet.forge
    assert Spool.objects.get(spoolman_id=2).node == b
    assert Spool.objects.get(spoolman_id=2).colour_hex == "#1d4ed8"
    assert Spool.objects.get(spoolman_id=3).node is None
    # and what could not be taken says why; archived spools are not listed by Spoolman
    assert report.skipped == {
        4: "material 'Unobtainium' is not in the catalog",
        5: "colour 'red' is not #rrggbb",
        6: "Printer-A already holds Spoolman spool 1",
    }
    assert not Spool.objects.filter(spoolman_id=7).exists()
    # when the red spool is used and moved to Printer-B's place, and the import runs again
    spoolman.spools[0] = spool(1, "PLA", "e11d48", 400.0, "Printer-B")
    spoolman.spools[1] = spool(2, "PETG", "1d4ed8", 350, "")
    again = spools_import_spoolman(
        vendor=fleet.forge, by=fleet.vendor, spools=spoolman_fetch(url=spoolman.url)
    )
    # then the same rows are updated, not duplicated; Printer-A is free for spool 6 now
    assert (again.created, again.updated) == (1, 3)
    assert Spool.objects.filter(vendor=fleet.forge).count() == 4
    red.refresh_from_db()
    assert red.remaining_g == 400.0 and red.node == b
    assert Spool.objects.get(spoolman_id=2).node is None
    assert Spool.objects.get(spoolman_id=6).node == a


@pytest.mark.django_db
def test_only_the_vendors_own_people_import_its_spools(fleet: Fleet, catalog, spoolman):
    spools = spoolman_fetch(url=spoolman.url)
    for who in ("rival", "designer", "operator"):
        with pytest.raises(PermissionDenied):
            spools_import_spoolman(vendor=fleet.forge, by=fleet.user(who), spools=spools)
    assert not Spool.objects.exists()


@pytest.mark.django_db
def test_the_command_reports_and_a_spoolman_that_is_down_is_a_clear_error(
    fleet: Fleet, catalog, spoolman
):
    ready_node(fleet, **PRINTER)
    out = StringIO()
    call_command(
        "spoolman_import", vendor="forge", url=spoolman.url, by="vendor@f.test", stdout=out
    )
    assert "3 spool(s) created, 0 updated." in out.getvalue()
    assert "Spoolman spool 4 skipped: material 'Unobtainium' is not in the catalog" in (
        out.getvalue()
    )
    with pytest.raises(CommandError, match="Spoolman at http://127.0.0.1:9"):
        call_command(
            "spoolman_import", vendor="forge", url="http://127.0.0.1:9", by="vendor@f.test"
        )
    with pytest.raises(CommandError, match="No vendor organization"):
        call_command("spoolman_import", vendor="studio", url=spoolman.url, by="vendor@f.test")


@pytest.mark.django_db
def test_the_vendors_stock_keepers_list_their_spools_and_others_do_not(
    fleet: Fleet, catalog, spoolman
):
    a = ready_node(fleet, **PRINTER)
    spools_import_spoolman(
        vendor=fleet.forge, by=fleet.vendor, spools=spoolman_fetch(url=spoolman.url)
    )
    mine = jwt_client(fleet.vendor).get("/api/v1/materials/spools/")
    assert mine.status_code == 200
    rows = {row["spoolman_id"]: row for row in mine.json()["results"]}
    assert set(rows) == {1, 2, 3}
    assert rows[1]["node_name"] == a.name and rows[1]["colour_hex"] == "#e11d48"
    assert rows[1]["material_name"] == "PLA" and rows[3]["node"] is None
    # another vendor sees none of them; a designer does not manage stock at all
    assert jwt_client(fleet.rival).get("/api/v1/materials/spools/").json()["results"] == []
    assert jwt_client(fleet.designer).get("/api/v1/materials/spools/").status_code == 403
