"""The materials API: each role's view of stock and orders (other vendors' stock is 404, roles
without stock 403), the catalog's readers and writers, the order lifecycle over HTTP, usage
by job, and precise errors in the one JSON format."""

from __future__ import annotations

import dataclasses
from decimal import Decimal

import pytest

from apps.materials.services import usage_record
from tests.fixtures.fleet import Fleet
from tests.fixtures.machines import rival_node
from tests.materials.conftest import finished_part, stock_of

pytestmark = pytest.mark.django_db
INV = "/api/v1/materials/inventory/"
PO = "/api/v1/materials/purchase-orders/"


def test_stock_per_role_with_filters_and_forecast(fleet: Fleet, printer, catalog, as_user):
    mine = stock_of(fleet, printer, catalog["pla"], "0.4", reorder_point=Decimal("0.5"))
    stock_of(fleet, printer, catalog["petg"], "3")
    theirs = stock_of(
        dataclasses.replace(fleet, vendor=fleet.rival), rival_node(fleet), catalog["steel"]
    )

    vendor = as_user(fleet.vendor).get(INV).json()
    assert vendor["count"] == 2
    row = next(r for r in vendor["results"] if r["id"] == mine.pk)
    assert row["quantity"] == "0.400" and row["unit"] == "kg" and row["is_low"] is True
    assert row["forecast"]["days_until_stockout"] is None  # no usage yet
    assert row["open_order"]["status"] == "draft"  # drafted on creation: already below
    low = as_user(fleet.vendor).get(f"{INV}?low=true").json()
    assert [r["id"] for r in low["results"]] == [mine.pk]
    assert as_user(fleet.operator).get(INV).json()["count"] == 2  # the site's node
    assert as_user(fleet.admin).get(INV).json()["count"] == 3
    rival = as_user(fleet.rival).get(INV).json()
    assert [r["id"] for r in rival["results"]] == [theirs.pk]

    # another vendor's stock is a 404 in the one error format, for reads and writes
    for method, url in (
        ("get", f"{INV}{mine.pk}/"),
        ("post", f"{INV}{mine.pk}/adjust/"),
        ("post", f"{INV}{mine.pk}/reorder/"),
    ):
        response = getattr(as_user(fleet.rival), method)(url, {"delta": 1, "note": "x"})
        assert response.status_code == 404 and response.json()["error"]["code"] == "not_found"


def test_designers_cannot_manage_stock_and_admins_can(fleet: Fleet, printer, catalog, as_user):
    stock = stock_of(fleet, printer, catalog["pla"], "1")
    designer = as_user(fleet.designer)
    for response in (
        designer.get(INV),
        designer.post(f"{INV}{stock.pk}/adjust/", {"delta": "-0.1", "note": "spilt"}),
        designer.post(INV, {"node": printer.pk, "material": catalog["abs"].pk}),
        designer.get(PO),
    ):
        assert response.status_code == 403
        assert response.json()["error"]["code"] == "permission_denied"
    stock.refresh_from_db()
    assert stock.quantity == Decimal("1.000")

    adjusted = as_user(fleet.admin).post(
        f"{INV}{stock.pk}/adjust/", {"quantity": "0.75", "note": "stocktake"}
    )
    assert adjusted.status_code == 200 and adjusted.json()["quantity"] == "0.750"
    moves = as_user(fleet.admin).get(f"{INV}{stock.pk}/movements/").json()["results"]
    assert moves[0]["kind"] == "adjustment" and moves[0]["delta"] == "-0.250"
    assert moves[0]["by"] == fleet.admin.email and moves[0]["note"] == "stocktake"


