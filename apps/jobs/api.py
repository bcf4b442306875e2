from __future__ import annotations

from typing import Any

import django_filters
from django.db.models import Count
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema, extend_schema_field
from rest_framework import serializers, status
from rest_framework.generics import ListAPIView
from rest_framework.parsers import FormParser, MultiPartParser
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.core.filters import UtcIsoDateTimeFilter
from apps.jobs import providers
from apps.jobs.models import CadFile, Job, JobTemplate, Part, StatusChange
from apps.jobs.selectors import (
    job_get_for_user,
    job_list,
    part_placements,
    template_get_for_user,
    template_list,
    vendor_part_get_for_user,
    vendor_part_list,
)
from apps.jobs.services import (
    Release,
    cad_file_upload,
    job_cancel,
    job_estimate_preview,
    job_set_priority,
    job_submit,
    part_accept,
    part_decline,
    template_create,
    template_delete,
    template_from_job,
    template_instantiate,
    work_complete,
    work_fail,
    work_progress,
    work_queue,
    work_release,
    work_start,
)
from apps.telemetry.api import DeviceRateThrottle
from apps.users.authentication import RevocableJWTAuthentication, VerifiedSessionAuthentication
from apps.users.models import Organization
from apps.users.permissions import action_required
from apps.users.roles import Action
from apps.users.types import AuthenticatedRequest
from apps.vendors import catalog
from apps.vendors.authentication import DevicePrincipal, DeviceTokenAuthentication, IsDevice


class CadFileSerializer(serializers.ModelSerializer):
    class Meta:
        model = CadFile
        fields = [
            "id",
            "original_name",
            "format",
            "size_bytes",
            "sha256",
            "size_x_mm",
            "size_y_mm",
            "size_z_mm",
            "volume_cm3",
            "surface_area_cm2",
            "watertight",
            "triangles",
            "created_at",
        ]


class PartInputSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=200, required=False)
    material = serializers.CharField(
        max_length=60,
        help_text="A catalogue material code (its label is accepted too): "
        + ", ".join(catalog.MATERIAL_CODES),
    )
    process = serializers.CharField(
        max_length=40,
        help_text="A catalogue process code (its label is accepted too): "
        + ", ".join(catalog.PROCESS_CODES),
    )
    quantity = serializers.IntegerField(min_value=1, max_value=10000, default=1)
    size_x_mm = serializers.FloatField(min_value=0.01, max_value=10000, required=False)
    size_y_mm = serializers.FloatField(min_value=0.01, max_value=10000, required=False)
    size_z_mm = serializers.FloatField(min_value=0.01, max_value=10000, required=False)
    complexity = serializers.IntegerField(min_value=1, max_value=10, default=5)
    batch_group = serializers.CharField(max_length=60, required=False, allow_blank=True)
    cad_file = serializers.IntegerField(required=False, help_text="id of an upload of yours")


class PartsInputSerializer(serializers.Serializer):
    parts = PartInputSerializer(many=True, allow_empty=False, max_length=200)  # type: ignore[call-arg]


class EstimateInputSerializer(PartsInputSerializer):
    """The parts, and what of the job changes when it would run (the dry run's plan)."""

    priority = serializers.IntegerField(min_value=1, max_value=10, default=5)
    deadline = serializers.DateTimeField(required=False, allow_null=True)
    timing = serializers.ChoiceField(
        choices=Job.Timing.choices,
        default=Job.Timing.ASAP,
        help_text="balanced / lowest_carbon need a deadline: the job moves into cheaper and "
        "greener hours before it",
    )
    latitude = serializers.FloatField(min_value=-90, max_value=90, required=False)
    longitude = serializers.FloatField(min_value=-180, max_value=180, required=False)


class JobInputSerializer(EstimateInputSerializer):
    title = serializers.CharField(max_length=200)
    organization = serializers.PrimaryKeyRelatedField(
        queryset=Organization.objects.all(), required=False
    )
    metadata = serializers.JSONField(required=False)


