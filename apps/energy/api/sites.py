"""Sites: their power caps and their outlook (what the scheduler sees of the next hours)."""

from __future__ import annotations

from typing import Any

from django.utils import timezone
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.core.model_fields import model_serializer_field
from apps.energy import selectors
from apps.energy.api import MANAGE
from apps.energy.models import SitePowerCap, default_currency
from apps.energy.outlook import site_outlook
from apps.energy.services import site_cap_save
from apps.users.models import Organization
from apps.users.types import AuthenticatedRequest


class CapSerializer(serializers.Serializer):
    site = serializers.IntegerField(read_only=True)
    max_kw = model_serializer_field(SitePowerCap, "max_kw", required=True)
    renewable_price_per_kwh = model_serializer_field(SitePowerCap, "renewable_price_per_kwh")
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
