"""Managed gateways over the API: people register and watch them (/api/v1/gateways/...), and a
gateway, with its own token, pulls its configuration, obtains its nodes' device tokens and
reports its status (/api/v1/gateway/...)."""

from __future__ import annotations

from typing import Any

from django.shortcuts import get_object_or_404
from django.utils import timezone
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema, inline_serializer
from rest_framework import exceptions, serializers, status
from rest_framework.generics import ListAPIView
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.throttling import SimpleRateThrottle
from rest_framework.views import APIView

from apps.users.authentication import RevocableJWTAuthentication, VerifiedSessionAuthentication
from apps.users.models import Organization
from apps.users.types import AuthenticatedRequest
from apps.vendors.authentication import (
    DeviceTokenAuthentication,
    GatewayPrincipal,
    GatewayRequest,
    GatewayTokenAuthentication,
    IsGateway,
)
from apps.vendors.gateway_config import etag_for
from apps.vendors.gateway_selectors import (
    gateway_can_manage,
    gateway_credential_list,
    gateway_get_for_user,
    gateway_is_online,
    gateway_list,
)
from apps.vendors.gateway_services import (
    gateway_config_current,
    gateway_credential_issue,
    gateway_credential_revoke,
    gateway_node_token_issue,
    gateway_register,
    gateway_status_report,
    gateway_update,
)
from apps.vendors.models import (
    FabricationNode,
    Gateway,
    GatewayCredential,
    NodeCommand,
)
from apps.vendors.node_commands import (
    DEFAULT_TTL_S,
    gateway_command_acknowledge,
    gateway_commands_take,
    node_command_issue,
    node_command_list,
)
from apps.vendors.rollouts import (
    rollout_gateway_pulled,
    rollout_gateway_reported,
)
from apps.vendors.selectors import (
    node_get_for_user,
    node_shows_private_details,
    vendor_acting_for,
)

MAX_HEALTH_NODES = 1000


class GatewaySerializer(serializers.ModelSerializer[Gateway]):
    vendor_name = serializers.CharField(source="vendor.name", read_only=True)
    nodes = serializers.SerializerMethodField()
    online = serializers.SerializerMethodField()

    class Meta:
        model = Gateway
        fields = [
            "id",
            "name",
            "vendor",
            "vendor_name",
            "site",
            "tags",
            "forwarding",
            "nodes",
            "online",
            "applied_version",
            "apply_error",
            "health",
            "software_version",
            "last_seen_at",
            "created_at",
        ]

    def get_nodes(self, gateway: Gateway) -> list[int]:
        return [n.pk for n in gateway.nodes.all()]

    def get_online(self, gateway: Gateway) -> bool:
        return gateway_is_online(gateway, now=timezone.now())


class GatewayWriteSerializer(serializers.Serializer[Any]):
    name = serializers.CharField(max_length=120)
    site = serializers.PrimaryKeyRelatedField(
        queryset=Organization.objects.filter(kind=Organization.Kind.OPERATOR_SITE),
        required=False,
        allow_null=True,
    )
    tags = serializers.ListField(
        child=serializers.CharField(max_length=40), max_length=20, required=False
    )
    forwarding = serializers.DictField(required=False, help_text="apps/vendors/gateway_config.py")
    nodes = serializers.PrimaryKeyRelatedField(
        queryset=FabricationNode.objects.all(), many=True, required=False
    )


class GatewayListApi(ListAPIView[Gateway]):
    """The gateways you may see (admins all, vendors their own, operators those at their sites);
    POST registers one for your vendor company."""

    request: AuthenticatedRequest

    serializer_class = GatewaySerializer
    filterset_fields = ["vendor", "site"]
    ordering_fields = ["name", "created_at", "last_seen_at"]

    class GatewayRegisterSerializer(GatewayWriteSerializer):
        vendor = serializers.PrimaryKeyRelatedField(
            queryset=Organization.objects.filter(kind=Organization.Kind.VENDOR), required=False
        )

    def get_queryset(self) -> Any:
        if getattr(self, "swagger_fake_view", False):
            return Gateway.objects.none()
        return gateway_list(user=self.request.user)

    @extend_schema(request=GatewayRegisterSerializer, responses={201: GatewaySerializer})
    def post(self, request: AuthenticatedRequest) -> Response:
        data = self.GatewayRegisterSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        fields = dict(data.validated_data)
        vendor = vendor_acting_for(
            user=request.user, chosen=fields.pop("vendor", None), what="owns the gateway"
        )
        gateway = gateway_register(by=request.user, vendor=vendor, **fields)
        return Response(GatewaySerializer(gateway).data, status=status.HTTP_201_CREATED)


