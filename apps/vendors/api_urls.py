from django.urls import path

from apps.vendors import api, gateway_api, rollout_api

urlpatterns = [
    path("nodes/", api.NodeListApi.as_view(), name="node-list"),
    path("nodes/pending/", api.PendingNodeListApi.as_view(), name="node-pending"),
    path("nodes/<int:pk>/", api.NodeDetailApi.as_view(), name="node-detail"),
    path("nodes/<int:pk>/transition/", api.NodeTransitionApi.as_view(), name="node-transition"),
    path("nodes/<int:pk>/bed-clear/", api.NodeBedClearApi.as_view(), name="node-bed-clear"),
    path("nodes/<int:pk>/status-log/", api.NodeStatusLogApi.as_view(), name="node-status-log"),
    path("nodes/<int:pk>/approval/", api.NodeApprovalApi.as_view(), name="node-approval"),
    path("nodes/<int:pk>/configs/", api.NodeConfigListApi.as_view(), name="node-configs"),
    path("nodes/<int:pk>/configs/diff/", api.NodeConfigDiffApi.as_view(), name="node-config-diff"),
    path(
        "nodes/<int:pk>/configs/<int:version>/rollback/",
        api.NodeConfigRollbackApi.as_view(),
        name="node-config-rollback",
    ),
    path(
        "nodes/<int:pk>/credentials/", api.NodeCredentialListApi.as_view(), name="node-credentials"
    ),
    path(
        "nodes/<int:pk>/credentials/<int:credential_id>/revoke/",
        api.NodeCredentialRevokeApi.as_view(),
        name="node-credential-revoke",
    ),
    path("vendors/<int:org_id>/profile/", api.VendorProfileApi.as_view(), name="vendor-profile"),
    path("vendors/<int:org_id>/verify/", api.VendorVerifyApi.as_view(), name="vendor-verify"),
    path("gateways/", gateway_api.GatewayListApi.as_view(), name="gateway-list"),
    path("gateways/<int:pk>/", gateway_api.GatewayDetailApi.as_view(), name="gateway-detail"),
    path(
        "gateways/<int:pk>/config/",
        gateway_api.GatewayConfigPreviewApi.as_view(),
        name="gateway-config-preview",
    ),
    path(
        "gateways/<int:pk>/credentials/",
        gateway_api.GatewayCredentialListApi.as_view(),
        name="gateway-credentials",
    ),
    path(
        "gateways/<int:pk>/credentials/<int:credential_id>/revoke/",
        gateway_api.GatewayCredentialRevokeApi.as_view(),
        name="gateway-credential-revoke",
    ),
    # the gateway's own side (its token)
    path("gateway/config/", gateway_api.GatewayOwnConfigApi.as_view(), name="gateway-own-config"),
    path(
        "gateway/nodes/<int:node_id>/token/",
        gateway_api.GatewayNodeTokenApi.as_view(),
        name="gateway-node-token",
    ),
    path("gateway/status/", gateway_api.GatewayStatusApi.as_view(), name="gateway-status"),
    path(
        "gateway/commands/take/",
        gateway_api.GatewayCommandTakeApi.as_view(),
        name="gateway-commands-take",
    ),
    path(
        "gateway/commands/<int:command_id>/ack/",
        gateway_api.GatewayCommandAckApi.as_view(),
        name="gateway-command-ack",
    ),
    path(
        "gateway/software/<int:pk>/",
        rollout_api.GatewaySoftwareApi.as_view(),
        name="gateway-software",
    ),
    path("gateway-releases/", rollout_api.EdgeReleaseListApi.as_view(), name="edge-release-list"),
    path("rollouts/", rollout_api.RolloutListApi.as_view(), name="rollout-list"),
    path("rollouts/<int:pk>/", rollout_api.RolloutDetailApi.as_view(), name="rollout-detail"),
    path("rollouts/<int:pk>/pause/", rollout_api.RolloutPauseApi.as_view(), name="rollout-pause"),
    path(
        "rollouts/<int:pk>/resume/", rollout_api.RolloutResumeApi.as_view(), name="rollout-resume"
    ),
    path(
        "rollouts/<int:pk>/cancel/", rollout_api.RolloutCancelApi.as_view(), name="rollout-cancel"
    ),
    path(
        "nodes/<int:pk>/commands/", gateway_api.NodeCommandListApi.as_view(), name="node-commands"
    ),
]
