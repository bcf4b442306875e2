"""Loading and unloading spools on printers, on the Spools page and through the API: one spool
per printer (loading another takes the first off), only the vendor's own spools on its own
printers that print the material, roles without stock refused, and the scheduler's colour
matching following at once."""

from __future__ import annotations

import pytest

from apps.core.models import AuditLog
from apps.jobs.models import Status
from apps.jobs.services import job_submit
from apps.materials.models import Spool
from apps.portal.navigation import navigation_urls
from tests.conftest import jwt_client, portal_client
from tests.fixtures.fleet import Fleet
from tests.fixtures.machines import rival_node
from tests.fixtures.shop import PRINTER, ready_node
from tests.materials.factories import SpoolFactory

pytestmark = pytest.mark.django_db
PART = {"material": "PLA", "process": "fdm", "size_x_mm": 30, "size_y_mm": 30, "size_z_mm": 10}


@pytest.fixture
def shop(fleet: Fleet, catalog):
    a = ready_node(fleet, **{**PRINTER, "name": "Printer-A"})
    b = ready_node(fleet, **{**PRINTER, "name": "Printer-B"})
    mill = ready_node(fleet, name="Mill-A")

    def spool(colour, material="pla", node=None, vendor=None):
        return SpoolFactory.create(
            vendor=vendor or fleet.forge, material=catalog[material], colour_hex=colour, node=node
        )

    return {
        "a": a,
        "b": b,
        "mill": mill,
        "red": spool("#e11d48", node=a),
        "green": spool("#22c55e"),
        "abs": spool("#ffffff", material="abs"),
        "theirs": spool("#000000", vendor=fleet.rival.organizations.get()),
    }


def load(user, spool, node):
    return jwt_client(user).post(
        f"/api/v1/materials/spools/{spool.pk}/load/", {"node": node.pk}, format="json"
    )


def test_loading_a_spool_takes_the_printers_spool_off(fleet: Fleet, shop):
    # when the vendor loads the green spool on Printer-A, which holds the red one
    response = load(fleet.vendor, shop["green"], shop["a"])
    # then green is on it, red is back on the shelf, and the answer says which came off
    assert response.status_code == 200, response.content
    body = response.json()
    assert (body["node"], body["node_name"], body["replaced"]) == (
        shop["a"].pk,
        "Printer-A",
        shop["red"].pk,
    )
    shop["red"].refresh_from_db()
    assert shop["red"].node is None
    assert Spool.objects.get(node=shop["a"]) == shop["green"]
    assert AuditLog.objects.filter(object_type="materials.spool", actor=fleet.vendor).count() == 2
    # a loaded spool moves: red onto Printer-B, then off again
    assert load(fleet.vendor, shop["red"], shop["b"]).json()["replaced"] is None
    unloaded = jwt_client(fleet.vendor).post(f"/api/v1/materials/spools/{shop['red'].pk}/unload/")
    assert unloaded.status_code == 200 and unloaded.json()["node"] is None
    assert not Spool.objects.filter(node=shop["b"]).exists()


def test_the_scheduler_follows_a_loaded_spool(
    fleet: Fleet, shop, django_capture_on_commit_callbacks
):
    # given a green part that waits: no printer has green loaded
    job = job_submit(
        by=fleet.designer, title="Green", parts=[{**PART, "name": "g", "colour_hex": "#22c55e"}]
    )
    from apps.jobs.services import parts_schedule

    parts_schedule()
    part = job.parts.get()
    assert part.assigned_node is None and part.status == Status.VALIDATED
    # when the vendor loads the green spool on Printer-B (the scheduler runs on commit)
    with django_capture_on_commit_callbacks(execute=True):
        assert load(fleet.vendor, shop["green"], shop["b"]).status_code == 200
    # then the part goes there
    part.refresh_from_db()
    assert part.assigned_node == shop["b"]


def test_what_cannot_be_loaded_is_refused_with_the_reason(fleet: Fleet, shop):
    mill = load(fleet.vendor, shop["green"], shop["mill"])
    assert mill.status_code == 400
    assert mill.json()["error"]["details"] == {"node": ["Mill-A is a cnc mill: it takes no spool."]}
    abs_ = load(fleet.vendor, shop["abs"], shop["b"])  # Printer-B prints PLA and PETG
    assert abs_.status_code == 400
    assert abs_.json()["error"]["details"] == {
        "node": ["Printer-B does not print ABS (its materials)."]
    }
    missing = jwt_client(fleet.vendor).post(
        f"/api/v1/materials/spools/{shop['green'].pk}/load/", {}, format="json"
    )
    assert missing.status_code == 400 and "node" in missing.json()["error"]["details"]
    assert not Spool.objects.filter(node__in=[shop["b"], shop["mill"]]).exists()