class GatewayDetailApi(APIView):
    @extend_schema(responses={200: GatewaySerializer})
    def get(self, request: AuthenticatedRequest, pk: int) -> Response:
        return Response(GatewaySerializer(gateway_get_for_user(user=request.user, pk=pk)).data)

    @extend_schema(request=GatewayWriteSerializer, responses={200: GatewaySerializer})
    def patch(self, request: AuthenticatedRequest, pk: int) -> Response:
        gateway = gateway_get_for_user(user=request.user, pk=pk)
        data = GatewayWriteSerializer(data=request.data, partial=True)
        data.is_valid(raise_exception=True)
        gateway = gateway_update(gateway=gateway, by=request.user, **data.validated_data)
        return Response(GatewaySerializer(gateway_get_for_user(user=request.user, pk=pk)).data)


def _managed(request: AuthenticatedRequest, pk: int) -> Gateway:
    gateway = gateway_get_for_user(user=request.user, pk=pk)
    if not gateway_can_manage(user=request.user, gateway=gateway):
        raise exceptions.PermissionDenied("Only the gateway's vendor or an admin may do this.")
    return gateway


class GatewayConfigPreviewApi(APIView):
    """The configuration document the gateway pulls now (a new version when the platform's data
    changed since the last one)."""

    @extend_schema(responses={200: OpenApiTypes.OBJECT})
    def get(self, request: AuthenticatedRequest, pk: int) -> Response:
        current = gateway_config_current(gateway=_managed(request, pk))
        return Response({"version": current.version, **current.document})


class GatewayCredentialSerializer(serializers.ModelSerializer[GatewayCredential]):
    active = serializers.BooleanField(source="is_active", read_only=True)

    class Meta:
        model = GatewayCredential
        fields = ["id", "prefix", "active", "created_at", "revoked_at", "last_used_at"]


class GatewayCredentialListApi(APIView):
    @extend_schema(responses={200: GatewayCredentialSerializer(many=True)})
    def get(self, request: AuthenticatedRequest, pk: int) -> Response:
        credentials = gateway_credential_list(gateway=_managed(request, pk))
        return Response(GatewayCredentialSerializer(credentials, many=True).data)

    @extend_schema(
        request=None,
        responses={
            201: inline_serializer(
                "IssuedGatewayCredential",
                {"credential": GatewayCredentialSerializer(), "token": serializers.CharField()},
            )
        },
        description="Issues the gateway's token (revoking earlier ones); shown only here.",
    )
    def post(self, request: AuthenticatedRequest, pk: int) -> Response:
        credential, token = gateway_credential_issue(gateway=_managed(request, pk), by=request.user)
        return Response(
            {"credential": GatewayCredentialSerializer(credential).data, "token": token},
            status=status.HTTP_201_CREATED,
        )


class GatewayCredentialRevokeApi(APIView):
    @extend_schema(request=None, responses={200: GatewayCredentialSerializer})
    def post(self, request: AuthenticatedRequest, pk: int, credential_id: int) -> Response:
        gateway = gateway_get_for_user(user=request.user, pk=pk)
        credential = get_object_or_404(GatewayCredential, pk=credential_id, gateway=gateway)
        credential = gateway_credential_revoke(credential=credential, by=request.user)
        return Response(GatewayCredentialSerializer(credential).data)


# --- The gateway's own side ------------------------------------------------------------------


