from __future__ import annotations

from typing import Any

from django.shortcuts import get_object_or_404
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import exceptions, serializers, status
from rest_framework.generics import ListAPIView
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.users.models import Organization
from apps.users.permissions import action_required
from apps.users.roles import Action
from apps.users.types import AuthenticatedRequest
from apps.vendors import catalog
from apps.vendors.models import (
    DeviceCredential,
    FabricationNode,
    NodeConfigProfile,
    NodeStatusChange,
    VendorProfile,
)
from apps.vendors.selectors import (
    config_diff,
    credential_list,
    node_can_manage,
    node_get_for_user,
    node_list_with_private_flag,
    node_shows_private_details,
    pending_node_list,
    vendor_acting_for,
    vendor_organizations_for,
)
from apps.vendors.services import (
    NODE_FIELDS,
    device_credential_issue,
    device_credential_revoke,
    node_bed_clear,
    node_config_rollback,
    node_config_save,
    node_decide,
    node_register,
    node_transition,
    node_update,
    vendor_profile_get_or_create,
    vendor_profile_update,
    vendor_profile_verify,
)

PRIVATE_NOTE = (
    "Null unless private_details is true (the node's vendor, its site's operators, admins)."
)


class NodeSerializer(serializers.ModelSerializer[FabricationNode]):
    """A node as its caller may see it: private details are null for everyone but the node's
    vendor company, its site's operators and admins (apps.vendors.selectors)."""

    vendor_name = serializers.CharField(source="vendor.name", read_only=True)
    private_details = serializers.SerializerMethodField(
        help_text="Whether you may see this node's private details (the fields below are null "
        "otherwise)."
    )
    latitude = serializers.FloatField(read_only=True, allow_null=True, help_text=PRIVATE_NOTE)
    longitude = serializers.FloatField(read_only=True, allow_null=True, help_text=PRIVATE_NOTE)
    software_version = serializers.CharField(
        read_only=True, allow_null=True, help_text=PRIVATE_NOTE
    )
    approval_comment = serializers.CharField(
        read_only=True, allow_null=True, help_text=PRIVATE_NOTE
    )
    capability_problems = serializers.ListField(
        child=serializers.CharField(),
        read_only=True,
        help_text="Why the node can take no job (or what it lists that no job asks for); "
        "empty when it can take work.",
    )

    PRIVATE_FIELDS = ("latitude", "longitude", "software_version", "approval_comment")

    class Meta:
        model = FabricationNode
        fields = [
            "id",
            "name",
            "vendor",
            "vendor_name",
            "site",
            "kind",
            "processes",
            "materials",
            "build_x_mm",
            "build_y_mm",
            "build_z_mm",
            "precision_mm",
            "latitude",
            "longitude",
            "software_version",
            "rated_power_kw",
            "requires_confirmation",
            "bed_clear_required",
            "bed_clear_pending_since",
            "status",
            "approval",
            "approval_comment",
            "approved_at",
            "created_at",
            "updated_at",
            "private_details",
            "capability_problems",
        ]
        read_only_fields = [
            "status",
            "approval",
            "approval_comment",
            "approved_at",
            "bed_clear_pending_since",
        ]

    def get_private_details(self, node: FabricationNode) -> bool:
        flag = getattr(node, "private_details", None)  # node_list_with_private_flag's
        if flag is None:
            request = self.context.get("request")
            flag = request is not None and node_shows_private_details(user=request.user, node=node)
        return bool(flag)

    def to_representation(self, instance: FabricationNode) -> dict[str, Any]:
        data = super().to_representation(instance)
        if not data["private_details"]:
            for field in self.PRIVATE_FIELDS:
                data[field] = None
        return data


class NodeWriteSerializer(serializers.ModelSerializer[FabricationNode]):
    processes = serializers.ListField(
        child=serializers.CharField(max_length=40),
        max_length=30,
        help_text="Catalogue process codes (labels are accepted and stored as codes): "
        + ", ".join(catalog.PROCESS_CODES),
    )
    materials = serializers.ListField(
        child=serializers.CharField(max_length=60),
        max_length=100,
        help_text="Catalogue material codes (labels are accepted and stored as codes): "
        + ", ".join(catalog.MATERIAL_CODES),
    )
    site = serializers.PrimaryKeyRelatedField(
        queryset=Organization.objects.filter(kind=Organization.Kind.OPERATOR_SITE),
        required=False,
        allow_null=True,
    )

    class Meta:
        model = FabricationNode
        fields = list(NODE_FIELDS)
        validators: list[Any] = []  # uniqueness per vendor is the service's (409)


