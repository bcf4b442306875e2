"""Rollouts and gateway software over the API: people start and steer rollouts
(/api/v1/rollouts/...) and admins register gateway software releases (/api/v1/gateway-releases/);
a gateway downloads the release its configuration names (/api/v1/gateway/software/<id>/)."""

from __future__ import annotations

from typing import Any

from django.http import HttpResponse
from django.shortcuts import get_object_or_404
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.exceptions import NotFound
from rest_framework.generics import ListAPIView
from rest_framework.parsers import MultiPartParser
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.users.models import Organization
from apps.users.types import AuthenticatedRequest
from apps.vendors.authentication import GatewayRequest
from apps.vendors.edge_releases import edge_release_list, edge_release_register
from apps.vendors.gateway_api import _GatewayBase
from apps.vendors.models import EdgeRelease, Rollout, RolloutTarget
from apps.vendors.rollouts import (
    rollout_cancel,
    rollout_list,
    rollout_pause,
    rollout_resume,
    rollout_start,
)
from apps.vendors.selectors import vendor_acting_for

# --- Gateway software releases ---------------------------------------------------------------


class EdgeReleaseSerializer(serializers.ModelSerializer[EdgeRelease]):
    class Meta:
        model = EdgeRelease
        fields = ["id", "version", "sha256", "size_bytes", "notes", "created_at"]


class EdgeReleaseListApi(ListAPIView[EdgeRelease]):
    """Gateway software releases (whoever manages gateways sees them); an admin POSTs one as
    multipart (`wheel`: imewe_edge-<version>-py3-none-any.whl, `notes`)."""

    request: AuthenticatedRequest

    serializer_class = EdgeReleaseSerializer
    filter_backends: list[Any] = []
    parser_classes = [MultiPartParser]

    class EdgeReleaseUploadSerializer(serializers.Serializer[Any]):
        wheel = serializers.FileField()
        notes = serializers.CharField(max_length=2000, required=False, allow_blank=True)

    def get_queryset(self) -> Any:
        if getattr(self, "swagger_fake_view", False):
            return EdgeRelease.objects.none()
        return edge_release_list(user=self.request.user)

    @extend_schema(request=EdgeReleaseUploadSerializer, responses={201: EdgeReleaseSerializer})
    def post(self, request: AuthenticatedRequest) -> Response:
        data = self.EdgeReleaseUploadSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        upload = data.validated_data["wheel"]
        release = edge_release_register(
            by=request.user,
            wheel=upload,
            filename=upload.name or "",
            notes=data.validated_data.get("notes", ""),
        )
        return Response(EdgeReleaseSerializer(release).data, status=status.HTTP_201_CREATED)


class GatewaySoftwareApi(_GatewayBase):
    """The wheel of the software release the calling gateway's configuration names; any other
    release is not found for it."""

    @extend_schema(responses={(200, "application/octet-stream"): OpenApiTypes.BINARY})
    def get(self, request: GatewayRequest, pk: int) -> HttpResponse:
        gateway = self.gateway(request)
        if pk not in (gateway.rollout_release_id, gateway.software_release_id):
            raise NotFound("Your configuration names no such release.")
        release = get_object_or_404(EdgeRelease, pk=pk)
        # at most EDGE_RELEASE_MAX_BYTES (8 MB; a release is ~90 KB): one body, not a stream,
        # which an ASGI server would have to pull from a file in a thread
        with release.wheel.open("rb") as handle:
            response = HttpResponse(handle.read(), content_type="application/octet-stream")
        name = f"imewe_edge-{release.version}-py3-none-any.whl"
        response["Content-Disposition"] = f'attachment; filename="{name}"'
        response["X-Content-SHA256"] = release.sha256
        return response


# --- Rollouts --------------------------------------------------------------------------------