class GatewayRateThrottle(SimpleRateThrottle):
    """Per gateway credential, at the devices' rate."""

    scope = "device"

    def get_cache_key(self, request: Request, view: APIView) -> str | None:
        if isinstance(request.user, GatewayPrincipal):
            return f"throttle_gateway_{request.user.credential.pk}"
        return None


class _GatewayBase(APIView):
    authentication_classes = [
        GatewayTokenAuthentication,
        # recognised only to answer "this needs the gateway's own token" with 403
        DeviceTokenAuthentication,
        RevocableJWTAuthentication,
        VerifiedSessionAuthentication,
    ]
    permission_classes = [IsGateway]
    throttle_classes = [GatewayRateThrottle]

    def gateway(self, request: GatewayRequest) -> Gateway:
        return request.user.gateway


def _if_none_match(request: Request) -> set[str]:
    header = request.headers.get("If-None-Match", "")
    return {tag.strip().removeprefix("W/") for tag in header.split(",") if tag.strip()}


class GatewayOwnConfigApi(_GatewayBase):
    """The calling gateway's configuration. Send the ETag back in If-None-Match: 304, no body,
    while nothing changed."""

    @extend_schema(
        responses={200: OpenApiTypes.OBJECT, 304: OpenApiResponse(description="Unchanged")}
    )
    def get(self, request: GatewayRequest) -> Response:
        gateway = self.gateway(request)
        current = gateway_config_current(gateway=gateway)
        rollout_gateway_pulled(gateway=gateway, version=current.version)
        etag = etag_for(gateway_id=gateway.pk, version=current.version, digest=current.digest)
        if etag in _if_none_match(request):
            response = Response(status=status.HTTP_304_NOT_MODIFIED)
        else:
            response = Response({"version": current.version, **current.document})
        response["ETag"] = etag
        response["Cache-Control"] = "no-cache"
        return response


class GatewayNodeTokenApi(_GatewayBase):
    """A device token for one of the gateway's nodes (it revokes the node's earlier tokens)."""

    @extend_schema(
        request=None,
        responses={
            201: inline_serializer(
                "NodeToken", {"node": serializers.IntegerField(), "token": serializers.CharField()}
            )
        },
    )
    def post(self, request: GatewayRequest, node_id: int) -> Response:
        _, token = gateway_node_token_issue(gateway=self.gateway(request), node_id=node_id)
        return Response({"node": node_id, "token": token}, status=status.HTTP_201_CREATED)


class NodeHealthSerializer(serializers.Serializer[Any]):
    buffered = serializers.IntegerField(min_value=0)
    last_upload = serializers.DateTimeField(allow_null=True)
    source_errors = serializers.IntegerField(min_value=0)
    last_error = serializers.CharField(allow_blank=True, max_length=500)
    dead_lettered = serializers.IntegerField(min_value=0, required=False, default=0)


class GatewayStatusApi(_GatewayBase):
    """What the gateway runs and how it is doing: the configuration version it applied (null:
    none yet), why the last one failed to apply ("" when it applied), and per node its buffer
    depth, last successful upload and source errors."""

    class GatewayStatusSerializer(serializers.Serializer[Any]):
        applied_version = serializers.IntegerField(min_value=1, allow_null=True)
        error = serializers.CharField(allow_blank=True, max_length=2000, required=False, default="")
        software_version = serializers.CharField(
            allow_blank=True, max_length=60, required=False, default=""
        )
        nodes = serializers.DictField(child=NodeHealthSerializer(), required=False, default=dict)

        def validate_nodes(self, value: dict[str, Any]) -> dict[str, Any]:
            if len(value) > MAX_HEALTH_NODES:
                raise serializers.ValidationError(f"At most {MAX_HEALTH_NODES} nodes.")
            bad = [key for key in value if not key.isdigit()]
            if bad:
                raise serializers.ValidationError(f"Keys are node ids; not: {', '.join(bad[:5])}.")
            return value

    @extend_schema(
        request=GatewayStatusSerializer,
        responses={
            200: inline_serializer(
                "GatewayStatusTaken",
                {
                    "id": serializers.IntegerField(),
                    "applied_version": serializers.IntegerField(allow_null=True),
                },
            )
        },
    )
    def post(self, request: GatewayRequest) -> Response:
        data = self.GatewayStatusSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        fields = dict(data.validated_data)
        nodes = {
            node: {
                **health,
                "last_upload": health["last_upload"].isoformat() if health["last_upload"] else None,
            }
            for node, health in fields.pop("nodes").items()
        }
        gateway = gateway_status_report(
            gateway=self.gateway(request), health={"nodes": nodes}, **fields
        )
        rollout_gateway_reported(gateway=gateway)
        return Response({"id": gateway.pk, "applied_version": gateway.applied_version})


