"""Portal pages of the maintenance agent, for the ops and the vendor portal alike (scoping shows
each user their own nodes): fleet health, the ticket queue, a ticket with its evidence, a node's
maintenance view (the vendor's predictions page), threshold rules and the model registry.
Charts and live updates (/ws/maintenance/) come from static/js/maintenance_live.js."""

from apps.maintenance.views.fleet import fleet_view
from apps.maintenance.views.nodes import (
    node_rule_delete_view,
    node_rule_view,
    node_view,
    node_window_view,
    rule_delete_view,
    rules_view,
    window_cancel_view,
    window_complete_view,
)
from apps.maintenance.views.registry import registry_rollback_view, registry_view
from apps.maintenance.views.tickets import (
    ticket_assign_view,
    ticket_create_view,
    ticket_detail_view,
    ticket_note_view,
    ticket_queue_view,
    ticket_transition_view,
    ticket_window_view,
)

__all__ = [
    "fleet_view",
    "node_rule_delete_view",
    "node_rule_view",
    "node_view",
    "node_window_view",
    "registry_rollback_view",
    "registry_view",
    "rule_delete_view",
    "rules_view",
    "ticket_assign_view",
    "ticket_create_view",
    "ticket_detail_view",
    "ticket_note_view",
    "ticket_queue_view",
    "ticket_transition_view",
    "ticket_window_view",
    "window_cancel_view",
    "window_complete_view",
]
