"""Jobs for designers: CAD upload, the estimate (a dry run of the scheduler), submit, list,
detail, cancel, priority, and why each part went where."""

from __future__ import annotations

import hashlib
from typing import Any

import django_filters
from django.conf import settings
from django.core.cache import cache
from django.db.models import Count
from django.http import Http404
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_flex_fields.serializers import FlexFieldsSerializerMixin
from rest_framework import serializers, status
from rest_framework.generics import ListAPIView
from rest_framework.parsers import FormParser, MultiPartParser
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.core.api import requested_fields
from apps.core.filters import UtcIsoDateTimeFilter
from apps.core.model_fields import model_serializer_field
from apps.jobs.models import CadFile, Job, Part, StatusChange
from apps.jobs.selectors import (
    job_detail_get_for_user,
    job_detail_version,
    job_get_for_user,
    job_list,
    part_placements,
)
from apps.jobs.services import (
    cad_file_upload,
    job_cancel,
    job_estimate_preview,
    job_set_priority,
    job_submit,
)
from apps.users.models import Organization
from apps.users.permissions import action_required
from apps.users.roles import Action
from apps.users.types import AuthenticatedRequest
from apps.vendors import catalog


class CadFileSerializer(serializers.ModelSerializer[CadFile]):
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


class PartInputSerializer(serializers.Serializer[Any]):
    name = model_serializer_field(Part, "name", required=False)
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
    quantity = model_serializer_field(Part, "quantity")
    size_x_mm = serializers.FloatField(min_value=0.01, max_value=10000, required=False)
    size_y_mm = serializers.FloatField(min_value=0.01, max_value=10000, required=False)
    size_z_mm = serializers.FloatField(min_value=0.01, max_value=10000, required=False)
    complexity = model_serializer_field(Part, "complexity")
    batch_group = serializers.CharField(max_length=60, required=False, allow_blank=True)
    colour_hex = serializers.RegexField(
        r"^#?[0-9a-fA-F]{6}$",
        required=False,
        allow_blank=True,
        help_text="the colour to print it in, #rrggbb: only a printer with a spool of the "
        "part's material in that colour loaded takes it",
        error_messages={"invalid": "A colour is #rrggbb (hex digits)."},
    )
    cad_file = serializers.IntegerField(required=False, help_text="id of an upload of yours")


class PartsInputSerializer(serializers.Serializer[Any]):
    parts = PartInputSerializer(many=True, allow_empty=False, max_length=200)  # type: ignore[call-arg]


class JobRunInputSerializer(serializers.Serializer[Any]):
    """How urgently and when a new job runs (the Job model's fields): what submitting a job,
    its estimate and a job from a bought template share."""

    priority = model_serializer_field(Job, "priority")
    deadline = model_serializer_field(Job, "deadline")
    timing = model_serializer_field(
        Job,
        "timing",
        help_text="balanced / lowest_carbon need a deadline: the job moves into cheaper and "
        "greener hours before it",
    )


class EstimateInputSerializer(PartsInputSerializer, JobRunInputSerializer):
    """The parts, and what of the job changes when it would run (the dry run's plan)."""

    latitude = serializers.FloatField(min_value=-90, max_value=90, required=False)
    longitude = serializers.FloatField(min_value=-180, max_value=180, required=False)


class JobInputSerializer(EstimateInputSerializer):
    title = model_serializer_field(Job, "title")
    organization = serializers.PrimaryKeyRelatedField(
        queryset=Organization.objects.all(), required=False
    )
    metadata = serializers.JSONField(required=False)


class PartSerializer(serializers.ModelSerializer[Part]):
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
            "colour_hex",
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


class JobStatusChangeSerializer(serializers.ModelSerializer[StatusChange]):
    by = serializers.CharField(source="by.email", default=None, read_only=True, allow_null=True)

    class Meta:
        model = StatusChange
        fields = ["part", "from_status", "to_status", "by", "reason", "at"]


class JobSerializer(serializers.ModelSerializer[Job]):
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
        # annotated on lists; counted with the version on the detail
        counted = getattr(job, "parts_total", None)
        if counted is None:
            counted = self.context.get("parts_total")
        return int(counted) if counted is not None else job.parts.count()


