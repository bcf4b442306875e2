from __future__ import annotations

from decimal import Decimal
from typing import Any

import factory

from apps.materials.models import Inventory, Material, PurchaseOrder, Spool
from apps.materials.services import inventory_create
from apps.users.models import Organization
from tests.users.factories import OrganizationFactory
from tests.vendors.factories import FabricationNodeFactory


class MaterialFactory(factory.django.DjangoModelFactory[Material]):
    """A filament sold by the kg. The standard catalog (PLA, PETG, ...) comes from
    `catalog_install_standard` (the `catalog` fixture of tests/materials/conftest.py)."""

    class Meta:
        model = Material

    name = factory.Sequence(lambda n: f"Filament {n}")
    category = Material.Category.FILAMENT
    specs = factory.LazyFunction(lambda: {"density_g_cm3": 1.24})
    unit_cost = Decimal("25.00")


class InventoryFactory(factory.django.DjangoModelFactory[Inventory]):
    """Stock kept through `inventory_create`, by the node's vendor (who registered it)."""

    class Meta:
        model = Inventory

    node = factory.SubFactory(FabricationNodeFactory)
    material = factory.SubFactory(MaterialFactory)
    quantity = Decimal("2")

    @classmethod
    def _create(cls, model_class: type[Inventory], *args: Any, **kwargs: Any) -> Inventory:
        return inventory_create(by=kwargs["node"].registered_by, **kwargs)


class PurchaseOrderFactory(factory.django.DjangoModelFactory[PurchaseOrder]):
    """A draft order written directly: what `inventory_reorder_sweep` and the order services
    check (one open automatic order per stock, ...) is theirs to check, and the database's."""

    class Meta:
        model = PurchaseOrder

    inventory = factory.SubFactory(InventoryFactory)
    quantity = Decimal("1")
    unit_cost = factory.SelfAttribute("inventory.material.unit_cost")
    total = factory.LazyAttribute(lambda o: o.quantity * o.unit_cost)
    currency = factory.SelfAttribute("inventory.material.currency")
    origin = PurchaseOrder.Origin.MANUAL
    reason = "restock"


class SpoolFactory(factory.django.DjangoModelFactory[Spool]):
    """A spool on a vendor's shelf, or on `node` (then the node's vendor's), written directly:
    `spool_load` is the way to load one that takes the printer's spool off and reschedules."""

    class Meta:
        model = Spool

    node = None
    vendor = factory.Maybe(
        "node",
        yes_declaration=factory.SelfAttribute("node.vendor"),
        no_declaration=factory.SubFactory(OrganizationFactory, kind=Organization.Kind.VENDOR),
    )
    material = factory.SubFactory(MaterialFactory)
    colour_hex = "#e11d48"
    remaining_g = 750.0
