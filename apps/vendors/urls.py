from django.urls import path

from apps.vendors import gateway_views, rollout_views, views

app_name = "vendors"

urlpatterns = [
    path("vendor/nodes/", views.node_list_view, name="node-list"),
    path("vendor/nodes/new/", views.node_register_view, name="node-register"),
    path("vendor/nodes/<int:pk>/", views.node_detail_view, name="node-detail"),
    path("vendor/nodes/<int:pk>/edit/", views.node_edit_view, name="node-edit"),
    path("vendor/nodes/<int:pk>/transition/", views.node_transition_view, name="node-transition"),
    path("vendor/nodes/<int:pk>/bed-clear/", views.node_bed_clear_view, name="node-bed-clear"),
    path("vendor/nodes/<int:pk>/config/", views.node_config_view, name="node-config"),
    path(
        "vendor/nodes/<int:pk>/config/<int:version>/rollback/",
        views.node_config_rollback_view,
        name="node-config-rollback",
    ),
    path(
        "vendor/nodes/<int:pk>/credentials/", views.credential_issue_view, name="credential-issue"
    ),
    path(
        "vendor/nodes/<int:pk>/credentials/<int:credential_id>/revoke/",
        views.credential_revoke_view,
        name="credential-revoke",
    ),
    path("vendor/profile/", views.vendor_profile_view, name="profile"),
    path("vendor/nodes/<int:pk>/commands/", gateway_views.node_command_view, name="node-command"),
    path("vendor/gateways/", gateway_views.gateway_list_view, name="gateway-list"),
    path("vendor/gateways/<int:pk>/", gateway_views.gateway_detail_view, name="gateway-detail"),
    path("vendor/rollouts/", rollout_views.rollout_list_view, name="rollout-list"),
    path("vendor/rollouts/new/", rollout_views.rollout_start_view, name="rollout-start"),
    path("vendor/rollouts/<int:pk>/", rollout_views.rollout_detail_view, name="rollout-detail"),
    path("vendor/rollouts/<int:pk>/live/", rollout_views.rollout_live_view, name="rollout-live"),
    path("vendor/rollouts/<int:pk>/pause/", rollout_views.rollout_pause_view, name="rollout-pause"),
    path(
        "vendor/rollouts/<int:pk>/resume/",
        rollout_views.rollout_resume_view,
        name="rollout-resume",
    ),
    path(
        "vendor/rollouts/<int:pk>/cancel/",
        rollout_views.rollout_cancel_view,
        name="rollout-cancel",
    ),
    path("ops/gateways/", gateway_views.ops_gateway_list_view, name="ops-gateway-list"),
    path(
        "ops/gateways/<int:pk>/",
        gateway_views.ops_gateway_detail_view,
        name="ops-gateway-detail",
    ),
    path("ops/approvals/", views.approval_queue_view, name="approvals"),
    path("ops/approvals/<int:pk>/", views.approval_decide_view, name="approval-decide"),
]
