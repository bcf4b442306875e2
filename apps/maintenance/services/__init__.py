"""Every write of the maintenance agent, by sub-domain; re-exported here."""

from apps.maintenance.services.alerts import (
    alert_payload,
    alerts_evaluate,
    rule_delete,
    rule_save,
    rules_applicable,
)
from apps.maintenance.services.monitor import (
    MonitorReport,
    fleet_monitor,
    health_score,
    node_mark_offline,
)
from apps.maintenance.services.tickets import (
    machine_fault_ticket,
    ticket_assign,
    ticket_assignable,
    ticket_create,
    ticket_note_add,
    ticket_payload,
    ticket_priority,
    ticket_raise,
    ticket_transition,
    tickets_reprioritise,
)
from apps.maintenance.services.windows import (
    window_cancel,
    window_complete,
    window_schedule,
    window_start,
    windows_start_due,
)

__all__ = [
    "MonitorReport",
    "alert_payload",
    "alerts_evaluate",
    "fleet_monitor",
    "health_score",
    "machine_fault_ticket",
    "node_mark_offline",
    "rule_delete",
    "rule_save",
    "rules_applicable",
    "ticket_assign",
    "ticket_assignable",
    "ticket_create",
    "ticket_note_add",
    "ticket_payload",
    "ticket_priority",
    "ticket_raise",
    "ticket_transition",
    "tickets_reprioritise",
    "window_cancel",
    "window_complete",
    "window_schedule",
    "window_start",
    "windows_start_due",
]