def test_other_vendors_spools_and_printers_are_not_found(fleet: Fleet, shop):
    theirs = rival_node(fleet)
    # the rival's spool on our printer, our spool on the rival's node: 404, ids don't leak
    for spool, node in ((shop["theirs"], shop["b"]), (shop["green"], theirs)):
        response = load(fleet.vendor, spool, node)
        assert response.status_code == 404, response.content
        assert response.json()["error"]["code"] == "not_found"
    # the rival cannot unload ours
    unload = jwt_client(fleet.rival).post(f"/api/v1/materials/spools/{shop['red'].pk}/unload/")
    assert unload.status_code == 404
    shop["red"].refresh_from_db()
    assert shop["red"].node == shop["a"]
    # nor on the page
    client = portal_client(fleet.rival)
    assert client.post(f"/materials/spools/{shop['red'].pk}/unload/").status_code == 404
    page = portal_client(fleet.vendor).post(
        f"/materials/spools/{shop['green'].pk}/load/", {"node": theirs.pk}
    )
    assert page.status_code == 404
    assert not Spool.objects.filter(node=theirs).exists()
    # while the same requests for their own spool and printer go through
    assert load(fleet.vendor, shop["green"], shop["b"]).status_code == 200
    mine = jwt_client(fleet.rival).post(f"/api/v1/materials/spools/{shop['theirs'].pk}/unload/")
    assert mine.status_code == 200


def test_roles_without_stock_are_refused(fleet: Fleet, shop):
    for role in ("designer", "engineer", "viewer"):
        response = load(fleet.user(role), shop["green"], shop["b"])
        assert response.status_code == 403, role
        assert response.json()["error"]["code"] == "permission_denied"
        client = portal_client(fleet.user(role))
        assert client.get("/materials/spools/").status_code == 403
        assert client.post(f"/materials/spools/{shop['red'].pk}/unload/").status_code == 403
    shop["red"].refresh_from_db()
    assert shop["red"].node == shop["a"] and not Spool.objects.filter(node=shop["b"]).exists()


def test_the_spools_page_lists_and_loads(fleet: Fleet, shop):
    client = portal_client(fleet.vendor)
    assert "/materials/spools/" in navigation_urls(user=fleet.vendor)
    page = client.get("/materials/spools/")
    assert page.status_code == 200
    html = page.content.decode()
    # colour swatch and words, material, grams left, where it is; not the rival's spool
    assert 'fill="#e11d48"' in html and "Red PLA" in html and "750 g" in html
    assert "Green" in html and "On the shelf" in html
    assert "Printer-A (instead of red PLA)" in html  # what loading there takes off
    assert "#000000" not in html
    # loading from the page
    response = client.post(f"/materials/spools/{shop['green'].pk}/load/", {"node": shop["a"].pk})
    assert response.status_code == 302
    shown = client.get("/materials/spools/").content.decode()
    assert "The green PLA spool is loaded on Printer-A. The red PLA spool came off it." in shown
    assert Spool.objects.get(node=shop["a"]) == shop["green"]
    # a refusal is a message on the page, not an error page
    client.post(f"/materials/spools/{shop['green'].pk}/load/", {"node": shop["mill"].pk})
    assert (
        "Not loaded: node: Mill-A is a cnc mill"
        in client.get("/materials/spools/").content.decode()
    )


@pytest.mark.parametrize("node", ["12abc", "\x00", None, 1.5, [1]])
def test_a_poison_node_id_is_a_400_that_names_the_field(fleet: Fleet, shop, node):
    response = jwt_client(fleet.vendor).post(
        f"/api/v1/materials/spools/{shop['green'].pk}/load/", {"node": node}, format="json"
    )
    assert response.status_code == 400, response.content
    assert "node" in response.json()["error"]["details"]
    assert Spool.objects.get(pk=shop["green"].pk).node_id is None


def test_a_node_id_past_any_database_integer_is_simply_not_found(fleet: Fleet, shop):
    response = jwt_client(fleet.vendor).post(
        f"/api/v1/materials/spools/{shop['green'].pk}/load/", {"node": 10**30}, format="json"
    )
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"
    assert Spool.objects.get(pk=shop["green"].pk).node_id is None