class NodeListApi(ListAPIView[FabricationNode]):
    """List the nodes you may see (filters: kind, status, approval, vendor) or register one."""

    request: AuthenticatedRequest

    serializer_class = NodeSerializer
    filterset_fields = ["kind", "status", "approval", "vendor", "site"]
    ordering_fields = ["name", "created_at", "status"]

    class RegisterSerializer(NodeWriteSerializer):
        vendor = serializers.PrimaryKeyRelatedField(
            queryset=Organization.objects.filter(kind=Organization.Kind.VENDOR), required=False
        )

        class Meta(NodeWriteSerializer.Meta):
            fields = [*NodeWriteSerializer.Meta.fields, "vendor"]

    def get_queryset(self) -> Any:
        if getattr(self, "swagger_fake_view", False):
            return FabricationNode.objects.none()
        return node_list_with_private_flag(user=self.request.user)

    @extend_schema(request=RegisterSerializer, responses={201: NodeSerializer})
    def post(self, request: AuthenticatedRequest) -> Response:
        data = self.RegisterSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        fields = dict(data.validated_data)
        vendor = vendor_acting_for(
            user=request.user, chosen=fields.pop("vendor", None), what="owns the node"
        )
        node = node_register(by=request.user, vendor=vendor, **fields)
        return Response(
            NodeSerializer(node, context={"request": request}).data,
            status=status.HTTP_201_CREATED,
        )


class NodeDetailApi(APIView):
    @extend_schema(responses={200: NodeSerializer})
    def get(self, request: AuthenticatedRequest, pk: int) -> Response:
        node = node_get_for_user(user=request.user, pk=pk)
        return Response(NodeSerializer(node, context={"request": request}).data)

    @extend_schema(request=NodeWriteSerializer, responses={200: NodeSerializer})
    def patch(self, request: AuthenticatedRequest, pk: int) -> Response:
        node = node_get_for_user(user=request.user, pk=pk)
        data = NodeWriteSerializer(node, data=request.data, partial=True)
        data.is_valid(raise_exception=True)
        node = node_update(node=node, by=request.user, **data.validated_data)
        return Response(NodeSerializer(node, context={"request": request}).data)


class NodeTransitionApi(APIView):
    class InputSerializer(serializers.Serializer[Any]):
        to = serializers.ChoiceField(choices=FabricationNode.Status.choices)
        reason = serializers.CharField(max_length=500)

    @extend_schema(request=InputSerializer, responses={200: NodeSerializer})
    def post(self, request: AuthenticatedRequest, pk: int) -> Response:
        node = node_get_for_user(user=request.user, pk=pk)
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        node = node_transition(node=node, by=request.user, **data.validated_data)
        return Response(NodeSerializer(node, context={"request": request}).data)


class StatusChangeSerializer(serializers.ModelSerializer[NodeStatusChange]):
    """Who changed the status and why are private details of the node (null for others)."""

    # The registration entry has no previous status: "" (declared, so the enum holds it).
    from_status = serializers.ChoiceField(
        choices=FabricationNode.Status.choices, allow_blank=True, read_only=True
    )
    by_email = serializers.CharField(
        source="by.email", default=None, read_only=True, allow_null=True, help_text=PRIVATE_NOTE
    )
    reason = serializers.CharField(read_only=True, allow_null=True, help_text=PRIVATE_NOTE)

    class Meta:
        model = NodeStatusChange
        fields = ["from_status", "to_status", "by_email", "reason", "at"]

    def to_representation(self, instance: NodeStatusChange) -> dict[str, Any]:
        data = super().to_representation(instance)
        if not self.context.get("private_details", False):
            data["by_email"] = data["reason"] = None
        return data


class NodeBedClearApi(APIView):
    """Confirms the printer's bed is clear after its last part: it may take the next one. The
    node's vendor and the operators of its site may; 409 when the bed is not waiting."""

    @extend_schema(request=None, responses={200: NodeSerializer})
    def post(self, request: AuthenticatedRequest, pk: int) -> Response:
        node = node_get_for_user(user=request.user, pk=pk)
        node = node_bed_clear(node=node, by=request.user)
        return Response(NodeSerializer(node, context={"request": request}).data)


