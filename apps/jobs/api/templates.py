"""Job templates: list, create, detail, save a job as one, and make a job from one."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.generics import ListAPIView
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.core.model_fields import model_serializer_field
from apps.jobs.api.jobs import JobDetailSerializer, PartsInputSerializer
from apps.jobs.models import Job, JobTemplate
from apps.jobs.selectors import (
    job_get_for_user,
    template_get_for_user,
    template_list,
)
from apps.jobs.services import (
    template_create,
    template_delete,
    template_from_job,
    template_instantiate,
)
from apps.users.models import Organization
from apps.users.permissions import action_required
from apps.users.roles import Action
from apps.users.types import AuthenticatedRequest


class TemplateSerializer(serializers.ModelSerializer[JobTemplate]):
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


class TemplateListApi(ListAPIView[JobTemplate]):
    """Templates of your organizations, or save one: `parts` as for a job, `parameters`
    {"scale": {"min", "max", "default"}, "quantity": {...}} (sizes scale, quantities multiply)."""

    request: AuthenticatedRequest

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
        return template_list(user=self.request.user)

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

    class InputSerializer(serializers.Serializer[Any]):
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

    class InputSerializer(serializers.Serializer[Any]):
        parameters = serializers.DictField(required=False, default=dict)
        title = model_serializer_field(Job, "title", required=False)
        priority = model_serializer_field(Job, "priority")
        deadline = model_serializer_field(Job, "deadline")

    @extend_schema(request=InputSerializer, responses={201: JobDetailSerializer})
    def post(self, request: AuthenticatedRequest, pk: int) -> Response:
        template = template_get_for_user(user=request.user, pk=pk)
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        fields = dict(data.validated_data)
        values = fields.pop("parameters")
        job = template_instantiate(template=template, by=request.user, values=values, **fields)
        return Response(JobDetailSerializer(job).data, status=status.HTTP_201_CREATED)
