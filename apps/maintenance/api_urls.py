from django.urls import path

from apps.maintenance import api

urlpatterns = [
    path("maintenance/tickets/", api.TicketListApi.as_view(), name="ticket-list"),
    path("maintenance/tickets/<int:pk>/", api.TicketDetailApi.as_view(), name="ticket-detail"),
    path(
        "maintenance/tickets/<int:pk>/transition/",
        api.TicketTransitionApi.as_view(),
        name="ticket-transition",
    ),
    path(
        "maintenance/tickets/<int:pk>/assign/", api.TicketAssignApi.as_view(), name="ticket-assign"
    ),
    path("maintenance/tickets/<int:pk>/notes/", api.TicketNoteApi.as_view(), name="ticket-notes"),
    path("maintenance/alerts/", api.AlertListApi.as_view(), name="alert-list"),
    path("maintenance/rules/", api.RuleListApi.as_view(), name="rule-list"),
    path("maintenance/rules/<int:pk>/", api.RuleDetailApi.as_view(), name="rule-detail"),
    path("maintenance/windows/", api.WindowListApi.as_view(), name="window-list"),
    path(
        "maintenance/windows/<int:pk>/complete/",
        api.WindowCompleteApi.as_view(),
        name="window-complete",
    ),
    path(
        "maintenance/windows/<int:pk>/cancel/", api.WindowCancelApi.as_view(), name="window-cancel"
    ),
    path("maintenance/fleet/", api.FleetHealthApi.as_view(), name="fleet-health"),
    path(
        "maintenance/nodes/<int:pk>/predictions/",
        api.NodePredictionsApi.as_view(),
        name="node-predictions",
    ),
    path("maintenance/models/", api.ModelListApi.as_view(), name="model-list"),
    path("maintenance/models/rollback/", api.ModelRollbackApi.as_view(), name="model-rollback"),
]
