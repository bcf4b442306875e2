"""The energy API (/api/v1/energy/...): sources, emission factors, site caps, hourly rates
(batch and CSV import), consumption (and its summary), a job's energy, a site's outlook (what
the scheduler sees) and a node's opportunities. Management is scoped by ENERGY_MANAGE through
apps.energy.selectors; consumption also by JOB_VIEW for the people whose jobs it is."""

from __future__ import annotations

from typing import Any

import django_filters
from django.db.models import QuerySet
from django.utils import timezone
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.generics import ListAPIView
from rest_framework.parsers import FormParser, JSONParser, MultiPartParser
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.core.filters import UtcIsoDateTimeFilter
from apps.energy import selectors
from apps.energy.models import (
    Consumption,
    EmissionFactor,
    EnergySource,
    HourlyRate,
    SourceKind,
    default_currency,
)
from apps.energy.opportunities import node_opportunities
from apps.energy.outlook import site_outlook
from apps.energy.services import (
    emission_factor_update,
    rates_import_csv,
    rates_store,
    site_cap_save,
    source_create,
    source_delete,
    source_update,
)
from apps.jobs.selectors import job_get_for_user
from apps.users.models import Organization
from apps.users.permissions import action_required
from apps.users.roles import Action
from apps.users.types import AuthenticatedRequest

MANAGE = action_required(Action.ENERGY_MANAGE)
MAX_UPLOAD_BYTES = 5 * 1024 * 1024


def _swagger(view: Any) -> bool:
    return bool(getattr(view, "swagger_fake_view", False))


# --- Sources -----------------------------------------------------------------------------------


class SourceSerializer(serializers.ModelSerializer):
    class Meta:
        model = EnergySource
        fields = [
            "id",
            "site",
            "node",
            "name",
            "kind",
            "capacity_kw",
            "efficiency",
            "status",
            "capacity_kwh",
            "soc_pct",
            "reserve_pct",
            "created_at",
            "updated_at",
        ]


class SourceFieldsSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=120, required=False, allow_blank=True)
    kind = serializers.ChoiceField(choices=SourceKind.choices, required=False)
    capacity_kw = serializers.FloatField(min_value=0, max_value=100000, required=False)
    efficiency = serializers.FloatField(min_value=0, max_value=1, required=False)
    status = serializers.ChoiceField(choices=EnergySource.Status.choices, required=False)
    capacity_kwh = serializers.FloatField(min_value=0, required=False, allow_null=True)
    soc_pct = serializers.FloatField(min_value=0, max_value=100, required=False, allow_null=True)
    reserve_pct = serializers.FloatField(min_value=0, max_value=100, required=False)


class SourceCreateSerializer(SourceFieldsSerializer):
    site = serializers.IntegerField(required=False, allow_null=True, default=None)
    node = serializers.IntegerField(required=False, allow_null=True, default=None)
    kind = serializers.ChoiceField(choices=SourceKind.choices)
    capacity_kw = serializers.FloatField(min_value=0, max_value=100000)


class SourceListApi(ListAPIView):
    """Energy sources of the nodes and sites you manage (filters: node, site, kind, status).
    POST adds one to a site or to a node (exactly one of them)."""

    serializer_class = SourceSerializer
    permission_classes = [MANAGE]
    filterset_fields = ["node", "site", "kind", "status"]

    def get_queryset(self) -> QuerySet[EnergySource]:
        if _swagger(self):
            return EnergySource.objects.none()
        return selectors.source_list(user=self.request.user)  # type: ignore[arg-type]

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


# --- Emission factors --------------------------------------------------------------------------


class FactorSerializer(serializers.ModelSerializer):
    class Meta:
        model = EmissionFactor
        fields = ["kind", "kg_co2e_per_kwh", "note", "updated_at"]


class FactorListApi(ListAPIView):
    """The emission factor of every source kind, kg CO2e per kWh (everyone may read them)."""

    serializer_class = FactorSerializer
    pagination_class = None

    def get_queryset(self) -> QuerySet[EmissionFactor]:
        return selectors.emission_factor_list()


class FactorDetailApi(APIView):
    """Set a kind's factor (administrators)."""

    class InputSerializer(serializers.Serializer):
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


# --- Sites: caps and outlook -------------------------------------------------------------------


class CapSerializer(serializers.Serializer):
    site = serializers.IntegerField(read_only=True)
    max_kw = serializers.FloatField(min_value=0.001, allow_null=True)
    renewable_price_per_kwh = serializers.DecimalField(
        max_digits=10, decimal_places=5, min_value=0, allow_null=True, required=False
    )
    currency = serializers.CharField(min_length=3, max_length=3, required=False)


def _cap_data(site: Organization) -> dict[str, Any]:
    cap = selectors.cap_of(site)
    return {
        "site": site.pk,
        "max_kw": cap.max_kw if cap else None,
        "renewable_price_per_kwh": cap.renewable_price_per_kwh if cap else None,
        # No cap yet: the currency a cap would be priced in ("" broke the 3-letter contract).
        "currency": cap.currency if cap else default_currency(),
    }


class SiteSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()
    slug = serializers.CharField()
    kind = serializers.CharField()
    can_manage = serializers.BooleanField()
    cap = CapSerializer(allow_null=True)


class SiteListApi(APIView):
    """The sites whose energy you manage or whose nodes you manage, with their power caps."""

    permission_classes = [MANAGE]

    @extend_schema(responses={200: SiteSerializer(many=True)})
    def get(self, request: AuthenticatedRequest) -> Response:
        managed = set(selectors.energy_sites(user=request.user).values_list("pk", flat=True))
        sites = selectors.energy_sites_visible(user=request.user).select_related("power_cap")
        rows = [
            {
                "id": s.pk,
                "name": s.name,
                "slug": s.slug,
                "kind": s.kind,
                "can_manage": s.pk in managed,
                "cap": _cap_data(s),
            }
            for s in sites
        ]
        return Response(SiteSerializer(rows, many=True).data)


class SiteCapApi(APIView):
    """A site's power cap (null: none) and the price of its own generation per kWh."""

    permission_classes = [MANAGE]

    @extend_schema(responses={200: CapSerializer})
    def get(self, request: AuthenticatedRequest, pk: int) -> Response:
        site = selectors.energy_site_visible_get(user=request.user, pk=pk)
        return Response(CapSerializer(_cap_data(site)).data)

    @extend_schema(request=CapSerializer, responses={200: CapSerializer})
    def put(self, request: AuthenticatedRequest, pk: int) -> Response:
        site = selectors.energy_site_get(user=request.user, pk=pk)
        data = CapSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        site_cap_save(by=request.user, site=site, **data.validated_data)
        return Response(CapSerializer(_cap_data(site)).data)


class OutlookHourSerializer(serializers.Serializer):
    start = serializers.DateTimeField()
    clock_hour = serializers.DateTimeField()
    grid_price = serializers.FloatField()
    price_from = serializers.CharField(help_text="stored, forecast (from history) or default")
    renewable_kw = serializers.FloatField()
    renewable_from = serializers.CharField(help_text="rate, sources or none")
    renewable_share = serializers.FloatField()
    price = serializers.FloatField(help_text="money per kWh of the site's mix")
    carbon = serializers.FloatField(help_text="kg CO2e per kWh of the site's mix")


class OutlookSerializer(serializers.Serializer):
    site_id = serializers.IntegerField()
    cap_kw = serializers.FloatField(allow_null=True)
    reference_kw = serializers.FloatField()
    renewable_price = serializers.FloatField()
    currency = serializers.CharField()
    hours = OutlookHourSerializer(many=True)


def _hours_param(request: AuthenticatedRequest, default: int = 48, most: int = 336) -> int:
    try:
        hours = int(request.query_params.get("hours", default))
    except ValueError:
        raise serializers.ValidationError({"hours": ["A whole number of hours."]}) from None
    if not 1 <= hours <= most:
        raise serializers.ValidationError({"hours": [f"From 1 to {most}."]})
    return hours


class SiteOutlookApi(APIView):
    """The site's next `hours` (default 48) as the scheduler sees them: grid price (stored,
    forecast from history or the default), renewable share, the mix's price and carbon, and the
    power cap. Hour 0 starts now."""

    permission_classes = [MANAGE]

    @extend_schema(
        parameters=[OpenApiParameter("hours", int, required=False)],
        responses={200: OutlookSerializer},
    )
    def get(self, request: AuthenticatedRequest, pk: int) -> Response:
        site = selectors.energy_site_visible_get(user=request.user, pk=pk)
        hours = _hours_param(request)
        outlook = site_outlook(site_id=site.pk, now=timezone.now(), hours=hours)
        return Response(OutlookSerializer(outlook).data)


# --- Rates -------------------------------------------------------------------------------------


class RateSerializer(serializers.ModelSerializer):
    class Meta:
        model = HourlyRate
        fields = [
            "id",
            "site",
            "hour",
            "price_per_kwh",
            "currency",
            "renewable_kw",
            "source",
            "updated_at",
        ]


class RateFilter(django_filters.FilterSet):
    site = django_filters.NumberFilter(field_name="site_id")
    source = django_filters.ChoiceFilter(choices=HourlyRate.Source.choices)
    after = UtcIsoDateTimeFilter(field_name="hour", lookup_expr="gte")
    before = UtcIsoDateTimeFilter(field_name="hour", lookup_expr="lt")

    class Meta:
        model = HourlyRate
        fields = ["site", "source", "after", "before"]


class RateItemSerializer(serializers.Serializer):
    site = serializers.CharField(help_text="site id or slug")
    hour = serializers.CharField(help_text="ISO 8601 with a time zone, on the hour")
    price = serializers.CharField(help_text="money per kWh")
    renewable_kw = serializers.FloatField(required=False, allow_null=True)
    currency = serializers.CharField(required=False)


