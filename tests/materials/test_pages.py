"""The materials pages: inventory with its forecast and empty states, one stock's page with
its history chart and actions, purchase orders, the catalog, and the job page's panel; who
may see what, and form errors on the page instead of a 500."""

from __future__ import annotations

import json
import re
from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from apps.jobs.providers import job_panels
from apps.materials.models import PurchaseOrder
from apps.materials.services import usage_record
from tests.conftest import portal_client
from tests.fixtures.fleet import Fleet
from tests.materials.conftest import finished_part, stock_of

pytestmark = pytest.mark.django_db


def test_inventory_empty_states(fleet: Fleet, printer, catalog):
    page = portal_client(fleet.vendor).get("/materials/")
    assert page.status_code == 200
    assert b"No stock is kept yet" in page.content and b"Keep stock of a material" in page.content
    nothing = portal_client(fleet.rival).get("/materials/")  # no approved nodes
    assert b"You manage no nodes yet" in nothing.content
    for role in ("designer", "viewer"):
        assert portal_client(fleet.user(role)).get("/materials/").status_code == 403
        assert portal_client(fleet.user(role)).get("/materials/orders/").status_code == 403


def test_inventory_shows_stock_days_left_and_reorders(fleet: Fleet, printer, catalog):
    low = stock_of(fleet, printer, catalog["pla"], "0.06", reorder_point=Decimal("0.07"))
    two_days_ago = timezone.now() - timedelta(days=2)  # before the stock was counted: history
    usage_record(
        part_id=finished_part(fleet, printer, material_g=300, finished_at=two_days_ago).pk
    )  # 10 g a day over 30 days
    stock_of(fleet, printer, catalog["petg"], "2")
    client = portal_client(fleet.vendor)

    page = client.get("/materials/").content.decode()
    assert "Printer-A" in page and "PLA" in page and "PETG" in page
    found = re.search(rf'<tr data-inventory="{low.pk}".*?</tr>', page, re.S)
    assert found, page
    row = found.group(0)
    assert 'class="low-stock"' in row and 'data-risk="high"' in row  # 0.06 kg at 0.01 kg/day
    assert "6.0 d" in row
    assert "no usage" in page  # PETG

    only_low = client.get("/materials/?low=1").content.decode()
    assert re.findall(r'<tr data-inventory="(\d+)"', only_low) == [str(low.pk)]
    # the row without an open order has a one-click reorder that comes back to the list
    petg = catalog["petg"].inventories.get()
    done = client.post(f"/materials/inventory/{petg.pk}/reorder/", {"next": "/materials/"})
    assert done.status_code == 302 and done["Location"] == "/materials/"
    assert PurchaseOrder.objects.filter(inventory=petg, origin="manual").count() == 1


def test_a_stock_page_with_chart_actions_and_form_errors(fleet: Fleet, printer, catalog):
    stock = stock_of(fleet, printer, catalog["pla"], "1")
    client = portal_client(fleet.vendor)
    client.post(f"/materials/inventory/{stock.pk}/restock/", {"quantity": "0.5", "note": "gift"})
    page = client.get(f"/materials/inventory/{stock.pk}/")
    assert page.status_code == 200
    data = re.search(
        r'<script id="stock-history-data" type="application/json">(.*?)</script>',
        page.content.decode(),
        re.S,
    )
    assert data, page.content
    chart = json.loads(data.group(1))
    assert [y for _, y in chart["series"][0]["data"]][-2:] == [1.5, 1.5]
    assert b"gift" in page.content and b"Opening stock" in page.content

    no_reason = client.post(f"/materials/inventory/{stock.pk}/adjust/", {"delta": "-0.1"})
    assert no_reason.status_code == 400 and b"Say why the stock changes." in no_reason.content
    too_much = client.post(
        f"/materials/inventory/{stock.pk}/adjust/", {"delta": "-9", "note": "lost"}
    )
    assert too_much.status_code == 400 and b"Only 1.500 kg in stock." in too_much.content
    bad = client.post(
        f"/materials/inventory/{stock.pk}/settings/",
        {"reorder_point": "-1", "reorder_quantity": "0"},
    )
    assert bad.status_code == 400 and b"Ensure this value is greater than or equal to 0" in (
        bad.content
    )
    other = portal_client(fleet.rival).get(f"/materials/inventory/{stock.pk}/")
    assert other.status_code == 404


def test_purchase_orders_page_and_actions(fleet: Fleet, printer, catalog):
    stock = stock_of(fleet, printer, catalog["pla"], "0.4", reorder_point=Decimal("0.5"))
    order = PurchaseOrder.objects.get()
    client = portal_client(fleet.vendor)
    page = client.get("/materials/orders/")
    assert f'data-order="{order.pk}"'.encode() in page.content
    assert b"Automatic reorder" in page.content

    client.post(f"/materials/orders/{order.pk}/send/")
    client.post(f"/materials/orders/{order.pk}/receive/", {"quantity": ""})
    stock.refresh_from_db()
    assert stock.quantity == Decimal("1.400")
    again = client.post(f"/materials/orders/{order.pk}/receive/", follow=True)
    assert b"Not changed: A received order cannot be received." in again.content
    empty = client.get("/materials/orders/")
    assert b"No open purchase orders" in empty.content
    assert (
        portal_client(fleet.rival).post(f"/materials/orders/{order.pk}/cancel/").status_code == 404
    )


def test_the_catalog_page_for_readers_and_the_admin(fleet: Fleet, catalog):
    page = portal_client(fleet.designer).get("/materials/catalog/")
    assert page.status_code == 200 and b"Nylon powder" in page.content
    assert b"Add a material" not in page.content
    assert portal_client(fleet.designer).post("/materials/catalog/new/").status_code == 403

    admin = portal_client(fleet.admin)
    form = {
        "name": "PA12 GF",
        "category": "powder",
        "unit": "kg",
        "unit_cost": "95",
        "currency": "USD",
        "lead_time_days": "10",
        "min_order_qty": "5",
        "active": "on",
        "density_g_cm3": "1.3",
    }
    assert admin.post("/materials/catalog/new/", form).status_code == 302
    clash = admin.post("/materials/catalog/new/", {**form, "name": "pa12  gf"})
    assert clash.status_code == 400 and b"The catalog already has pa12 gf." in clash.content
    material = catalog["pla"]
    edit = admin.post(f"/materials/catalog/{material.pk}/", {**form, "name": "PLA"})
    assert edit.status_code == 302
    material.refresh_from_db()
    assert material.specs["density_g_cm3"] == 1.3 and material.lead_time_days == 10
    assert "tensile_strength_mpa" not in material.specs  # cleared in the form


def test_the_job_panel_shows_usage_per_part(fleet: Fleet, printer, catalog):
    part = finished_part(fleet, printer, material_g=100)
    empty = [p for p in job_panels(part.job, fleet.designer) if p[0].startswith("materials/")]
    assert empty and empty[0][1]["usage_rows"] == []
    usage_record(part_id=part.pk)
    template, context = next(
        p for p in job_panels(part.job, fleet.designer) if p[0].startswith("materials/")
    )
    assert template == "materials/job_panel.html"
    assert [u.part_id for u in context["usage_rows"]] == [part.pk]
    assert context["usage_totals"]["used_g"] == 100.0

    from django.template.loader import render_to_string

    html = render_to_string(template, context)
    assert part.name in html and "100.0" in html
    assert "No part of this job has finished yet" in render_to_string(
        template, {"usage_rows": [], "usage_totals": {}}
    )