class RolloutTargetSerializer(serializers.ModelSerializer[RolloutTarget]):
    gateway_name = serializers.CharField(source="gateway.name", read_only=True)

    class Meta:
        model = RolloutTarget
        fields = ["gateway", "gateway_name", "wave", "state", "version", "error", "updated_at"]


class RolloutSerializer(serializers.ModelSerializer[Rollout]):
    targets = RolloutTargetSerializer(many=True, read_only=True)
    release_version = serializers.CharField(source="release.version", read_only=True, default=None)

    class Meta:
        model = Rollout
        fields = [
            "id",
            "name",
            "vendor",
            "forwarding",
            "release",
            "release_version",
            "target_site",
            "target_tags",
            "wave_sizes",
            "success_threshold_pct",
            "error_threshold_pct",
            "current_wave",
            "status",
            "created_at",
            "targets",
        ]


class RolloutListApi(ListAPIView[Rollout]):
    """Your vendors' rollouts (admins: all), or POST one: it starts at once with its first wave."""

    request: AuthenticatedRequest

    serializer_class = RolloutSerializer
    filter_backends: list[Any] = []

    class RolloutStartSerializer(serializers.Serializer[Any]):
        name = serializers.CharField(max_length=120)
        vendor = serializers.PrimaryKeyRelatedField(
            queryset=Organization.objects.filter(kind=Organization.Kind.VENDOR), required=False
        )
        forwarding = serializers.DictField(required=False)
        release = serializers.PrimaryKeyRelatedField(
            queryset=EdgeRelease.objects.all(),
            required=False,
            allow_null=True,
            help_text="A gateway software release to ship (with or without settings).",
        )
        site = serializers.PrimaryKeyRelatedField(
            queryset=Organization.objects.filter(kind=Organization.Kind.OPERATOR_SITE),
            required=False,
            allow_null=True,
        )
        tags = serializers.ListField(
            child=serializers.CharField(max_length=40), max_length=20, required=False
        )
        wave_sizes = serializers.ListField(child=serializers.IntegerField(), max_length=20)
        success_threshold_pct = serializers.IntegerField()
        error_threshold_pct = serializers.IntegerField()

    def get_queryset(self) -> Any:
        if getattr(self, "swagger_fake_view", False):
            return Rollout.objects.none()
        return rollout_list(user=self.request.user).prefetch_related("targets__gateway")

    @extend_schema(request=RolloutStartSerializer, responses={201: RolloutSerializer})
    def post(self, request: AuthenticatedRequest) -> Response:
        data = self.RolloutStartSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        fields = dict(data.validated_data)
        vendor = vendor_acting_for(
            user=request.user, chosen=fields.pop("vendor", None), what="owns the gateways"
        )
        rollout = rollout_start(by=request.user, vendor=vendor, **fields)
        return Response(RolloutSerializer(rollout).data, status=status.HTTP_201_CREATED)


class RolloutDetailApi(APIView):
    @extend_schema(responses={200: RolloutSerializer})
    def get(self, request: AuthenticatedRequest, pk: int) -> Response:
        rollout = get_object_or_404(rollout_list(user=request.user), pk=pk)
        return Response(RolloutSerializer(rollout).data)


class _RolloutActionApi(APIView):
    act: Any = None

    @extend_schema(request=None, responses={200: RolloutSerializer})
    def post(self, request: AuthenticatedRequest, pk: int) -> Response:
        rollout = get_object_or_404(rollout_list(user=request.user), pk=pk)
        rollout = type(self).act(rollout=rollout, by=request.user)
        return Response(RolloutSerializer(Rollout.objects.get(pk=rollout.pk)).data)


class RolloutPauseApi(_RolloutActionApi):
    """Hold the next wave (reports still move the gateways' states)."""

    act = staticmethod(rollout_pause)


class RolloutResumeApi(_RolloutActionApi):
    act = staticmethod(rollout_resume)


class RolloutCancelApi(_RolloutActionApi):
    """End the rollout; later waves are never started."""

    act = staticmethod(rollout_cancel)
