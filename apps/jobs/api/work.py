"""The node work API (edge gateways and node agents, device token): the queue in the plan's
order, start, progress, complete and fail."""

from __future__ import annotations

from typing import Any

from django.http import FileResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema, extend_schema_field
from rest_framework import serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.jobs import providers
from apps.jobs.models import Part
from apps.jobs.services import (
    Release,
    work_complete,
    work_fail,
    work_file,
    work_progress,
    work_queue,
    work_release,
    work_start,
)
from apps.telemetry.api import DeviceRateThrottle
from apps.users.authentication import RevocableJWTAuthentication, VerifiedSessionAuthentication
from apps.vendors.authentication import DeviceRequest, DeviceTokenAuthentication, IsDevice
from apps.vendors.models import FabricationNode
from apps.vendors.services import node_bed_clear


class WorkPartSerializer(serializers.ModelSerializer[Part]):
    job_title = serializers.CharField(source="job.title", read_only=True)
    priority = serializers.IntegerField(source="job.priority", read_only=True)
    cad_url = serializers.SerializerMethodField()

    class Meta:
        model = Part
        fields = [
            "id",
            "job",
            "job_title",
            "priority",
            "name",
            "material",
            "process",
            "quantity",
            "size_x_mm",
            "size_y_mm",
            "size_z_mm",
            "complexity",
            "batch_group",
            "lot",
            "lots",
            "status",
            "progress_pct",
            "estimates",
            "planned_start",
            "planned_finish",
            "ready",
            "not_before",
            "waits_for",
            "cad_url",
            "file",
            "details",
        ]

    details = serializers.SerializerMethodField(
        help_text="What other apps add for the node, e.g. the marketplace playbook to follow "
        "({playbook: {listing, title, version, steps}})."
    )

    ready = serializers.SerializerMethodField(
        help_text="Whether the node may start the part now (only in the queue; a started part "
        "is always ready). Start the first ready part: the queue is in the plan's order."
    )
    not_before = serializers.SerializerMethodField(
        help_text="When a part the plan holds back (energy, a site's power cap) may start."
    )
    waits_for = serializers.SerializerMethodField(help_text="Why it is not ready, for people.")

    def _release(self, part: Part) -> Release:
        released: dict[int, Release] = self.context.get("release") or {}
        return released.get(part.pk, Release(ready=True))

    @extend_schema_field(OpenApiTypes.BOOL)
    def get_ready(self, part: Part) -> bool:
        return self._release(part).ready

    @extend_schema_field(OpenApiTypes.DATETIME)
    def get_not_before(self, part: Part) -> str | None:
        moment = self._release(part).not_before
        return serializers.DateTimeField().to_representation(moment) if moment else None

    @extend_schema_field(OpenApiTypes.STR)
    def get_waits_for(self, part: Part) -> str:
        return self._release(part).waits_for

    file = serializers.SerializerMethodField(
        help_text="The part's file, to fetch from file/ with the device token: format (stl, obj, "
        "step, gcode), name, size_bytes, sha256; null when the part has none."
    )

    @extend_schema_field(OpenApiTypes.OBJECT)
    def get_file(self, part: Part) -> dict[str, Any] | None:
        cad = part.cad_file
        if cad is None:
            return None
        return {
            "format": cad.format,
            "name": cad.original_name,
            "size_bytes": cad.size_bytes,
            "sha256": cad.sha256,
        }

    def get_cad_url(self, part: Part) -> str | None:
        return part.cad_file.file.url if part.cad_file else None

    def get_details(self, part: Part) -> dict[str, Any]:
        details: dict[int, dict[str, Any]] = self.context.get("details") or {}
        return details.get(part.pk, {})


def _work_part(part: Part) -> dict[str, Any]:
    return WorkPartSerializer(part, context={"details": providers.part_work_details([part])}).data


class _WorkBase(APIView):
    authentication_classes = [
        DeviceTokenAuthentication,
        RevocableJWTAuthentication,  # recognised only to answer "users are not nodes"
        VerifiedSessionAuthentication,
    ]
    permission_classes = [IsDevice]
    throttle_classes = [DeviceRateThrottle]

    def node_id(self, request: DeviceRequest) -> int:
        return request.user.node_id


