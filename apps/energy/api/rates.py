"""Hourly rates of the sites: list, batch store and CSV import."""

from __future__ import annotations

from typing import Any

import django_filters
from django.db.models import QuerySet
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.generics import ListAPIView
from rest_framework.parsers import FormParser, JSONParser, MultiPartParser
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.core.filters import UtcIsoDateTimeFilter
from apps.energy import selectors
from apps.energy.api import MANAGE
from apps.energy.models import HourlyRate
from apps.energy.services import rates_import_csv, rates_store
from apps.users.types import AuthenticatedRequest

MAX_UPLOAD_BYTES = 5 * 1024 * 1024


class RateSerializer(serializers.ModelSerializer[HourlyRate]):
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


class RateItemSerializer(serializers.Serializer[Any]):
    site = serializers.CharField(help_text="site id or slug")
    hour = serializers.CharField(help_text="ISO 8601 with a time zone, on the hour")
    price = serializers.CharField(help_text="money per kWh")
    renewable_kw = serializers.FloatField(required=False, allow_null=True)
    currency = serializers.CharField(required=False)


class RateBatchSerializer(serializers.Serializer[Any]):
    items = serializers.ListField(child=serializers.DictField(), allow_empty=False)
    # named like Field.source: DRF's metaclass takes it off the class, the stubs cannot know
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


class RateListApi(ListAPIView[HourlyRate]):
    """Hourly prices of the sites you see (filters: site, source, after, before). POST stores a
    batch: {"items": [{site, hour, price, renewable_kw?, currency?}, ...], "source": "entered"
    | "forecast"}; the good items are stored (replacing the same hour) and the bad ones are
    reported by index."""

    request: AuthenticatedRequest

    serializer_class = RateSerializer
    permission_classes = [MANAGE]
    filterset_class = RateFilter

    def get_queryset(self) -> QuerySet[HourlyRate]:
        if getattr(self, "swagger_fake_view", False):
            return HourlyRate.objects.none()
        return selectors.rate_list(user=self.request.user)

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

    class InputSerializer(serializers.Serializer[Any]):
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
