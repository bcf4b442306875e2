"""Stock, usage and predictive reordering through the services: usage taken from stock with
its ledger, an order drafted exactly once when stock crosses the reorder point, receiving it
restocks, the daily sweep, telemetry, and the scheduler's stock provider."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from django.db import IntegrityError, transaction
from django.utils import timezone

from apps.core.models import Notification
from apps.jobs.models import Status
from apps.jobs.providers import node_stock
from apps.materials.forecast import reorder_point
from apps.materials.models import MaterialUsage, PurchaseOrder, StockMovement
from apps.materials.selectors import inventory_forecasts
from apps.materials.services import (
    inventory_reorder_sweep,
    inventory_update,
    material_create,
    purchase_order_receive,
    purchase_order_send,
    usage_record,
)
from apps.materials.services.usage import waste_share
from tests.fixtures.fleet import Fleet
from tests.materials.conftest import finished_part, recorded, stock_of
from tests.materials.factories import PurchaseOrderFactory

pytestmark = pytest.mark.django_db
D = Decimal


def test_usage_is_taken_from_stock_with_a_ledger_that_explains_it(fleet: Fleet, printer, catalog):
    stock = stock_of(fleet, printer, catalog["pla"], "2")
    part = finished_part(fleet, printer, material_g=210.0)

    usage = recorded(part.pk)

    assert usage is not None and usage.source == MaterialUsage.Source.ESTIMATE
    assert usage.used_g == 210.0
    assert usage.waste_g == pytest.approx(210.0 * (1 - 1 / 1.05), abs=1e-3)  # FDM: 10 g
    stock.refresh_from_db()
    assert stock.quantity == D("1.790")  # 2 kg - 0.210 kg
    moves = {m.kind: m for m in stock.movements.all()}
    assert moves["usage"].delta == D("-0.200") and moves["waste"].delta == D("-0.010")
    assert moves["usage"].part_id == part.pk and moves["adjustment"].note == "Opening stock"
    # the ledger adds up to the quantity
    assert sum(m.delta for m in stock.movements.all()) == stock.quantity
    # a second announcement of the same finish changes nothing
    assert usage_record(part_id=part.pk) == usage
    stock.refresh_from_db()
    assert stock.quantity == D("1.790") and MaterialUsage.objects.count() == 1


def test_an_order_is_drafted_exactly_once_when_stock_crosses_the_reorder_point(
    fleet: Fleet, printer, catalog
):
    # given 1 kg of PLA with a reorder point of 0.5 kg (set by hand, so the sweep keeps it)
    stock = stock_of(fleet, printer, catalog["pla"], "1", reorder_point=D("0.5"))
    assert not stock.reorder_point_auto and not PurchaseOrder.objects.exists()

    # when usage takes it above the point, nothing; then across it, one draft
    usage_record(part_id=finished_part(fleet, printer, material_g=400).pk)
    assert not PurchaseOrder.objects.exists()
    usage_record(part_id=finished_part(fleet, printer, material_g=200).pk)
    stock.refresh_from_db()
    assert stock.quantity == D("0.400")
    order = PurchaseOrder.objects.get()
    assert order.origin == "auto" and order.status == "draft" and order.created_by is None
    # no reorder quantity: enough for twice the point (0.6 kg), but at least the minimum order
    assert order.quantity == D("1.000") == catalog["pla"].min_order_qty
    assert order.total == D("25.00") and order.unit_cost == D("25.00")
    assert "reorder point 0.500 kg" in order.reason and "lead time 7 days" in order.reason

    # and then: more usage below the point and the daily sweep still leave one order
    usage_record(part_id=finished_part(fleet, printer, material_g=100).pk)
    report = inventory_reorder_sweep()
    assert report.orders == []
    assert PurchaseOrder.objects.count() == 1
    # the vendor's people were told once
    told = Notification.objects.filter(user=fleet.vendor, title__startswith="Reorder PLA")
    assert told.count() == 1 and f"#{order.pk}" in told.get().body
    assert not Notification.objects.filter(user=fleet.rival).exists()

    # the database refuses a second open automatic order of the same stock, whatever the code
    with pytest.raises(IntegrityError), transaction.atomic():
        PurchaseOrderFactory.create(inventory=stock, origin="auto", reason="race")


def test_receiving_an_order_restocks_and_the_next_crossing_orders_again(
    fleet: Fleet, printer, catalog
):
    stock = stock_of(fleet, printer, catalog["pla"], "0.6", reorder_point=D("0.5"))
    usage_record(part_id=finished_part(fleet, printer, material_g=300).pk)
    order = PurchaseOrder.objects.get()

    order = purchase_order_send(by=fleet.vendor, order=order)
    assert order.expected_at is not None and order.sent_at is not None
    assert order.status == "sent" and order.expected_at > order.sent_at
    received = purchase_order_receive(by=fleet.vendor, order=order, quantity=D("1.5"))

    assert received.status == "received" and received.received_quantity == D("1.500")
    stock.refresh_from_db()
    assert stock.quantity == D("1.800") and stock.last_restock_at == received.received_at
    restock = stock.movements.get(kind=StockMovement.Kind.RESTOCK)
    assert restock.purchase_order == received and restock.by == fleet.vendor
    # restocked above the point: the next crossing drafts a new order, exactly one
    usage_record(part_id=finished_part(fleet, printer, material_g=1400).pk)
    usage_record(part_id=finished_part(fleet, printer, material_g=100).pk)
    assert PurchaseOrder.objects.filter(status="draft", origin="auto").count() == 1
    assert PurchaseOrder.objects.count() == 2


def test_the_sweep_sets_reorder_points_from_history_and_orders_what_is_missing(
    fleet: Fleet, printer, catalog
):
    stock = stock_of(fleet, printer, catalog["pla"], "0.25")  # no point yet: follows usage
    assert stock.reorder_point_auto and stock.reorder_point == 0
    now = timezone.now()
    grams = [100, 300, 200]  # on three of the last 30 days
    for days_ago, g in zip((1, 2, 4), grams, strict=True):
        part = finished_part(
            fleet, printer, material_g=g, finished_at=now - timedelta(days=days_ago)
        )
        usage_record(part_id=part.pk)  # predates the stock count: history only
    stock.refresh_from_db()
    assert stock.quantity == D("0.250")

    report = inventory_reorder_sweep()

    daily = [0.0] * 30
    for days_ago, g in zip((1, 2, 4), grams, strict=True):
        daily[29 - days_ago] = g / 1000
    expected = round(reorder_point(daily, 7), 3)  # lead time of PLA: 7 days
    stock.refresh_from_db()
    assert float(stock.reorder_point) == pytest.approx(expected, abs=1e-3)
    assert report.reorder_points_updated == 1 and len(report.orders) == 1
    forecast = inventory_forecasts(inventories=[stock])[stock.pk]
    assert forecast.mean_daily == pytest.approx(0.6 / 30)
    assert forecast.days_left == pytest.approx(0.25 / (0.6 / 30))
    assert forecast.risk == "mid"  # 12.5 days left: beyond the 7-day lead time, within twice
    # a point set by hand is kept by the sweep
    inventory_update(by=fleet.vendor, inventory=stock, reorder_point=D("0.1"))
    inventory_reorder_sweep()
    stock.refresh_from_db()
    assert stock.reorder_point == D("0.100") and not stock.reorder_point_auto


def test_the_sweep_records_usage_a_receiver_missed(fleet: Fleet, printer, catalog):
    stock = stock_of(fleet, printer, catalog["pla"], "1")
    part = finished_part(fleet, printer, material_g=100)  # finished, no usage recorded
    report = inventory_reorder_sweep()
    assert report.usage_recorded == 1
    assert MaterialUsage.objects.get().part == part
    stock.refresh_from_db()
    assert stock.quantity == D("0.900")


def test_a_failed_part_is_all_waste_of_the_progress_reached(fleet: Fleet, printer, catalog):
    stock = stock_of(fleet, printer, catalog["pla"], "1")
    part = finished_part(fleet, printer, material_g=200, status=Status.FAILED, progress_pct=40.0)
    usage = recorded(part.pk)
    assert usage.outcome == "failed" and usage.used_g == usage.waste_g == pytest.approx(80.0)
    stock.refresh_from_db()
    assert stock.quantity == D("0.920")
    assert not stock.movements.filter(kind="usage").exists()


def test_waste_share_by_process(fleet: Fleet, printer):
    mill_part = finished_part(fleet, printer, material_g=1, process="milling")
    # stock = 72 cm3 box x 1.1; the part 40 % of the box: 1 - 0.4 / 1.1
    assert waste_share(mill_part) == pytest.approx(1 - 0.4 / 1.1)
    mill_part.volume_cm3 = 72 * 1.1  # a part as big as the stock leaves nothing
    assert waste_share(mill_part) == 0.0
    assert waste_share(finished_part(fleet, printer, material_g=1, process="assembly")) == 0.0
    assert waste_share(finished_part(fleet, printer, material_g=1, process="laser_cutting")) == 0.2


def test_usage_without_stock_or_catalog_is_kept_with_the_reason(fleet: Fleet, printer, catalog):
    no_stock = recorded(finished_part(fleet, printer, material_g=50).pk)
    assert no_stock.inventory is None and "keeps no stock of PLA" in no_stock.stock_note
    unknown = recorded(finished_part(fleet, printer, material_g=50, material="Unobtainium").pk)
    assert unknown.material is None and "not in the material catalog" in unknown.stock_note


def test_the_stock_provider_gives_grams_per_node_and_skips_what_has_no_weight(
    fleet: Fleet, printer, catalog
):
    stock_of(fleet, printer, catalog["pla"], "1.5")
    stock_of(fleet, printer, catalog["petg"], "0")
    resin = material_create(
        by=fleet.admin,
        name="Tough resin",
        category="resin",
        specs={"density_g_cm3": 1.2},
        unit="l",
        unit_cost=D("90"),
    )
    sheet = material_create(
        by=fleet.admin,
        name="Birch sheet",
        category="sheet",
        specs={"density_g_cm3": 0.7},
        unit="sheet",
        unit_cost=D("12"),
    )
    stock_of(fleet, printer, resin, "2")
    stock_of(fleet, printer, sheet, "10")  # no weight per sheet: cannot be turned into grams

    assert node_stock([printer.pk]) == {
        printer.pk: {"pla": 1500.0, "petg": 0.0, "tough resin": pytest.approx(2400.0)}
    }
    assert node_stock([printer.pk + 1000]) == {}