class JobDetailSerializer(FlexFieldsSerializerMixin, JobSerializer):  # type: ignore[misc]
    """A job with its parts and history; `?fields=id,status,parts_total` keeps only those
    top-level fields, `?omit=history` leaves fields out (a status poll need not carry the
    whole history)."""

    parts = PartSerializer(many=True, read_only=True)
    history = JobStatusChangeSerializer(many=True, read_only=True)

    class Meta(JobSerializer.Meta):
        fields = [*JobSerializer.Meta.fields, "parts", "history"]

    def get_field_names(self, declared_fields: Any, info: Any) -> list[str]:
        # Build only the fields the answer keeps: drf-flex-fields builds every field and drops
        # the others, half the serializer's time for a 3-field status poll. (The names are
        # top-level ones, checked by the view's `requested_fields`.)
        names = list(super().get_field_names(declared_fields, info))
        keep = set(self._flex_options_all["fields"])
        omit = set(self._flex_options_all["omit"])
        return [name for name in names if (not keep or name in keep) and name not in omit]


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

    class InputSerializer(serializers.Serializer[Any]):
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
            declared_mm=declared if all(v is not None for v in declared) else None,
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


class JobListApi(ListAPIView[Job]):
    """Jobs you may see (filters: status (repeatable), priority, priority_min, organization,
    search, created_after; ordering: created_at, priority, deadline), or submit one."""

    request: AuthenticatedRequest

    serializer_class = JobSerializer
    filterset_class = JobFilter
    ordering_fields = ["created_at", "priority", "deadline", "status"]

    def get_queryset(self) -> Any:
        if getattr(self, "swagger_fake_view", False):
            return Job.objects.none()
        jobs = job_list(user=self.request.user)
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


# bump when the detail answer's format changes, so cached answers of the old format go unused
BODY_FORMAT = 1


class JobDetailApi(APIView):
    """A job with its parts and history. `fields` (comma-separated) keeps only the named
    top-level fields and `omit` leaves some out; an unknown name is a 400. The answer carries
    an ETag: send it back in If-None-Match and an unchanged job answers 304 with no body."""

    @extend_schema(
        parameters=[
            OpenApiParameter("fields", str, description="top-level fields to keep, e.g. id,status"),
            OpenApiParameter(
                "omit", str, description="top-level fields to leave out, e.g. history"
            ),
        ],
        responses={200: JobDetailSerializer},
    )
    def get(self, request: AuthenticatedRequest, pk: int) -> Response:
        keep, omit = requested_fields(request, JobDetailSerializer.Meta.fields)
        # A poll of an unchanged job is answered 304 from one small query, before the job is
        # loaded and serialized (a hash of the body would cost the whole answer).
        version = job_detail_version(user=request.user, pk=pk)
        if version is None:
            raise Http404
        shape = f"{version.tag}|{','.join(sorted(keep))}|{','.join(sorted(omit))}"
        etag = f'W/"{hashlib.blake2b(shape.encode(), digest_size=16).hexdigest()}"'
        asked = request.headers.get("If-None-Match", "")
        tags = {tag.strip().removeprefix("W/") for tag in asked.split(",")}
        if "*" in tags or etag.removeprefix("W/") in tags:
            return Response(status=status.HTTP_304_NOT_MODIFIED, headers={"ETag": etag})

        # The body is the same for everyone who may see the job (no field depends on the
        # caller), so the answer built for this version and shape serves every poller until the
        # version moves: the check above ran for this caller, the cache holds no access.
        cache_key = f"jobs:detail:{BODY_FORMAT}:{etag}"
        body = cache.get(cache_key)
        if body is None:

            def wanted(*names: str) -> bool:
                return any((not keep or n in keep) and n not in omit for n in names)

            job = job_detail_get_for_user(
                user=request.user,
                pk=pk,
                # parts_total alone needs no part loaded (the version counted them)
                parts=wanted("parts"),
                history=wanted("history"),
            )
            # counted with the version: the answer's count is the one its ETag stands for
            context = {"request": request, "parts_total": version.parts_total}
            body = dict(JobDetailSerializer(job, context=context).data)
            cache.set(cache_key, body, settings.JOB_DETAIL_CACHE_S)
        answer = Response(body)
        answer["ETag"] = etag
        return answer


class JobCancelApi(APIView):
    class InputSerializer(serializers.Serializer[Any]):
        reason = serializers.CharField(max_length=500)

    @extend_schema(request=InputSerializer, responses={200: JobDetailSerializer})
    def post(self, request: AuthenticatedRequest, pk: int) -> Response:
        job = job_get_for_user(user=request.user, pk=pk)
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        job = job_cancel(job=job, by=request.user, reason=data.validated_data["reason"])
        return Response(JobDetailSerializer(job).data)


class JobPriorityApi(APIView):
    class InputSerializer(serializers.Serializer[Any]):
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
