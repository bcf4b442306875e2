"""A node's energy-saving opportunities."""

from __future__ import annotations

from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.energy import selectors
from apps.energy.api import MANAGE
from apps.energy.opportunities import node_opportunities
from apps.users.types import AuthenticatedRequest


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