class PartSerializer(serializers.ModelSerializer):
    assigned_node_name = serializers.CharField(
        source="assigned_node.name", read_only=True, default=None, allow_null=True
    )

    class Meta:
        model = Part
        fields = [
            "id",
            "name",
            "material",
            "process",
            "quantity",
            "size_x_mm",
            "size_y_mm",
            "size_z_mm",
            "volume_cm3",
            "surface_area_cm2",
            "complexity",
            "cad_file",
            "batch_group",
            "lot",
            "lots",
            "status",
            "assigned_node",
            "assigned_node_name",
            "progress_pct",
            "quality_score",
            "failure_reason",
            "estimates",
            "planned_start",
            "planned_finish",
            "placement",
            "started_at",
            "finished_at",
        ]


class JobStatusChangeSerializer(serializers.ModelSerializer):
    by = serializers.CharField(source="by.email", default=None, read_only=True, allow_null=True)

    class Meta:
        model = StatusChange
        fields = ["part", "from_status", "to_status", "by", "reason", "at"]


class JobSerializer(serializers.ModelSerializer):
    owner = serializers.CharField(source="owner.email", read_only=True)
    organization_name = serializers.CharField(source="organization.name", read_only=True)
    parts_total = serializers.SerializerMethodField()

    class Meta:
        model = Job
        fields = [
            "id",
            "title",
            "owner",
            "organization",
            "organization_name",
            "priority",
            "deadline",
            "timing",
            "status",
            "estimates",
            "metadata",
            "latitude",
            "longitude",
            "created_at",
            "updated_at",
            "completed_at",
            "parts_total",
        ]

    def get_parts_total(self, job: Job) -> int:
        counted = getattr(job, "parts_total", None)  # annotated on lists
        return int(counted) if counted is not None else job.parts.count()


class JobDetailSerializer(JobSerializer):
    parts = PartSerializer(many=True, read_only=True)
    history = JobStatusChangeSerializer(many=True, read_only=True)

    class Meta(JobSerializer.Meta):
        fields = [*JobSerializer.Meta.fields, "parts", "history"]


class JobFilter(django_filters.FilterSet):
    status = django_filters.MultipleChoiceFilter(choices=Job.Status.choices)
    priority_min = django_filters.NumberFilter(field_name="priority", lookup_expr="gte")
    search = django_filters.CharFilter(field_name="title", lookup_expr="icontains")
    created_after = UtcIsoDateTimeFilter(field_name="created_at", lookup_expr="gte")

    class Meta:
        model = Job
        fields = ["status", "priority", "organization"]


class CadUploadApi(APIView):
    """Upload an STL, OBJ or STEP file; STL/OBJ are measured, STEP needs declared dimensions."""

    parser_classes = [MultiPartParser, FormParser]
    permission_classes = [action_required(Action.JOB_CREATE)]

    class InputSerializer(serializers.Serializer):
        file = serializers.FileField()
        size_x_mm = serializers.FloatField(min_value=0.01, max_value=10000, required=False)
        size_y_mm = serializers.FloatField(min_value=0.01, max_value=10000, required=False)
        size_z_mm = serializers.FloatField(min_value=0.01, max_value=10000, required=False)

    @extend_schema(request=InputSerializer, responses={201: CadFileSerializer})
    def post(self, request: AuthenticatedRequest) -> Response:
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        upload = data.validated_data["file"]
        declared = tuple(data.validated_data.get(f"size_{a}_mm") for a in "xyz")
        cad = cad_file_upload(
            by=request.user,
            name=upload.name,
            data=upload.read(),
            declared_mm=declared if all(v is not None for v in declared) else None,  # type: ignore[arg-type]
        )
        return Response(CadFileSerializer(cad).data, status=status.HTTP_201_CREATED)


class JobEstimateApi(APIView):
    """Feasibility and the cost / time / energy / material estimate of a set of parts, before
    submitting; its time (`wall_time_h`, `earliest_completion`, `plan`: each part's node,
    start and finish) is the scheduler's plan for the job on the fleet as it stands, made and
    thrown away. Give the job's priority, deadline and timing for the plan it would get.
    Stores nothing."""

    permission_classes = [action_required(Action.JOB_CREATE)]

    @extend_schema(request=EstimateInputSerializer, responses={200: OpenApiTypes.OBJECT})
    def post(self, request: AuthenticatedRequest) -> Response:
        data = EstimateInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        fields = dict(data.validated_data)
        parts = [dict(p) for p in fields.pop("parts")]
        return Response(job_estimate_preview(by=request.user, parts=parts, **fields))


