"""Every write of the materials app, by sub-domain; re-exported here."""

from apps.materials.services.catalog import (
    catalog_can_edit,
    catalog_install_standard,
    material_create,
    material_update,
)
from apps.materials.services.ledger import stock_move
from apps.materials.services.orders import (
    inventory_reorder_if_low,
    order_quantity,
    purchase_order_cancel,
    purchase_order_create,
    purchase_order_receive,
    purchase_order_send,
)
from apps.materials.services.spools import (
    SpoolImport,
    SpoolmanUnavailable,
    spool_load,
    spool_low_g,
    spool_take_for_part,
    spool_unload,
    spoolman_fetch,
    spools_import_spoolman,
)
from apps.materials.services.stock import (
    SweepReport,
    inventory_adjust,
    inventory_create,
    inventory_from_telemetry,
    inventory_reorder_sweep,
    inventory_restock,
    inventory_update,
)
from apps.materials.services.usage import (
    usage_figures,
    usage_reconcile,
    usage_record,
    waste_share,
)

__all__ = [
    "SpoolImport",
    "SpoolmanUnavailable",
    "SweepReport",
    "spool_load",
    "spool_low_g",
    "spool_take_for_part",
    "spool_unload",
    "spoolman_fetch",
    "spools_import_spoolman",
    "catalog_can_edit",
    "catalog_install_standard",
    "inventory_adjust",
    "inventory_create",
    "inventory_from_telemetry",
    "inventory_reorder_if_low",
    "inventory_reorder_sweep",
    "inventory_restock",
    "inventory_update",
    "material_create",
    "material_update",
    "order_quantity",
    "purchase_order_cancel",
    "purchase_order_create",
    "purchase_order_receive",
    "purchase_order_send",
    "stock_move",
    "usage_figures",
    "usage_reconcile",
    "usage_record",
    "waste_share",
]
