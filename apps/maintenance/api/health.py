"""Node health: the fleet's health scores with open tickets by severity, and a node's
predictions over time."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.generics import ListAPIView
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.maintenance import selectors
from apps.maintenance.models import NodeHealth, Prediction
from apps.users.types import AuthenticatedRequest
from apps.vendors.models import FabricationNode

# What a scoring forecasts, with its bounds and evidence: a node's health keeps the latest, each
# prediction row one scoring's.
FORECAST_FIELDS = [
    "failure_probability",
    "failure_low",
    "failure_high",
    "failure_evidence",
    "rul_hours",
    "rul_unit",
    "rul_value",
    "rul_low",
    "rul_high",
    "rul_evidence",
    "vibration_hours_to_limit",
]


class HealthSerializer(serializers.ModelSerializer[NodeHealth]):
    class Meta:
        model = NodeHealth
        fields = [
            "score",
            "components",
            "online",
            "last_seen",
            "went_offline_at",
            "anomaly_score",
            "anomaly_threshold",
            "anomaly_since",
            *FORECAST_FIELDS,
            "planned_horizon_h",
            "computed_at",
        ]


class FleetNodeSerializer(serializers.ModelSerializer[FabricationNode]):
    site = serializers.CharField(source="site.name", default=None, read_only=True, allow_null=True)
    health = serializers.SerializerMethodField()
    open_tickets = serializers.SerializerMethodField()

    class Meta:
        model = FabricationNode
        fields = ["id", "name", "kind", "status", "site", "health", "open_tickets"]

    def get_health(self, node: FabricationNode) -> dict[str, Any] | None:
        health = selectors.health_of(node)
        return HealthSerializer(health).data if health else None

    def get_open_tickets(self, node: Any) -> dict[str, int]:
        return {
            "critical": node.tickets_critical,
            "warning": node.tickets_warning,
            "info": node.tickets_info,
        }


class FleetHealthApi(ListAPIView[FabricationNode]):
    """Every node you maintain with its health score, online state, latest predictions and
    open tickets by severity (filter: site)."""

    request: AuthenticatedRequest

    serializer_class = FleetNodeSerializer
    filterset_fields = ["site"]

    def get_queryset(self) -> Any:
        if getattr(self, "swagger_fake_view", False):
            return FabricationNode.objects.none()
        return selectors.fleet_health(user=self.request.user)


class PredictionSerializer(serializers.ModelSerializer[Prediction]):
    class Meta:
        model = Prediction
        fields = [
            "at",
            "anomaly_score",
            "anomaly_threshold",
            *FORECAST_FIELDS,
            "models_used",
        ]


class NodePredictionsApi(APIView):
    """A node's scorings over the last `hours` (default 24, at most 720), oldest first."""

    @extend_schema(responses={200: PredictionSerializer(many=True)})
    def get(self, request: AuthenticatedRequest, pk: int) -> Response:
        node = selectors.maintained_node_get(user=request.user, pk=pk)
        try:
            hours = float(request.query_params.get("hours", "24"))
        except ValueError:
            raise serializers.ValidationError({"hours": ["A number of hours."]}) from None
        if not 0 < hours <= 720:
            raise serializers.ValidationError({"hours": ["Between 0 and 720."]})
        rows = selectors.prediction_list(user=request.user, node_id=node.pk, hours=hours)
        return Response(PredictionSerializer(rows, many=True).data)