class JobListApi(ListAPIView):
    """Jobs you may see (filters: status (repeatable), priority, priority_min, organization,
    search, created_after; ordering: created_at, priority, deadline), or submit one."""

    serializer_class = JobSerializer
    filterset_class = JobFilter
    ordering_fields = ["created_at", "priority", "deadline", "status"]

    def get_queryset(self) -> Any:
        if getattr(self, "swagger_fake_view", False):
            return Job.objects.none()
        jobs = job_list(user=self.request.user)  # type: ignore[arg-type]
        # (a GROUP BY drops the model's default ordering: keep it explicit for stable pages)
        return jobs.annotate(parts_total=Count("parts", distinct=True)).order_by(
            "-created_at", "-id"
        )

    @extend_schema(request=JobInputSerializer, responses={201: JobDetailSerializer})
    def post(self, request: AuthenticatedRequest) -> Response:
        data = JobInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        fields = dict(data.validated_data)
        fields["parts"] = [dict(p) for p in fields["parts"]]
        job = job_submit(by=request.user, **fields)
        return Response(JobDetailSerializer(job).data, status=status.HTTP_201_CREATED)


class JobDetailApi(APIView):
    @extend_schema(responses={200: JobDetailSerializer})
    def get(self, request: AuthenticatedRequest, pk: int) -> Response:
        job = job_get_for_user(user=request.user, pk=pk)
        return Response(JobDetailSerializer(job).data)


class JobCancelApi(APIView):
    class InputSerializer(serializers.Serializer):
        reason = serializers.CharField(max_length=500)

    @extend_schema(request=InputSerializer, responses={200: JobDetailSerializer})
    def post(self, request: AuthenticatedRequest, pk: int) -> Response:
        job = job_get_for_user(user=request.user, pk=pk)
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        job = job_cancel(job=job, by=request.user, reason=data.validated_data["reason"])
        return Response(JobDetailSerializer(job).data)


class JobPriorityApi(APIView):
    class InputSerializer(serializers.Serializer):
        priority = serializers.IntegerField(min_value=1, max_value=10)

    @extend_schema(request=InputSerializer, responses={200: JobSerializer})
    def post(self, request: AuthenticatedRequest, pk: int) -> Response:
        job = job_get_for_user(user=request.user, pk=pk)
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        job = job_set_priority(job=job, by=request.user, priority=data.validated_data["priority"])
        return Response(JobSerializer(job).data)


class JobScheduleApi(APIView):
    """Why each part went where it did: the chosen node, its start and finish, the scores
    of the best candidates (capability, capacity, energy, material, proximity, reliability,
    batch) and the nodes skipped for their health, with why."""

    @extend_schema(responses={200: OpenApiTypes.OBJECT})
    def get(self, request: AuthenticatedRequest, pk: int) -> Response:
        job = job_get_for_user(user=request.user, pk=pk)
        rows = part_placements(list(job.parts.select_related("assigned_node")))
        return Response({"job": job.pk, "status": job.status, "parts": rows})


# --- Vendors: the parts on their nodes, accept / decline -----------------------------------------


class VendorPartSerializer(PartSerializer):
    job_title = serializers.CharField(source="job.title", read_only=True)
    priority = serializers.IntegerField(source="job.priority", read_only=True)
    deadline = serializers.DateTimeField(source="job.deadline", read_only=True)
    awaiting_confirmation = serializers.SerializerMethodField()

    class Meta(PartSerializer.Meta):
        fields = [
            *PartSerializer.Meta.fields,
            "job",
            "job_title",
            "priority",
            "deadline",
            "awaiting_confirmation",
        ]

    def get_awaiting_confirmation(self, part: Part) -> bool:
        node = part.assigned_node
        return bool(node and node.requires_confirmation and part.status == Part.Status.SCHEDULED)


class VendorPartFilter(django_filters.FilterSet):
    status = django_filters.MultipleChoiceFilter(choices=Part.Status.choices)
    node = django_filters.NumberFilter(field_name="assigned_node")
    awaiting_confirmation = django_filters.BooleanFilter(method="filter_awaiting")

    class Meta:
        model = Part
        fields = ["status", "node"]

    def filter_awaiting(self, queryset: Any, name: str, value: bool) -> Any:
        awaiting = {"status": Part.Status.SCHEDULED, "assigned_node__requires_confirmation": True}
        return queryset.filter(**awaiting) if value else queryset.exclude(**awaiting)


