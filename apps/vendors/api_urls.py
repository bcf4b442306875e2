from django.urls import path

from apps.vendors import api

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
]
