"""Every write of the energy app (re-exported from its modules)."""

from apps.energy.services.config import (
    SOURCE_FIELDS,
    emission_factor_update,
    node_battery_soc_update,
    site_cap_save,
    source_create,
    source_delete,
    source_update,
)
from apps.energy.services.consumption import (
    consumption_reconcile,
    consumption_record,
    part_energy_measure,
)
from apps.energy.services.rates import RatesReport, rates_import_csv, rates_store

__all__ = [
    "SOURCE_FIELDS",
    "RatesReport",
    "consumption_reconcile",
    "consumption_record",
    "emission_factor_update",
    "node_battery_soc_update",
    "part_energy_measure",
    "rates_import_csv",
    "rates_store",
    "site_cap_save",
    "source_create",
    "source_delete",
    "source_update",
]
