"""Maintenance windows: planned, completed and cancelled."""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet
from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.generics import ListAPIView
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.maintenance import selectors
from apps.maintenance.models import MaintenanceWindow
from apps.maintenance.services import window_cancel, window_complete, window_schedule
from apps.users.types import AuthenticatedRequest


class WindowSerializer(serializers.ModelSerializer[MaintenanceWindow]):
    node_name = serializers.CharField(source="node.name", read_only=True)

    class Meta:
        model = MaintenanceWindow
        fields = [
            "id",
            "node",
            "node_name",
            "kind",
            "status",
            "starts_at",
            "ends_at",
            "reason",
            "ticket",
            "work_done",
            "started_at",
            "completed_at",
        ]


class WindowListApi(ListAPIView[MaintenanceWindow]):
    """Maintenance windows of the nodes you maintain (filters: node, status, kind). POST plans
    one (kind scheduled, predictive or emergency); one starting now takes the node to
    MAINTENANCE at once and its work moves to other nodes."""

    request: AuthenticatedRequest

    serializer_class = WindowSerializer
    filterset_fields = ["node", "status", "kind"]

    class InputSerializer(serializers.Serializer[Any]):
        node = serializers.IntegerField()
        kind = serializers.ChoiceField(choices=MaintenanceWindow.Kind.choices)
        starts_at = serializers.DateTimeField()
        ends_at = serializers.DateTimeField()
        reason = serializers.CharField(max_length=300)
        ticket = serializers.IntegerField(required=False, allow_null=True, default=None)

    def get_queryset(self) -> QuerySet[MaintenanceWindow]:
        if getattr(self, "swagger_fake_view", False):
            return MaintenanceWindow.objects.none()
        return selectors.window_list(user=self.request.user)

    @extend_schema(request=InputSerializer, responses={201: WindowSerializer})
    def post(self, request: AuthenticatedRequest) -> Response:
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        values = dict(data.validated_data)
        node = selectors.maintained_node_get(user=request.user, pk=values.pop("node"))
        ticket_id = values.pop("ticket")
        ticket = None
        if ticket_id is not None:
            ticket = selectors.ticket_get_for_user(user=request.user, pk=ticket_id)
        window = window_schedule(by=request.user, node=node, ticket=ticket, **values)
        return Response(WindowSerializer(window).data, status=status.HTTP_201_CREATED)


class WindowCompleteApi(APIView):
    class InputSerializer(serializers.Serializer[Any]):
        work_done = serializers.CharField(max_length=5000)

    @extend_schema(request=InputSerializer, responses={200: WindowSerializer})
    def post(self, request: AuthenticatedRequest, pk: int) -> Response:
        window = selectors.window_get_for_user(user=request.user, pk=pk)
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        window = window_complete(by=request.user, window=window, **data.validated_data)
        return Response(WindowSerializer(window).data)


class WindowCancelApi(APIView):
    @extend_schema(request=None, responses={200: WindowSerializer})
    def post(self, request: AuthenticatedRequest, pk: int) -> Response:
        window = selectors.window_get_for_user(user=request.user, pk=pk)
        return Response(WindowSerializer(window_cancel(by=request.user, window=window)).data)