class WorkQueueApi(_WorkBase):
    """The parts assigned to the calling node, in the order to make them."""

    @extend_schema(responses={200: WorkPartSerializer(many=True)})
    def get(self, request: DeviceRequest) -> Response:
        parts = work_queue(node_id=self.node_id(request))
        context = {"details": providers.part_work_details(parts), "release": work_release(parts)}
        data = WorkPartSerializer(parts, many=True, context=context).data
        return Response({"results": data})


class WorkStartApi(_WorkBase):
    @extend_schema(request=None, responses={200: WorkPartSerializer})
    def post(self, request: DeviceRequest, pk: int) -> Response:
        part = work_start(node_id=self.node_id(request), part_id=pk)
        return Response(_work_part(part))


class WorkFileApi(_WorkBase):
    """The part's file, for the node it is assigned to (a printer's agent uploads G-code to the
    printer as it is). `X-Content-SHA256` lets the node check what it received."""

    @extend_schema(responses={(200, "application/octet-stream"): OpenApiTypes.BINARY})
    def get(self, request: DeviceRequest, pk: int) -> FileResponse:
        cad = work_file(node_id=self.node_id(request), part_id=pk)
        response = FileResponse(
            cad.file.open("rb"),
            as_attachment=True,
            filename=cad.original_name,
            content_type="application/octet-stream",
        )
        response["X-Content-SHA256"] = cad.sha256
        return response


class WorkBedClearApi(_WorkBase):
    """The printer itself says its bed is clear (a part ejector, a belt, an operator's button
    on the printer read by the gateway): it may take its next part. 409 when not waiting."""

    @extend_schema(request=None, responses={200: OpenApiTypes.OBJECT})
    def post(self, request: DeviceRequest) -> Response:
        node = FabricationNode.objects.get(pk=self.node_id(request))
        node_bed_clear(node=node, by=None)
        return Response({"node": node.pk, "bed_clear_pending_since": None})


class WorkProgressApi(_WorkBase):
    class InputSerializer(serializers.Serializer[Any]):
        progress_pct = serializers.FloatField(min_value=0, max_value=100)

    @extend_schema(request=InputSerializer, responses={200: WorkPartSerializer})
    def post(self, request: DeviceRequest, pk: int) -> Response:
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        part = work_progress(node_id=self.node_id(request), part_id=pk, **data.validated_data)
        return Response(_work_part(part))


class UsageReportSerializer(serializers.Serializer[Any]):
    material_used_g = serializers.FloatField(
        min_value=0, required=False, help_text="material the part took, scrap included"
    )
    waste_g = serializers.FloatField(min_value=0, required=False, help_text="of which scrap")
    energy_kwh = serializers.FloatField(min_value=0, required=False, help_text="metered energy")


class WorkCompleteApi(_WorkBase):
    class InputSerializer(serializers.Serializer[Any]):
        quality_score = serializers.FloatField(min_value=0, max_value=1)
        report = UsageReportSerializer(
            required=False, help_text="what the node measured; the estimate fills the rest"
        )

    @extend_schema(request=InputSerializer, responses={200: WorkPartSerializer})
    def post(self, request: DeviceRequest, pk: int) -> Response:
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        part = work_complete(node_id=self.node_id(request), part_id=pk, **data.validated_data)
        return Response(_work_part(part))


class WorkFailApi(_WorkBase):
    class InputSerializer(serializers.Serializer[Any]):
        reason = serializers.CharField(max_length=500)
        machine_fault = serializers.BooleanField(
            default=False, help_text="the machine broke, not the part: make it elsewhere"
        )

    @extend_schema(request=InputSerializer, responses={200: WorkPartSerializer})
    def post(self, request: DeviceRequest, pk: int) -> Response:
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        part = work_fail(node_id=self.node_id(request), part_id=pk, **data.validated_data)
        return Response(_work_part(part))