class NodeStatusLogApi(ListAPIView[NodeStatusChange]):
    request: AuthenticatedRequest

    serializer_class = StatusChangeSerializer
    filter_backends: list[Any] = []
    private_details = False

    def get_queryset(self) -> Any:
        if getattr(self, "swagger_fake_view", False):
            return NodeStatusChange.objects.none()
        user = self.request.user
        node = node_get_for_user(user=user, pk=self.kwargs["pk"])
        self.private_details = node_shows_private_details(user=user, node=node)
        return node.status_log.select_related("by")

    def get_serializer_context(self) -> dict[str, Any]:
        # list() runs get_queryset first, so the flag is known here; False is the safe default.
        return {**super().get_serializer_context(), "private_details": self.private_details}


class NodeApprovalApi(APIView):
    """Admins approve (`approve: true`) or reject (with a comment) a pending node."""

    permission_classes = [action_required(Action.SYSTEM_ADMIN)]

    class InputSerializer(serializers.Serializer[Any]):
        approve = serializers.BooleanField()
        comment = serializers.CharField(
            required=False, allow_blank=True, max_length=2000, default=""
        )

    @extend_schema(request=InputSerializer, responses={200: NodeSerializer})
    def post(self, request: AuthenticatedRequest, pk: int) -> Response:
        node = get_object_or_404(FabricationNode, pk=pk)
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        node = node_decide(node=node, by=request.user, **data.validated_data)
        return Response(NodeSerializer(node, context={"request": request}).data)


class PendingNodeListApi(ListAPIView[FabricationNode]):
    serializer_class = NodeSerializer
    permission_classes = [action_required(Action.SYSTEM_ADMIN)]
    filter_backends: list[Any] = []

    def get_queryset(self) -> Any:
        return pending_node_list()


class ConfigSerializer(serializers.ModelSerializer[NodeConfigProfile]):
    author_email = serializers.CharField(
        source="author.email", default=None, read_only=True, allow_null=True
    )

    class Meta:
        model = NodeConfigProfile
        fields = ["version", "config", "message", "author_email", "rolled_back_from", "created_at"]


class NodeConfigListApi(APIView):
    class InputSerializer(serializers.Serializer[Any]):
        config = serializers.JSONField()
        message = serializers.CharField(
            required=False, allow_blank=True, max_length=300, default=""
        )

    @extend_schema(responses={200: ConfigSerializer(many=True)})
    def get(self, request: AuthenticatedRequest, pk: int) -> Response:
        node = node_get_for_user(user=request.user, pk=pk)
        if not node_can_manage(user=request.user, node=node):
            raise exceptions.PermissionDenied(
                "Only the node's vendor or an admin sees its configuration."
            )
        return Response(ConfigSerializer(node.configs.select_related("author"), many=True).data)

    @extend_schema(request=InputSerializer, responses={201: ConfigSerializer})
    def post(self, request: AuthenticatedRequest, pk: int) -> Response:
        node = node_get_for_user(user=request.user, pk=pk)
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        profile = node_config_save(node=node, by=request.user, **data.validated_data)
        return Response(ConfigSerializer(profile).data, status=status.HTTP_201_CREATED)


class NodeConfigDiffApi(APIView):
    @extend_schema(
        parameters=[
            inline_serializer(
                "DiffQuery", {"from": serializers.IntegerField(), "to": serializers.IntegerField()}
            )
        ],
        responses={
            200: inline_serializer(
                "ConfigDiff", {"changes": serializers.ListField(child=serializers.DictField())}
            )
        },
    )
    def get(self, request: AuthenticatedRequest, pk: int) -> Response:
        node = node_get_for_user(user=request.user, pk=pk)
        if not node_can_manage(user=request.user, node=node):
            raise exceptions.PermissionDenied(
                "Only the node's vendor or an admin sees its configuration."
            )
        try:
            old_v, new_v = int(request.query_params["from"]), int(request.query_params["to"])
        except (KeyError, ValueError):
            raise exceptions.ValidationError(
                {"from": "Give ?from=<version>&to=<version>."}
            ) from None
        versions = {c.version: c.config for c in node.configs.filter(version__in=[old_v, new_v])}
        missing = [v for v in (old_v, new_v) if v not in versions]
        if missing:
            raise exceptions.NotFound(f"No configuration version {missing[0]}.")
        return Response(
            {
                "from": old_v,
                "to": new_v,
                "changes": config_diff(old=versions[old_v], new=versions[new_v]),
            }
        )


class NodeConfigRollbackApi(APIView):
    @extend_schema(request=None, responses={201: ConfigSerializer})
    def post(self, request: AuthenticatedRequest, pk: int, version: int) -> Response:
        node = node_get_for_user(user=request.user, pk=pk)
        profile = node_config_rollback(node=node, by=request.user, version=version)
        return Response(ConfigSerializer(profile).data, status=status.HTTP_201_CREATED)