class VendorPartListApi(ListAPIView):
    """Parts placed on your nodes (filters: status (repeatable), node, awaiting_confirmation;
    ordering: created_at, status)."""

    serializer_class = VendorPartSerializer
    filterset_class = VendorPartFilter
    ordering_fields = ["created_at", "status"]
    permission_classes = [action_required(Action.NODE_MANAGE)]

    def get_queryset(self) -> Any:
        if getattr(self, "swagger_fake_view", False):
            return Part.objects.none()
        return vendor_part_list(user=self.request.user).order_by("-created_at", "-id")  # type: ignore[arg-type]


class VendorPartAcceptApi(APIView):
    """Commit your node to a scheduled part (it becomes ASSIGNED and the node may start it)."""

    permission_classes = [action_required(Action.NODE_MANAGE)]

    @extend_schema(request=None, responses={200: VendorPartSerializer})
    def post(self, request: AuthenticatedRequest, pk: int) -> Response:
        part = vendor_part_get_for_user(user=request.user, pk=pk)
        part = part_accept(by=request.user, part=part)
        return Response(VendorPartSerializer(part).data)


class VendorPartDeclineApi(APIView):
    """Decline a scheduled or assigned part: the scheduler places it on another node (never
    this one again) and the designer is told your reason."""

    permission_classes = [action_required(Action.NODE_MANAGE)]

    class InputSerializer(serializers.Serializer):
        reason = serializers.CharField(max_length=400)

    @extend_schema(request=InputSerializer, responses={200: VendorPartSerializer})
    def post(self, request: AuthenticatedRequest, pk: int) -> Response:
        part = vendor_part_get_for_user(user=request.user, pk=pk)
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        part = part_decline(by=request.user, part=part, reason=data.validated_data["reason"])
        return Response(VendorPartSerializer(part).data)


# --- Node work API (edge gateways / node agents, device token) -----------------------------------


class WorkPartSerializer(serializers.ModelSerializer):
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

    def node_id(self, request: Any) -> int:
        assert isinstance(request.user, DevicePrincipal)
        return request.user.node_id


class WorkQueueApi(_WorkBase):
    """The parts assigned to the calling node, in the order to make them."""

    @extend_schema(responses={200: WorkPartSerializer(many=True)})
    def get(self, request: Any) -> Response:
        parts = work_queue(node_id=self.node_id(request))
        context = {"details": providers.part_work_details(parts), "release": work_release(parts)}
        data = WorkPartSerializer(parts, many=True, context=context).data
        return Response({"results": data})


class WorkStartApi(_WorkBase):
    @extend_schema(request=None, responses={200: WorkPartSerializer})
    def post(self, request: Any, pk: int) -> Response:
        part = work_start(node_id=self.node_id(request), part_id=pk)
        return Response(_work_part(part))


class WorkProgressApi(_WorkBase):
    class InputSerializer(serializers.Serializer):
        progress_pct = serializers.FloatField(min_value=0, max_value=100)

    @extend_schema(request=InputSerializer, responses={200: WorkPartSerializer})
    def post(self, request: Any, pk: int) -> Response:
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        part = work_progress(node_id=self.node_id(request), part_id=pk, **data.validated_data)
        return Response(_work_part(part))


class UsageReportSerializer(serializers.Serializer):
    material_used_g = serializers.FloatField(
        min_value=0, required=False, help_text="material the part took, scrap included"
    )
    waste_g = serializers.FloatField(min_value=0, required=False, help_text="of which scrap")
    energy_kwh = serializers.FloatField(min_value=0, required=False, help_text="metered energy")


class WorkCompleteApi(_WorkBase):
    class InputSerializer(serializers.Serializer):
        quality_score = serializers.FloatField(min_value=0, max_value=1)
        report = UsageReportSerializer(
            required=False, help_text="what the node measured; the estimate fills the rest"
        )

    @extend_schema(request=InputSerializer, responses={200: WorkPartSerializer})
    def post(self, request: Any, pk: int) -> Response:
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        part = work_complete(node_id=self.node_id(request), part_id=pk, **data.validated_data)
        return Response(_work_part(part))


class WorkFailApi(_WorkBase):
    class InputSerializer(serializers.Serializer):
        reason = serializers.CharField(max_length=500)
        machine_fault = serializers.BooleanField(
            default=False, help_text="the machine broke, not the part: make it elsewhere"
        )

    @extend_schema(request=InputSerializer, responses={200: WorkPartSerializer})
    def post(self, request: Any, pk: int) -> Response:
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        part = work_fail(node_id=self.node_id(request), part_id=pk, **data.validated_data)
        return Response(_work_part(part))


