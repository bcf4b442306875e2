"""The model registry: trained versions with their metrics, and rollback (administrators)."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet
from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.generics import ListAPIView
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.core.ml import model_rollback
from apps.core.models import TrainedModel
from apps.maintenance import selectors
from apps.users.roles import Action, Scope, scope_for
from apps.users.types import AuthenticatedRequest


class TrainedModelSerializer(serializers.ModelSerializer[TrainedModel]):
    class Meta:
        model = TrainedModel
        fields = [
            "id",
            "name",
            "version",
            "algorithm",
            "features",
            "metrics",
            "training",
            "is_active",
            "decision",
            "created_at",
            "activated_at",
        ]


class ModelListApi(ListAPIView[TrainedModel]):
    """The model registry: every trained version with its metrics (filter: name)."""

    request: AuthenticatedRequest

    serializer_class = TrainedModelSerializer
    filterset_fields = ["name", "is_active"]

    def get_queryset(self) -> QuerySet[TrainedModel]:
        if getattr(self, "swagger_fake_view", False):
            return TrainedModel.objects.none()
        if not selectors.registry_can_view(user=self.request.user):
            raise PermissionDenied("The model registry is for the ops portal's roles.")
        return selectors.registry_list()


class ModelRollbackApi(APIView):
    """Make an earlier version of a model the active one (administrators)."""

    class InputSerializer(serializers.Serializer[Any]):
        name = serializers.CharField(max_length=80)
        version = serializers.IntegerField(min_value=1)

    @extend_schema(request=InputSerializer, responses={200: TrainedModelSerializer})
    def post(self, request: AuthenticatedRequest) -> Response:
        if scope_for(request.user, Action.SYSTEM_ADMIN) != Scope.ALL:
            raise PermissionDenied("Only administrators roll models back.")
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        model = model_rollback(**data.validated_data)
        return Response(TrainedModelSerializer(model).data)