def test_bad_input_gets_precise_errors(fleet: Fleet, printer, catalog, as_user):
    vendor = as_user(fleet.vendor)
    bad = vendor.post(INV, {"node": printer.pk, "quantity": "-1", "reorder_point": "0.0001"})
    assert bad.status_code == 400
    error = bad.json()["error"]
    assert error["code"] == "invalid"
    assert set(error["details"]) == {"material", "quantity", "reorder_point"}
    missing = vendor.post(INV, {"node": printer.pk, "material": 999999})
    assert missing.json()["error"]["details"] == {"material": ["No such material."]}

    stock = stock_of(fleet, printer, catalog["pla"], "1")
    twice = vendor.post(INV, {"node": printer.pk, "material": catalog["pla"].pk})
    assert twice.status_code == 409 and "material" in twice.json()["error"]["details"]
    both = vendor.post(f"{INV}{stock.pk}/adjust/", {"delta": 1, "quantity": 2, "note": "x"})
    assert both.status_code == 400 and "delta" in both.json()["error"]["details"]
    unexplained = vendor.post(f"{INV}{stock.pk}/adjust/", {"delta": 1, "note": " "})
    assert unexplained.status_code == 400
    too_much = vendor.post(f"{INV}{stock.pk}/adjust/", {"delta": "-5", "note": "lost"})
    assert too_much.json()["error"]["details"] == {"delta": ["Only 1.000 kg in stock."]}
    small = vendor.post(f"{INV}{stock.pk}/reorder/", {"quantity": "0.2"})
    assert small.json()["error"]["details"] == {"quantity": ["The minimum order is 1.000 kg."]}


def test_the_order_lifecycle_over_http(fleet: Fleet, printer, catalog, as_user):
    stock = stock_of(fleet, printer, catalog["pla"], "1")
    vendor = as_user(fleet.vendor)
    created = vendor.post(f"{INV}{stock.pk}/reorder/", {"quantity": "2", "note": "big job"})
    assert created.status_code == 201
    order = created.json()
    assert order["status"] == "draft" and order["origin"] == "manual"
    assert order["total"] == "50.00" and order["currency"] and order["reason"] == "big job"
    url = f"{PO}{order['id']}"
    early = vendor.post(f"{url}/receive/")
    assert early.status_code == 409 and early.json()["error"]["details"] == {"status": "draft"}
    assert vendor.post(f"{url}/send/").json()["status"] == "sent"
    received = vendor.post(f"{url}/receive/", {"quantity": "1.8"})
    assert (
        received.json()["status"] == "received" and received.json()["received_quantity"] == "1.800"
    )
    assert vendor.get(f"{INV}{stock.pk}/").json()["quantity"] == "2.800"
    assert vendor.post(f"{url}/cancel/").status_code == 409
    assert vendor.get(f"{PO}?status=received").json()["count"] == 1
    assert vendor.get(f"{PO}?status=draft,sent").json()["count"] == 0
    assert as_user(fleet.rival).get(f"{url}/").status_code == 404
    listed = vendor.post(PO, {"inventory": stock.pk, "quantity": "1"})
    assert listed.status_code == 201 and listed.json()["node"] == printer.pk


