"""The portal's API: platform KPIs (KPI_VIEW) and an organization's sustainability report
(JSON, or CSV with `?format=csv`). Periods: `start` / `end` (dates or ISO date-times; an end
date counts whole) or `days` (7, 30, 90); the last 30 days by default."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from django.http import HttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers
from rest_framework.renderers import BaseRenderer, JSONRenderer
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.portal.kpis import platform_kpis
from apps.portal.reports import (
    Period,
    period_parse,
    report_filename,
    report_organization_get,
    sustainability_report,
    sustainability_report_csv,
)
from apps.users.types import AuthenticatedRequest

PERIOD_PARAMETERS = [
    OpenApiParameter(
        "start", str, required=False, description="YYYY-MM-DD or an ISO 8601 date-time."
    ),
    OpenApiParameter(
        "end",
        str,
        required=False,
        description="YYYY-MM-DD (the whole day counts) or an ISO 8601 date-time (excluded).",
    ),
    OpenApiParameter(
        "days", int, required=False, enum=[7, 30, 90], description="The last N days (no start)."
    ),
]


def _period(request: AuthenticatedRequest) -> Period:
    params = request.query_params
    return period_parse(days=params.get("days"), start=params.get("start"), end=params.get("end"))


class CsvRenderer(BaseRenderer):
    media_type = "text/csv"
    format = "csv"
    charset = "utf-8"

    def render(
        self,
        data: Any,
        accepted_media_type: str | None = None,
        renderer_context: Mapping[str, Any] | None = None,
    ) -> bytes:
        text = data if isinstance(data, str) else json.dumps(data)
        return text.encode(self.charset)


# --- KPIs --------------------------------------------------------------------------------------


class KpiDaySerializer(serializers.Serializer[Any]):
    day = serializers.DateField()
    jobs_completed = serializers.IntegerField()
    machine_hours = serializers.FloatField()
    utilisation = serializers.FloatField(allow_null=True)
    kwh = serializers.FloatField(help_text="Recorded for the parts that finished that day.")
    metered_kwh = serializers.FloatField(
        help_text="What the nodes drew that day, idle or running (their power telemetry)."
    )


class KpisApi(APIView):
    """Platform KPIs over the period, for the caller's scope (admins and engineers: the whole
    platform; operators: the nodes at their sites and the jobs with parts on them). Rates are
    0-1 shares; null when there is nothing to divide by."""

    class OutputSerializer(serializers.Serializer[Any]):
        start = serializers.DateTimeField()
        end = serializers.DateTimeField()
        scope = serializers.CharField()
        jobs_completed = serializers.IntegerField()
        jobs_per_day = serializers.FloatField()
        avg_completion_hours = serializers.FloatField(allow_null=True)
        parts_finished = serializers.IntegerField()
        parts_first_time = serializers.IntegerField()
        first_time_success_rate = serializers.FloatField(allow_null=True)
        nodes_in_service = serializers.IntegerField()
        machine_hours = serializers.FloatField()
        available_hours = serializers.FloatField()
        utilisation = serializers.FloatField(allow_null=True)
        kwh = serializers.FloatField(help_text="Recorded for the parts that finished.")
        metered_kwh = serializers.FloatField(
            help_text="What the nodes drew, idle or running (their power telemetry): the energy "
            "dashboard's figure for the same nodes and period."
        )
        energy_parts = serializers.IntegerField()
        energy_per_part_kwh = serializers.FloatField(allow_null=True)
        node_hours = serializers.FloatField()
        up_hours = serializers.FloatField()
        uptime = serializers.FloatField(allow_null=True)
        days = KpiDaySerializer(many=True)

    @extend_schema(parameters=PERIOD_PARAMETERS, responses={200: OutputSerializer})
    def get(self, request: AuthenticatedRequest) -> Response:
        period = _period(request)
        kpis = platform_kpis(user=request.user, start=period.start, end=period.end)
        return Response(self.OutputSerializer(kpis.as_dict()).data)


# --- Sustainability report ---------------------------------------------------------------------


class ReportJobSerializer(serializers.Serializer[Any]):
    job_id = serializers.IntegerField(allow_null=True)
    title = serializers.CharField()
    parts = serializers.IntegerField()
    kwh = serializers.FloatField()
    co2e_kg = serializers.FloatField()
    material_used_g = serializers.FloatField()
    waste_g = serializers.FloatField()


class ReportOrganizationSerializer(serializers.Serializer[Any]):
    id = serializers.IntegerField()
    name = serializers.CharField()


class SustainabilityReportApi(APIView):
    """An organization's energy, carbon and material over the period (everything it is party
    to: its jobs, its nodes, the nodes at its site), with a per-job breakdown. `format=csv`
    (or Accept: text/csv) returns the CSV export. Organizations: the caller's own (admins:
    any); others are 404."""

    renderer_classes = [JSONRenderer, CsvRenderer]

    class InputSerializer(serializers.Serializer[Any]):
        organization = serializers.IntegerField(min_value=1)

    class OutputSerializer(serializers.Serializer[Any]):
        organization = ReportOrganizationSerializer()
        start = serializers.DateTimeField()
        end = serializers.DateTimeField()
        kwh = serializers.FloatField()
        renewable_kwh = serializers.FloatField()
        renewable_share = serializers.FloatField()
        co2e_kg = serializers.FloatField()
        cost = serializers.DecimalField(max_digits=14, decimal_places=4)
        currency = serializers.CharField()
        parts = serializers.IntegerField()
        parts_completed = serializers.IntegerField()
        kwh_per_part = serializers.FloatField(allow_null=True)
        co2e_kg_per_part = serializers.FloatField(allow_null=True)
        material_used_g = serializers.FloatField()
        waste_g = serializers.FloatField()
        waste_share = serializers.FloatField()
        jobs = ReportJobSerializer(many=True)

    def handle_exception(self, exc: Exception) -> Response:
        # errors are JSON in the one error format, whatever the format asked for
        self.request.accepted_renderer = JSONRenderer()
        self.request.accepted_media_type = JSONRenderer.media_type
        return super().handle_exception(exc)

    @extend_schema(
        parameters=[
            OpenApiParameter("organization", int, required=True),
            *PERIOD_PARAMETERS,
            OpenApiParameter("format", str, required=False, enum=["json", "csv"]),
        ],
        responses={
            (200, "application/json"): OutputSerializer,
            (200, "text/csv"): OpenApiTypes.STR,
        },
    )
    def get(self, request: AuthenticatedRequest) -> Response | HttpResponse:
        data = self.InputSerializer(data=request.query_params)
        data.is_valid(raise_exception=True)
        organization = report_organization_get(
            user=request.user, pk=data.validated_data["organization"]
        )
        period = _period(request)
        report = sustainability_report(
            organization=organization, start=period.start, end=period.end
        )
        if request.accepted_renderer.format == CsvRenderer.format:
            response = HttpResponse(
                sustainability_report_csv(report), content_type="text/csv; charset=utf-8"
            )
            response["Content-Disposition"] = f'attachment; filename="{report_filename(report)}"'
            return response
        return Response(self.OutputSerializer(report.as_dict()).data)
