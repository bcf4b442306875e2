"""Vendors: the parts placed on their nodes, accepted or declined."""

from __future__ import annotations

from typing import Any

import django_filters
from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.generics import ListAPIView
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.jobs.api.jobs import PartSerializer
from apps.jobs.models import Part
from apps.jobs.selectors import (
    vendor_part_get_for_user,
    vendor_part_list,
)
from apps.jobs.services import (
    part_accept,
    part_decline,
)
from apps.users.permissions import action_required
from apps.users.roles import Action
from apps.users.types import AuthenticatedRequest


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


class VendorPartListApi(ListAPIView[Part]):
    """Parts placed on your nodes (filters: status (repeatable), node, awaiting_confirmation;
    ordering: created_at, status)."""

    request: AuthenticatedRequest

    serializer_class = VendorPartSerializer
    filterset_class = VendorPartFilter
    ordering_fields = ["created_at", "status"]
    permission_classes = [action_required(Action.NODE_MANAGE)]

    def get_queryset(self) -> Any:
        if getattr(self, "swagger_fake_view", False):
            return Part.objects.none()
        return vendor_part_list(user=self.request.user).order_by("-created_at", "-id")


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

    class InputSerializer(serializers.Serializer[Any]):
        reason = serializers.CharField(max_length=400)

    @extend_schema(request=InputSerializer, responses={200: VendorPartSerializer})
    def post(self, request: AuthenticatedRequest, pk: int) -> Response:
        part = vendor_part_get_for_user(user=request.user, pk=pk)
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        part = part_decline(by=request.user, part=part, reason=data.validated_data["reason"])
        return Response(VendorPartSerializer(part).data)
