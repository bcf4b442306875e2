"""Energy sources of the sites and nodes you manage, and the emission factor of each source
kind."""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet
from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.generics import ListAPIView
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.energy import selectors
from apps.energy.api import MANAGE
from apps.energy.models import EmissionFactor, EnergySource, SourceKind
from apps.energy.services import (
    SOURCE_FIELDS,
    emission_factor_update,
    source_create,
    source_delete,
    source_update,
)
from apps.users.types import AuthenticatedRequest


class SourceSerializer(serializers.ModelSerializer[EnergySource]):
    class Meta:
        model = EnergySource
        fields = ["id", "site", "node", *SOURCE_FIELDS, "created_at", "updated_at"]


class SourceFieldsSerializer(serializers.ModelSerializer[EnergySource]):
    """What may change of a source (PATCH): its fields as the model states them (types,
    choices, limits), none of them required."""

    class Meta:
        model = EnergySource
        fields = SOURCE_FIELDS
        extra_kwargs = {name: {"required": False} for name in SOURCE_FIELDS}


class SourceCreateSerializer(serializers.ModelSerializer[EnergySource]):
    """A new source of a site or of a node: the model's fields, kind and capacity_kw required
    (the model has no default for them)."""

    site = serializers.IntegerField(required=False, allow_null=True, default=None)
    node = serializers.IntegerField(required=False, allow_null=True, default=None)

    class Meta:
        model = EnergySource
        fields = ["site", "node", *SOURCE_FIELDS]


class SourceListApi(ListAPIView[EnergySource]):
    """Energy sources of the nodes and sites you manage (filters: node, site, kind, status).
    POST adds one to a site or to a node (exactly one of them)."""

    request: AuthenticatedRequest

    serializer_class = SourceSerializer
    permission_classes = [MANAGE]
    filterset_fields = ["node", "site", "kind", "status"]

    def get_queryset(self) -> QuerySet[EnergySource]:
        if getattr(self, "swagger_fake_view", False):
            return EnergySource.objects.none()
        return selectors.source_list(user=self.request.user)

    @extend_schema(request=SourceCreateSerializer, responses={201: SourceSerializer})
    def post(self, request: AuthenticatedRequest) -> Response:
        data = SourceCreateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        values = dict(data.validated_data)
        site_id, node_id = values.pop("site"), values.pop("node")
        site = None if site_id is None else selectors.energy_site_get(user=request.user, pk=site_id)
        node = None if node_id is None else selectors.energy_node_get(user=request.user, pk=node_id)
        source = source_create(by=request.user, site=site, node=node, **values)
        return Response(SourceSerializer(source).data, status=status.HTTP_201_CREATED)


class SourceDetailApi(APIView):
    permission_classes = [MANAGE]

    @extend_schema(responses={200: SourceSerializer})
    def get(self, request: AuthenticatedRequest, pk: int) -> Response:
        source = selectors.source_get_for_user(user=request.user, pk=pk)
        return Response(SourceSerializer(source).data)

    @extend_schema(request=SourceFieldsSerializer, responses={200: SourceSerializer})
    def patch(self, request: AuthenticatedRequest, pk: int) -> Response:
        source = selectors.source_get_for_user(user=request.user, pk=pk)
        data = SourceFieldsSerializer(data=request.data, partial=True)
        data.is_valid(raise_exception=True)
        source = source_update(by=request.user, source=source, **data.validated_data)
        return Response(SourceSerializer(source).data)

    @extend_schema(responses={204: None})
    def delete(self, request: AuthenticatedRequest, pk: int) -> Response:
        source = selectors.source_get_for_user(user=request.user, pk=pk)
        source_delete(by=request.user, source=source)
        return Response(status=status.HTTP_204_NO_CONTENT)


class FactorSerializer(serializers.ModelSerializer[EmissionFactor]):
    class Meta:
        model = EmissionFactor
        fields = ["kind", "kg_co2e_per_kwh", "note", "updated_at"]


class FactorListApi(ListAPIView[EmissionFactor]):
    """The emission factor of every source kind, kg CO2e per kWh (everyone may read them)."""

    serializer_class = FactorSerializer
    pagination_class = None

    def get_queryset(self) -> QuerySet[EmissionFactor]:
        return selectors.emission_factor_list()


class FactorDetailApi(APIView):
    """Set a kind's factor (administrators)."""

    class InputSerializer(serializers.Serializer[Any]):
        kg_co2e_per_kwh = serializers.FloatField(min_value=0, max_value=10)
        note = serializers.CharField(max_length=200, required=False, allow_blank=True)

    @extend_schema(request=InputSerializer, responses={200: FactorSerializer})
    def put(self, request: AuthenticatedRequest, kind: str) -> Response:
        if kind not in SourceKind.values:
            raise serializers.ValidationError({"kind": [f"One of {', '.join(SourceKind.values)}."]})
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        factor = emission_factor_update(by=request.user, kind=kind, **data.validated_data)
        return Response(FactorSerializer(factor).data)