def test_the_catalog_is_read_by_all_and_written_by_admins(fleet: Fleet, catalog, as_user):
    listing = as_user(fleet.designer).get("/api/v1/materials/?category=filament").json()
    assert {m["name"] for m in listing["results"]} == {"PLA", "PETG", "ABS", "TPU"}
    pla = next(m for m in listing["results"] if m["name"] == "PLA")
    assert pla["specs"]["density_g_cm3"] == 1.24 and pla["unit_cost"] == "25.00"
    assert pla["grams_per_unit"] == 1000.0

    new = {
        "name": "Carbon PETG",
        "category": "filament",
        "specs": {"density_g_cm3": 1.3},
        "unit": "kg",
        "unit_cost": "45.50",
        "supplier": fleet.forge.pk,
    }
    denied = as_user(fleet.vendor).post("/api/v1/materials/", new, format="json")
    assert denied.status_code == 403
    created = as_user(fleet.admin).post("/api/v1/materials/", new, format="json")
    assert created.status_code == 201, created.json()
    assert created.json()["supplier_name"] == "Forge"
    clash = as_user(fleet.admin).post(
        "/api/v1/materials/", {**new, "name": "  carbon   petg "}, format="json"
    )
    assert clash.status_code == 409 and "name" in clash.json()["error"]["details"]
    bad = as_user(fleet.admin).post(
        "/api/v1/materials/",
        {**new, "name": "Air", "specs": {"density_g_cm3": 0}, "supplier": fleet.site.pk},
        format="json",
    )
    assert bad.status_code == 400
    assert bad.json()["error"]["details"] == {
        "supplier": ["The supplier must be a vendor company."]
    }
    bad = as_user(fleet.admin).post(
        "/api/v1/materials/",
        {**new, "name": "Air", "specs": {"tensile_strength_mpa": 3}},
        format="json",
    )
    assert "density_g_cm3" in bad.json()["error"]["details"]["specs"][0]
    patched = as_user(fleet.admin).patch(
        f"/api/v1/materials/{created.json()['id']}/", {"lead_time_days": 21}, format="json"
    )
    assert patched.json()["lead_time_days"] == 21


def test_usage_by_job_for_its_designer_and_the_nodes_vendor(
    fleet: Fleet, printer, catalog, as_user
):
    part = finished_part(fleet, printer, material_g=120)
    usage_record(part_id=part.pk)
    other = finished_part(fleet, rival_node(fleet), material_g=50, material="Steel")
    usage_record(part_id=other.pk)

    url = f"/api/v1/materials/usage/?job={part.job_id}"
    designer = as_user(fleet.designer).get(url).json()
    assert [u["part"] for u in designer["results"]] == [part.pk]
    assert designer["results"][0]["used_g"] == 120.0
    assert as_user(fleet.vendor).get("/api/v1/materials/usage/").json()["count"] == 1
    assert as_user(fleet.rival).get(url).json()["count"] == 0
    assert as_user(fleet.admin).get("/api/v1/materials/usage/").json()["count"] == 2
    bad = as_user(fleet.designer).get("/api/v1/materials/usage/?since=yesterday")
    assert bad.status_code == 400 and "since" in bad.json()["error"]["details"]


def test_a_vendor_sees_a_jobs_usage_on_its_own_nodes_only(fleet: Fleet, printer, catalog, as_user):
    # given one job with a part on the vendor's printer and one on the rival's node
    mine = finished_part(fleet, printer, material_g=120)
    theirs = finished_part(fleet, rival_node(fleet), material_g=50, job=mine.job)
    usage_record(part_id=mine.pk)
    usage_record(part_id=theirs.pk)
    url = f"/api/v1/materials/usage/?job={mine.job_id}"

    # then the vendor, who sees the job because a part ran on its node, sees that part's usage
    # and not the job's usage elsewhere; the job's owners see all of it
    assert as_user(fleet.vendor).get(f"/api/v1/jobs/{mine.job_id}/").status_code == 200
    assert [u["part"] for u in as_user(fleet.vendor).get(url).json()["results"]] == [mine.pk]
    assert [u["part"] for u in as_user(fleet.rival).get(url).json()["results"]] == [theirs.pk]
    designer = as_user(fleet.designer).get(url).json()["results"]
    assert sorted(u["part"] for u in designer) == sorted([mine.pk, theirs.pk])


def test_the_stock_list_reads_a_page_in_a_fixed_number_of_queries(
    fleet: Fleet, printer, catalog, as_user, django_assert_max_num_queries
):
    for name in ("pla", "petg", "abs", "tpu", "resin"):
        stock_of(fleet, printer, catalog[name], "1", reorder_point=Decimal("2"))
    client = as_user(fleet.vendor)
    # 7 for the page: a query per row (forecast, open order) would make it 12 or more
    with django_assert_max_num_queries(8):
        body = client.get(INV).json()
    assert body["count"] == 5 and all(r["open_order"] for r in body["results"])