# --- Remote commands -------------------------------------------------------------------------


class NodeCommandSerializer(serializers.ModelSerializer[NodeCommand]):
    issued_by_email = serializers.CharField(
        source="issued_by.email", default=None, read_only=True, allow_null=True
    )

    class Meta:
        model = NodeCommand
        fields = [
            "id",
            "node",
            "kind",
            "setpoint",
            "value",
            "status",
            "outcome",
            "issued_by_email",
            "created_at",
            "expires_at",
            "delivered_at",
            "finished_at",
        ]


class NodeCommandListApi(APIView):
    """A machine's remote commands and their outcomes (those who see its private details), or
    POST one (the role matrix's node_command, within what its device map allows)."""

    class NodeCommandInputSerializer(serializers.Serializer[Any]):
        kind = serializers.ChoiceField(choices=NodeCommand.Kind.choices)
        setpoint = serializers.CharField(max_length=60, required=False, default="")
        value = serializers.FloatField(required=False, allow_null=True, default=None)
        ttl_s = serializers.IntegerField(
            required=False,
            default=DEFAULT_TTL_S,
            help_text="seconds the command may wait for the gateway before it expires",
        )

    @extend_schema(responses={200: NodeCommandSerializer(many=True)})
    def get(self, request: AuthenticatedRequest, pk: int) -> Response:
        node = node_get_for_user(user=request.user, pk=pk)
        if not node_shows_private_details(user=request.user, node=node):
            raise exceptions.PermissionDenied("Only the node's vendor, operators and admins.")
        commands = node_command_list(node=node)[:100]
        return Response(NodeCommandSerializer(commands, many=True).data)

    @extend_schema(request=NodeCommandInputSerializer, responses={201: NodeCommandSerializer})
    def post(self, request: AuthenticatedRequest, pk: int) -> Response:
        node = node_get_for_user(user=request.user, pk=pk)
        data = self.NodeCommandInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        command = node_command_issue(node=node, by=request.user, **data.validated_data)
        return Response(NodeCommandSerializer(command).data, status=status.HTTP_201_CREATED)


class GatewayCommandSerializer(serializers.ModelSerializer[NodeCommand]):
    class Meta:
        model = NodeCommand
        fields = ["id", "node", "kind", "setpoint", "value", "expires_at"]


class GatewayCommandTakeApi(_GatewayBase):
    """The pending commands for the gateway's machines, oldest first; each is handed over once
    (it is then delivered, waiting for the acknowledgement)."""

    @extend_schema(request=None, responses={200: GatewayCommandSerializer(many=True)})
    def post(self, request: GatewayRequest) -> Response:
        commands = gateway_commands_take(gateway=self.gateway(request))
        return Response(GatewayCommandSerializer(commands, many=True).data)


class GatewayCommandAckApi(_GatewayBase):
    class GatewayCommandAckSerializer(serializers.Serializer[Any]):
        ok = serializers.BooleanField()
        outcome = serializers.CharField(max_length=500, allow_blank=True)

    @extend_schema(request=GatewayCommandAckSerializer, responses={200: GatewayCommandSerializer})
    def post(self, request: GatewayRequest, command_id: int) -> Response:
        data = self.GatewayCommandAckSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        command = gateway_command_acknowledge(
            gateway=self.gateway(request), command_id=command_id, **data.validated_data
        )
        return Response(GatewayCommandSerializer(command).data)