class RateBatchSerializer(serializers.Serializer):
    items = serializers.ListField(child=serializers.DictField(), allow_empty=False)
    source = serializers.ChoiceField(  # type: ignore[assignment]
        choices=[HourlyRate.Source.ENTERED, HourlyRate.Source.FORECAST],
        required=False,
        default=HourlyRate.Source.ENTERED,
    )


RATE_REPORT = inline_serializer(
    "RateBatchReport",
    fields={
        "stored": serializers.IntegerField(),
        "errors": serializers.ListField(child=serializers.DictField()),
    },
)


class RateListApi(ListAPIView):
    """Hourly prices of the sites you see (filters: site, source, after, before). POST stores a
    batch: {"items": [{site, hour, price, renewable_kw?, currency?}, ...], "source": "entered"
    | "forecast"}; the good items are stored (replacing the same hour) and the bad ones are
    reported by index."""

    serializer_class = RateSerializer
    permission_classes = [MANAGE]
    filterset_class = RateFilter

    def get_queryset(self) -> QuerySet[HourlyRate]:
        if _swagger(self):
            return HourlyRate.objects.none()
        return selectors.rate_list(user=self.request.user)  # type: ignore[arg-type]

    @extend_schema(request=RateBatchSerializer, responses={200: RATE_REPORT})
    def post(self, request: AuthenticatedRequest) -> Response:
        data = RateBatchSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        report = rates_store(
            by=request.user,
            items=data.validated_data["items"],
            source=data.validated_data["source"],
        )
        return Response(report.as_dict())


class RateImportApi(APIView):
    """Import a CSV of rates (columns site, hour, price, optional renewable_kw and currency) as
    a multipart `file`; bad rows are reported by line, the good ones stored."""

    permission_classes = [MANAGE]
    parser_classes = [MultiPartParser, FormParser, JSONParser]

    class InputSerializer(serializers.Serializer):
        file = serializers.FileField()

    @extend_schema(request=InputSerializer, responses={200: RATE_REPORT})
    def post(self, request: AuthenticatedRequest) -> Response:
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        upload = data.validated_data["file"]
        if upload.size > MAX_UPLOAD_BYTES:
            raise serializers.ValidationError({"file": ["At most 5 MB."]})
        try:
            text = upload.read().decode("utf-8-sig")
        except UnicodeDecodeError:
            raise serializers.ValidationError({"file": ["A UTF-8 CSV file."]}) from None
        report = rates_import_csv(by=request.user, text=text)
        return Response(report.as_dict())


# --- Consumption -------------------------------------------------------------------------------


class ConsumptionSerializer(serializers.ModelSerializer):
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


class ConsumptionListApi(ListAPIView):
    """Energy per finished part: on the nodes you manage, and of the jobs you see as a member
    of their organization (filters: job, node, site, source_kind, method, after, before on
    finished_at)."""

    serializer_class = ConsumptionSerializer
    filterset_class = ConsumptionFilter
    ordering_fields = ["finished_at", "kwh", "co2e_kg", "cost"]

    def get_queryset(self) -> QuerySet[Consumption]:
        if _swagger(self):
            return Consumption.objects.none()
        return selectors.consumption_list(user=self.request.user)  # type: ignore[arg-type]


class SummarySerializer(serializers.Serializer):
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


class JobEnergySerializer(serializers.Serializer):
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


# --- Opportunities -----------------------------------------------------------------------------


class OpportunitySerializer(serializers.Serializer):
    kind = serializers.CharField()
    title = serializers.CharField()
    applies = serializers.BooleanField()
    summary = serializers.CharField()
    yearly_kwh = serializers.FloatField()
    yearly_savings = serializers.DecimalField(max_digits=14, decimal_places=4)
    currency = serializers.CharField()
    figures = serializers.DictField()


class NodeOpportunitiesApi(APIView):
    """A node's energy-saving opportunities from its last `days` (default 30) of telemetry:
    oversizing, thermal stress (over `threshold_c`, default the kind's warning temperature) and
    peak shifting, each with its yearly savings and the figures behind it."""

    permission_classes = [MANAGE]

    @extend_schema(
        parameters=[
            OpenApiParameter("days", int, required=False),
            OpenApiParameter("threshold_c", float, required=False),
        ],
        responses={200: OpportunitySerializer(many=True)},
    )
    def get(self, request: AuthenticatedRequest, pk: int) -> Response:
        node = selectors.energy_node_get(user=request.user, pk=pk)
        try:
            days = int(request.query_params.get("days", 30))
            raw = request.query_params.get("threshold_c")
            threshold = float(raw) if raw not in (None, "") else None
        except ValueError:
            raise serializers.ValidationError({"days": ["Numbers, please."]}) from None
        if not 1 <= days <= 365:
            raise serializers.ValidationError({"days": ["From 1 to 365."]})
        found = node_opportunities(node=node, days=days, threshold_c=threshold)
        return Response(OpportunitySerializer(found, many=True).data)
