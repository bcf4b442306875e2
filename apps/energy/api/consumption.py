"""Consumption: energy per finished part, its summary, and a job's energy."""

from __future__ import annotations

from typing import Any

import django_filters
from django.db.models import QuerySet
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers
from rest_framework.generics import ListAPIView
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.core.filters import UtcIsoDateTimeFilter
from apps.energy import selectors
from apps.energy.models import Consumption, SourceKind
from apps.jobs.selectors import job_get_for_user
from apps.users.types import AuthenticatedRequest


class ConsumptionSerializer(serializers.ModelSerializer[Consumption]):
    node_name = serializers.CharField(source="node.name", read_only=True)

    class Meta:
        model = Consumption
        fields = [
            "id",
            "part",
            "job",
            "node",
            "node_name",
            "site",
            "started_at",
            "finished_at",
            "kwh",
            "method",
            "coverage",
            "source_kind",
            "source",
            "reason",
            "price_per_kwh",
            "cost",
            "currency",
            "emission_factor",
            "co2e_kg",
        ]


class ConsumptionFilter(django_filters.FilterSet):
    job = django_filters.NumberFilter(field_name="job_id")
    node = django_filters.NumberFilter(field_name="node_id")
    site = django_filters.NumberFilter(field_name="site_id")
    source_kind = django_filters.ChoiceFilter(choices=SourceKind.choices)
    method = django_filters.ChoiceFilter(choices=Consumption.Method.choices)
    after = UtcIsoDateTimeFilter(field_name="finished_at", lookup_expr="gte")
    before = UtcIsoDateTimeFilter(field_name="finished_at", lookup_expr="lt")

    class Meta:
        model = Consumption
        fields = ["job", "node", "site", "source_kind", "method", "after", "before"]


class ConsumptionListApi(ListAPIView[Consumption]):
    """Energy per finished part: on the nodes you manage, and of the jobs you see as a member
    of their organization (filters: job, node, site, source_kind, method, after, before on
    finished_at)."""

    request: AuthenticatedRequest

    serializer_class = ConsumptionSerializer
    filterset_class = ConsumptionFilter
    ordering_fields = ["finished_at", "kwh", "co2e_kg", "cost"]

    def get_queryset(self) -> QuerySet[Consumption]:
        if getattr(self, "swagger_fake_view", False):
            return Consumption.objects.none()
        return selectors.consumption_list(user=self.request.user)


class SummarySerializer(serializers.Serializer[Any]):
    kwh = serializers.FloatField()
    co2e_kg = serializers.FloatField()
    renewable_kwh = serializers.FloatField()
    renewable_share = serializers.FloatField()
    cost = serializers.DecimalField(max_digits=14, decimal_places=4)
    currency = serializers.CharField()
    parts = serializers.IntegerField()
    kwh_by_source = serializers.DictField(child=serializers.FloatField())
    cost_by_currency = serializers.DictField(child=serializers.CharField())


class ConsumptionSummaryApi(APIView):
    """Totals (kWh, kg CO2e, renewable share, cost, parts) of the consumption you may see, with
    the list's filters."""

    @extend_schema(
        parameters=[
            OpenApiParameter("job", int, required=False),
            OpenApiParameter("node", int, required=False),
            OpenApiParameter("site", int, required=False),
            OpenApiParameter("after", OpenApiTypes.DATETIME, required=False),
            OpenApiParameter("before", OpenApiTypes.DATETIME, required=False),
        ],
        responses={200: SummarySerializer},
    )
    def get(self, request: AuthenticatedRequest) -> Response:
        rows = ConsumptionFilter(
            request.query_params, queryset=selectors.consumption_list(user=request.user)
        )
        if not rows.is_valid():
            raise serializers.ValidationError(rows.errors)
        summary = selectors.consumption_summary(rows=rows.qs)
        return Response(SummarySerializer(summary.as_dict()).data)


class JobEnergySerializer(serializers.Serializer[Any]):
    kwh = serializers.FloatField()
    co2e_kg = serializers.FloatField()
    is_estimate = serializers.BooleanField()
    recorded_parts = serializers.IntegerField()
    total_parts = serializers.IntegerField()
    cost = serializers.DecimalField(max_digits=14, decimal_places=4, allow_null=True)
    currency = serializers.CharField(allow_blank=True)
    renewable_share = serializers.FloatField()


class JobEnergyApi(APIView):
    """A job's energy and carbon: measured where recorded, else its estimate at the grid's
    emission factor (`is_estimate`)."""

    @extend_schema(responses={200: JobEnergySerializer})
    def get(self, request: AuthenticatedRequest, pk: int) -> Response:
        job = job_get_for_user(user=request.user, pk=pk)
        return Response(JobEnergySerializer(selectors.job_energy(job=job)).data)
