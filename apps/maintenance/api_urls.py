from django.urls import path

from apps.maintenance.api import alerts, health, registry, tickets, windows

urlpatterns = [
    path("maintenance/tickets/", tickets.TicketListApi.as_view(), name="ticket-list"),
    path("maintenance/tickets/<int:pk>/", tickets.TicketDetailApi.as_view(), name="ticket-detail"),
    path(
        "maintenance/tickets/<int:pk>/transition/",
        tickets.TicketTransitionApi.as_view(),
        name="ticket-transition",
    ),
    path(
        "maintenance/tickets/<int:pk>/assign/",
        tickets.TicketAssignApi.as_view(),
        name="ticket-assign",
    ),
    path(
        "maintenance/tickets/<int:pk>/notes/", tickets.TicketNoteApi.as_view(), name="ticket-notes"
    ),
    path("maintenance/alerts/", alerts.AlertListApi.as_view(), name="alert-list"),
    path("maintenance/rules/", alerts.RuleListApi.as_view(), name="rule-list"),
    path("maintenance/rules/<int:pk>/", alerts.RuleDetailApi.as_view(), name="rule-detail"),
    path("maintenance/windows/", windows.WindowListApi.as_view(), name="window-list"),
    path(
        "maintenance/windows/<int:pk>/complete/",
        windows.WindowCompleteApi.as_view(),
        name="window-complete",
    ),
    path(
        "maintenance/windows/<int:pk>/cancel/",
        windows.WindowCancelApi.as_view(),
        name="window-cancel",
    ),
    path("maintenance/fleet/", health.FleetHealthApi.as_view(), name="fleet-health"),
    path(
        "maintenance/nodes/<int:pk>/predictions/",
        health.NodePredictionsApi.as_view(),
        name="node-predictions",
    ),
    path("maintenance/models/", registry.ModelListApi.as_view(), name="model-list"),
    path(
        "maintenance/models/rollback/", registry.ModelRollbackApi.as_view(), name="model-rollback"
    ),
]
