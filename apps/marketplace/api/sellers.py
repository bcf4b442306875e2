"""A seller's public figures under /api/v1/market/sellers/."""

from __future__ import annotations

from typing import Any

from django.urls import path
from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.marketplace.selectors.listings import seller_published_count, seller_sla, seller_visible
from apps.users.types import AuthenticatedRequest


class SellerSlaSerializer(serializers.Serializer[Any]):
    on_time_rate = serializers.FloatField(allow_null=True)
    defect_rate = serializers.FloatField(allow_null=True)
    parts_done = serializers.IntegerField()
    parts_failed = serializers.IntegerField()
    parts_with_deadline = serializers.IntegerField()
    avg_rating = serializers.FloatField(allow_null=True)
    rating_count = serializers.IntegerField()
    days = serializers.IntegerField()


class SellerDetailApi(APIView):
    """A seller's public figures: on-time and defect rates of the parts its machines finished
    in the last year, its rating over all its listings, and how many listings it has on sale."""

    class OutputSerializer(serializers.Serializer[Any]):
        id = serializers.IntegerField()
        name = serializers.CharField()
        kind = serializers.CharField()
        published_listings = serializers.IntegerField()
        sla = SellerSlaSerializer()

    @extend_schema(responses={200: OutputSerializer})
    def get(self, request: AuthenticatedRequest, pk: int) -> Response:
        org = seller_visible(user=request.user, pk=pk)
        data = {
            "id": org.pk,
            "name": org.name,
            "kind": org.kind,
            "published_listings": seller_published_count(organization=org),
            "sla": seller_sla(organization=org),
        }
        return Response(self.OutputSerializer(data).data)


urlpatterns = [
    path("market/sellers/<int:pk>/", SellerDetailApi.as_view(), name="market-seller-detail"),
]