# --- Templates ---------------------------------------------------------------------------------


class TemplateSerializer(serializers.ModelSerializer):
    owner = serializers.CharField(source="owner.email", read_only=True)

    class Meta:
        model = JobTemplate
        fields = [
            "id",
            "name",
            "description",
            "owner",
            "organization",
            "parameters",
            "parts",
            "created_at",
        ]


class TemplateListApi(ListAPIView):
    """Templates of your organizations, or save one: `parts` as for a job, `parameters`
    {"scale": {"min", "max", "default"}, "quantity": {...}} (sizes scale, quantities multiply)."""

    serializer_class = TemplateSerializer
    filterset_fields = ["organization"]
    ordering_fields = ["name", "created_at"]

    class InputSerializer(PartsInputSerializer):
        name = serializers.CharField(max_length=200)
        description = serializers.CharField(required=False, allow_blank=True)
        parameters = serializers.JSONField(required=False)
        organization = serializers.PrimaryKeyRelatedField(
            queryset=Organization.objects.all(), required=False
        )

    def get_queryset(self) -> Any:
        if getattr(self, "swagger_fake_view", False):
            return JobTemplate.objects.none()
        return template_list(user=self.request.user)  # type: ignore[arg-type]

    @extend_schema(request=InputSerializer, responses={201: TemplateSerializer})
    def post(self, request: AuthenticatedRequest) -> Response:
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        fields = dict(data.validated_data)
        fields["parts"] = [dict(p) for p in fields["parts"]]
        template = template_create(by=request.user, **fields)
        return Response(TemplateSerializer(template).data, status=status.HTTP_201_CREATED)


class TemplateDetailApi(APIView):
    @extend_schema(responses={200: TemplateSerializer})
    def get(self, request: AuthenticatedRequest, pk: int) -> Response:
        return Response(TemplateSerializer(template_get_for_user(user=request.user, pk=pk)).data)

    @extend_schema(responses={204: None})
    def delete(self, request: AuthenticatedRequest, pk: int) -> Response:
        """Delete a template (its author or an admin); jobs made from it stay."""
        template_delete(by=request.user, template=template_get_for_user(user=request.user, pk=pk))
        return Response(status=status.HTTP_204_NO_CONTENT)


class JobSaveTemplateApi(APIView):
    """Save a job's parts as a template of its organization (scale 0.5-max_scale, quantity
    1-max_quantity)."""

    permission_classes = [action_required(Action.JOB_CREATE)]

    class InputSerializer(serializers.Serializer):
        name = serializers.CharField(max_length=200)
        description = serializers.CharField(required=False, allow_blank=True, default="")
        max_scale = serializers.FloatField(min_value=1, max_value=100, default=2.0)
        max_quantity = serializers.IntegerField(min_value=1, max_value=10000, default=100)

    @extend_schema(request=InputSerializer, responses={201: TemplateSerializer})
    def post(self, request: AuthenticatedRequest, pk: int) -> Response:
        job = job_get_for_user(user=request.user, pk=pk)
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        template = template_from_job(by=request.user, job=job, **data.validated_data)
        return Response(TemplateSerializer(template).data, status=status.HTTP_201_CREATED)


class TemplateInstantiateApi(APIView):
    """A job from the template, with parameter values, validated and scheduled as usual."""

    permission_classes = [action_required(Action.JOB_CREATE)]

    class InputSerializer(serializers.Serializer):
        parameters = serializers.DictField(required=False, default=dict)
        title = serializers.CharField(max_length=200, required=False)
        priority = serializers.IntegerField(min_value=1, max_value=10, default=5)
        deadline = serializers.DateTimeField(required=False, allow_null=True)

    @extend_schema(request=InputSerializer, responses={201: JobDetailSerializer})
    def post(self, request: AuthenticatedRequest, pk: int) -> Response:
        template = template_get_for_user(user=request.user, pk=pk)
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        fields = dict(data.validated_data)
        values = fields.pop("parameters")
        job = template_instantiate(template=template, by=request.user, values=values, **fields)
        return Response(JobDetailSerializer(job).data, status=status.HTTP_201_CREATED)