class CredentialSerializer(serializers.ModelSerializer[DeviceCredential]):
    active = serializers.BooleanField(source="is_active", read_only=True)

    class Meta:
        model = DeviceCredential
        fields = ["id", "prefix", "label", "active", "created_at", "revoked_at", "last_used_at"]


class NodeCredentialListApi(APIView):
    class InputSerializer(serializers.Serializer[Any]):
        # named like Field.label: DRF's metaclass takes it off the class, the stubs cannot know
        label = serializers.CharField(required=False, allow_blank=True, max_length=100, default="")  # type: ignore[assignment]

    def _node(self, request: AuthenticatedRequest, pk: int) -> FabricationNode:
        node = node_get_for_user(user=request.user, pk=pk)
        if not node_can_manage(user=request.user, node=node):
            raise exceptions.PermissionDenied(
                "Only the node's vendor or an admin manages its credentials."
            )
        return node

    @extend_schema(responses={200: CredentialSerializer(many=True)})
    def get(self, request: AuthenticatedRequest, pk: int) -> Response:
        return Response(
            CredentialSerializer(credential_list(node=self._node(request, pk)), many=True).data
        )

    @extend_schema(
        request=InputSerializer,
        responses={
            201: inline_serializer(
                "IssuedCredential",
                {"credential": CredentialSerializer(), "token": serializers.CharField()},
            )
        },
        description="Issues a device token (revoking earlier ones); shown only in this response.",
    )
    def post(self, request: AuthenticatedRequest, pk: int) -> Response:
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        credential, token = device_credential_issue(
            node=self._node(request, pk), by=request.user, **data.validated_data
        )
        return Response(
            {"credential": CredentialSerializer(credential).data, "token": token},
            status=status.HTTP_201_CREATED,
        )


class NodeCredentialRevokeApi(APIView):
    @extend_schema(request=None, responses={200: CredentialSerializer})
    def post(self, request: AuthenticatedRequest, pk: int, credential_id: int) -> Response:
        node = node_get_for_user(user=request.user, pk=pk)
        credential = get_object_or_404(DeviceCredential, pk=credential_id, node=node)
        credential = device_credential_revoke(credential=credential, by=request.user)
        return Response(CredentialSerializer(credential).data)


class VendorProfileSerializer(serializers.ModelSerializer[VendorProfile]):
    organization_name = serializers.CharField(source="organization.name", read_only=True)
    certifications = serializers.ListField(
        child=serializers.CharField(max_length=100), max_length=50, required=False
    )

    class Meta:
        model = VendorProfile
        fields = [
            "organization",
            "organization_name",
            "description",
            "certifications",
            "verification_status",
            "contact_name",
            "contact_email",
            "contact_phone",
            "website",
        ]
        read_only_fields = ["organization", "verification_status"]


class VendorProfileApi(APIView):
    def _profile(self, request: Request, org_id: int) -> VendorProfile:
        organization = get_object_or_404(Organization, pk=org_id, kind=Organization.Kind.VENDOR)
        return vendor_profile_get_or_create(organization=organization)

    @extend_schema(responses={200: VendorProfileSerializer})
    def get(self, request: AuthenticatedRequest, org_id: int) -> Response:
        return Response(VendorProfileSerializer(self._profile(request, org_id)).data)

    @extend_schema(request=VendorProfileSerializer, responses={200: VendorProfileSerializer})
    def patch(self, request: AuthenticatedRequest, org_id: int) -> Response:
        profile = self._profile(request, org_id)
        if not vendor_organizations_for(user=request.user).filter(pk=org_id).exists():
            raise exceptions.PermissionDenied(
                "Only the vendor's members or an admin edit this profile."
            )
        data = VendorProfileSerializer(profile, data=request.data, partial=True)
        data.is_valid(raise_exception=True)
        profile = vendor_profile_update(profile=profile, by=request.user, **data.validated_data)
        return Response(VendorProfileSerializer(profile).data)


class VendorVerifyApi(APIView):
    permission_classes = [action_required(Action.SYSTEM_ADMIN)]

    class InputSerializer(serializers.Serializer[Any]):
        verified = serializers.BooleanField()

    @extend_schema(request=InputSerializer, responses={200: VendorProfileSerializer})
    def post(self, request: AuthenticatedRequest, org_id: int) -> Response:
        organization = get_object_or_404(Organization, pk=org_id, kind=Organization.Kind.VENDOR)
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        profile = vendor_profile_verify(
            profile=vendor_profile_get_or_create(organization=organization),
            by=request.user,
            **data.validated_data,
        )
        return Response(VendorProfileSerializer(profile).data)
