from django.urls import path

from apps.maintenance import views

app_name = "maintenance"

urlpatterns = [
    path("maintenance/", views.fleet_view, name="fleet"),
    path("maintenance/tickets/", views.ticket_queue_view, name="tickets"),
    path("maintenance/tickets/new/", views.ticket_create_view, name="ticket-create"),
    path("maintenance/tickets/<int:pk>/", views.ticket_detail_view, name="ticket"),
    path(
        "maintenance/tickets/<int:pk>/transition/",
        views.ticket_transition_view,
        name="ticket-transition",
    ),
    path("maintenance/tickets/<int:pk>/assign/", views.ticket_assign_view, name="ticket-assign"),
    path("maintenance/tickets/<int:pk>/notes/", views.ticket_note_view, name="ticket-note"),
    path("maintenance/tickets/<int:pk>/windows/", views.ticket_window_view, name="ticket-window"),
    path("maintenance/nodes/<int:pk>/", views.node_view, name="node"),
    path("maintenance/nodes/<int:pk>/windows/", views.node_window_view, name="node-window"),
    path("maintenance/nodes/<int:pk>/rules/", views.node_rule_view, name="node-rule"),
    path(
        "maintenance/nodes/<int:pk>/rules/<int:rule_id>/delete/",
        views.node_rule_delete_view,
        name="node-rule-delete",
    ),
    path(
        "maintenance/windows/<int:pk>/complete/",
        views.window_complete_view,
        name="window-complete",
    ),
    path("maintenance/windows/<int:pk>/cancel/", views.window_cancel_view, name="window-cancel"),
    path("maintenance/rules/", views.rules_view, name="rules"),
    path("maintenance/rules/<int:pk>/delete/", views.rule_delete_view, name="rule-delete"),
    path("maintenance/models/", views.registry_view, name="models"),
    path("maintenance/models/rollback/", views.registry_rollback_view, name="model-rollback"),
]
