"""The maintenance agent's API: tickets (queue, detail, lifecycle, assignment, notes), alerts,
threshold rules, maintenance windows, node health and predictions, and the model registry.
Everything is scoped by the TICKET_MANAGE matrix through apps.maintenance.selectors."""

from __future__ import annotations

from typing import Any

import django_filters
from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet
from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.generics import ListAPIView
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.core.filters import ChoiceIn
from apps.core.ml import model_rollback
from apps.core.models import TrainedModel
from apps.maintenance import selectors
from apps.maintenance.models import (
    Alert,
    MaintenanceWindow,
    NodeHealth,
    Prediction,
    Severity,
    ThresholdRule,
    Ticket,
    TicketEvent,
)
from apps.maintenance.services import (
    rule_delete,
    rule_save,
    ticket_assign,
    ticket_create,
    ticket_note_add,
    ticket_transition,
    window_cancel,
    window_complete,
    window_schedule,
)
from apps.users.models import User
from apps.users.roles import Action, Scope, scope_for
from apps.users.types import AuthenticatedRequest
from apps.vendors.models import FabricationNode

# --- Tickets -----------------------------------------------------------------------------------


class TicketSerializer(serializers.ModelSerializer):
    node_name = serializers.CharField(source="node.name", read_only=True)
    site = serializers.CharField(
        source="node.site.name", default=None, read_only=True, allow_null=True
    )
    assignee = serializers.CharField(
        source="assignee.email", default=None, read_only=True, allow_null=True
    )

    class Meta:
        model = Ticket
        fields = [
            "id",
            "node",
            "node_name",
            "site",
            "issue_type",
            "severity",
            "status",
            "priority",
            "title",
            "occurrences",
            "opened_by_agent",
            "assignee",
            "created_at",
            "last_seen",
            "acknowledged_at",
            "resolved_at",
            "closed_at",
        ]


class TicketEventSerializer(serializers.ModelSerializer):
    author = serializers.CharField(
        source="author.email", default=None, read_only=True, allow_null=True
    )

    class Meta:
        model = TicketEvent
        fields = ["id", "kind", "author", "text", "from_status", "to_status", "at"]


class TicketDetailSerializer(TicketSerializer):
    events = serializers.SerializerMethodField()

    class Meta(TicketSerializer.Meta):
        fields = [
            *TicketSerializer.Meta.fields,
            "evidence",
            "suggested_action",
            "resolution",
            "was_failure",
            "events",
        ]

    def get_events(self, ticket: Ticket) -> list[dict[str, Any]]:
        return TicketEventSerializer(selectors.ticket_events(ticket=ticket), many=True).data  # type: ignore[return-value]


class TicketFilter(django_filters.FilterSet):
    status = ChoiceIn(choices=Ticket.Status.choices)
    severity = ChoiceIn(choices=Severity.choices)
    issue_type = ChoiceIn(choices=Ticket.IssueType.choices)
    node = django_filters.NumberFilter(field_name="node_id")
    site = django_filters.NumberFilter(field_name="node__site_id")
    assignee = django_filters.NumberFilter(field_name="assignee_id")
    active = django_filters.BooleanFilter(method="filter_active")

    class Meta:
        model = Ticket
        fields = ["status", "severity", "issue_type", "node", "site", "assignee", "active"]

    def filter_active(self, qs: QuerySet[Ticket], name: str, value: bool | None) -> Any:
        from apps.maintenance.models import UNRESOLVED

        if value is None:
            return qs
        return qs.filter(status__in=UNRESOLVED) if value else qs.exclude(status__in=UNRESOLVED)


class TicketListApi(ListAPIView):
    """The ticket queue, most urgent first (filters: status, severity, issue_type as comma
    lists; node, site, assignee; active=true|false; ordering: priority, created_at,
    last_seen). POST opens a ticket by hand (never deduplicated)."""

    serializer_class = TicketSerializer
    filterset_class = TicketFilter
    ordering_fields = ["priority", "created_at", "last_seen", "severity"]

    class InputSerializer(serializers.Serializer):
        node = serializers.IntegerField()
        issue_type = serializers.ChoiceField(choices=Ticket.IssueType.choices)
        severity = serializers.ChoiceField(choices=Severity.choices)
        title = serializers.CharField(max_length=200)
        description = serializers.CharField(required=False, allow_blank=True, default="")

    def get_queryset(self) -> QuerySet[Ticket]:
        if getattr(self, "swagger_fake_view", False):
            return Ticket.objects.none()
        return selectors.ticket_list(user=self.request.user)  # type: ignore[arg-type]

    @extend_schema(request=InputSerializer, responses={201: TicketDetailSerializer})
    def post(self, request: AuthenticatedRequest) -> Response:
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        values = dict(data.validated_data)
        node = selectors.maintained_node_get(user=request.user, pk=values.pop("node"))
        ticket = ticket_create(by=request.user, node=node, **values)
        return Response(TicketDetailSerializer(ticket).data, status=status.HTTP_201_CREATED)


class TicketDetailApi(APIView):
    @extend_schema(responses={200: TicketDetailSerializer})
    def get(self, request: AuthenticatedRequest, pk: int) -> Response:
        ticket = selectors.ticket_get_for_user(user=request.user, pk=pk)
        return Response(TicketDetailSerializer(ticket).data)


class TicketTransitionApi(APIView):
    """Move a ticket: acknowledged, in_progress, resolved (a note saying what was done is
    required; was_failure says whether the machine really failed), closed; a resolved ticket
    may go back to in_progress."""

    class InputSerializer(serializers.Serializer):
        to = serializers.ChoiceField(choices=Ticket.Status.choices)
        note = serializers.CharField(required=False, allow_blank=True, default="")
        was_failure = serializers.BooleanField(required=False, allow_null=True, default=None)

    @extend_schema(request=InputSerializer, responses={200: TicketDetailSerializer})
    def post(self, request: AuthenticatedRequest, pk: int) -> Response:
        ticket = selectors.ticket_get_for_user(user=request.user, pk=pk)
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        ticket = ticket_transition(by=request.user, ticket=ticket, **data.validated_data)
        return Response(TicketDetailSerializer(ticket).data)


class TicketAssignApi(APIView):
    """Assign to a user id (an operator of the node's site or the vendor's staff), or null."""

    class InputSerializer(serializers.Serializer):
        assignee = serializers.IntegerField(allow_null=True)

    @extend_schema(request=InputSerializer, responses={200: TicketDetailSerializer})
    def post(self, request: AuthenticatedRequest, pk: int) -> Response:
        ticket = selectors.ticket_get_for_user(user=request.user, pk=pk)
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        assignee_id = data.validated_data["assignee"]
        assignee = None
        if assignee_id is not None:
            assignee = User.objects.filter(pk=assignee_id).first()
            if assignee is None:
                raise serializers.ValidationError({"assignee": ["No such user."]})
        ticket = ticket_assign(by=request.user, ticket=ticket, assignee=assignee)
        return Response(TicketDetailSerializer(ticket).data)


class TicketNoteApi(APIView):
    class InputSerializer(serializers.Serializer):
        text = serializers.CharField(max_length=5000)

    @extend_schema(request=InputSerializer, responses={201: TicketEventSerializer})
    def post(self, request: AuthenticatedRequest, pk: int) -> Response:
        ticket = selectors.ticket_get_for_user(user=request.user, pk=pk)
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        event = ticket_note_add(by=request.user, ticket=ticket, text=data.validated_data["text"])
        return Response(TicketEventSerializer(event).data, status=status.HTTP_201_CREATED)


# --- Alerts and rules --------------------------------------------------------------------------


class AlertSerializer(serializers.ModelSerializer):
    node_name = serializers.CharField(source="node.name", read_only=True)

    class Meta:
        model = Alert
        fields = [
            "id",
            "node",
            "node_name",
            "signal",
            "mode",
            "severity",
            "value",
            "peak",
            "threshold",
            "rule_text",
            "first_seen",
            "last_seen",
            "count",
            "resolved_at",
        ]


class AlertFilter(django_filters.FilterSet):
    node = django_filters.NumberFilter(field_name="node_id")
    severity = ChoiceIn(choices=Severity.choices)
    signal = django_filters.CharFilter()
    open = django_filters.BooleanFilter(field_name="resolved_at", lookup_expr="isnull")

    class Meta:
        model = Alert
        fields = ["node", "severity", "signal", "open"]


class AlertListApi(ListAPIView):
    """Alerts on the nodes you maintain, newest first (filters: node, severity, signal,
    open=true|false)."""

    serializer_class = AlertSerializer
    filterset_class = AlertFilter

    def get_queryset(self) -> QuerySet[Alert]:
        if getattr(self, "swagger_fake_view", False):
            return Alert.objects.none()
        return selectors.alert_list(user=self.request.user)  # type: ignore[arg-type]


class RuleSerializer(serializers.ModelSerializer):
    scope = serializers.CharField(read_only=True)

    class Meta:
        model = ThresholdRule
        fields = [
            "id",
            "signal",
            "scope",
            "node_kind",
            "node",
            "mode",
            "warning",
            "critical",
            "hysteresis_pct",
            "min_duration_s",
            "enabled",
            "updated_at",
        ]


class RuleListApi(ListAPIView):
    """The platform's default rules, the per-kind overrides and the per-node overrides of the
    nodes you maintain. POST saves the rule of a signal in one mode at one scope (defaults and
    kinds: admins; a node: whoever maintains it), replacing the one of that mode there; a
    signal's rules of other modes stay (a level rule and a rise rule on temperature)."""

    serializer_class = RuleSerializer
    pagination_class = None

    class InputSerializer(serializers.Serializer):
        signal = serializers.CharField(max_length=60)
        node_kind = serializers.CharField(required=False, allow_blank=True, default="")
        node = serializers.IntegerField(required=False, allow_null=True, default=None)
        mode = serializers.ChoiceField(
            choices=ThresholdRule.Mode.choices, required=False, default="above"
        )
        warning = serializers.FloatField(required=False, allow_null=True, default=None)
        critical = serializers.FloatField(required=False, allow_null=True, default=None)
        hysteresis_pct = serializers.FloatField(required=False, default=5.0)
        min_duration_s = serializers.FloatField(required=False, default=10.0)
        enabled = serializers.BooleanField(required=False, default=True)

    def get_queryset(self) -> QuerySet[ThresholdRule]:
        if getattr(self, "swagger_fake_view", False):
            return ThresholdRule.objects.none()
        user = self.request.user
        if not selectors.rules_can_view(user=user):  # type: ignore[arg-type]
            raise PermissionDenied("Your role does not maintain nodes.")
        return selectors.rule_list(user=user)  # type: ignore[arg-type]

    @extend_schema(request=InputSerializer, responses={201: RuleSerializer})
    def post(self, request: AuthenticatedRequest) -> Response:
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        values = dict(data.validated_data)
        node_id = values.pop("node")
        node = None
        if node_id is not None:
            node = selectors.maintained_node_get(user=request.user, pk=node_id)
        rule = rule_save(by=request.user, node=node, **values)
        return Response(RuleSerializer(rule).data, status=status.HTTP_201_CREATED)


class RuleDetailApi(APIView):
    @extend_schema(responses={204: None})
    def delete(self, request: AuthenticatedRequest, pk: int) -> Response:
        rule = selectors.rule_get_for_user(user=request.user, pk=pk)
        rule_delete(by=request.user, rule=rule)
        return Response(status=status.HTTP_204_NO_CONTENT)


# --- Windows -----------------------------------------------------------------------------------


class WindowSerializer(serializers.ModelSerializer):
    node_name = serializers.CharField(source="node.name", read_only=True)

    class Meta:
        model = MaintenanceWindow
        fields = [
            "id",
            "node",
            "node_name",
            "kind",
            "status",
            "starts_at",
            "ends_at",
            "reason",
            "ticket",
            "work_done",
            "started_at",
            "completed_at",
        ]


class WindowListApi(ListAPIView):
    """Maintenance windows of the nodes you maintain (filters: node, status, kind). POST plans
    one (kind scheduled, predictive or emergency); one starting now takes the node to
    MAINTENANCE at once and its work moves to other nodes."""

    serializer_class = WindowSerializer
    filterset_fields = ["node", "status", "kind"]

    class InputSerializer(serializers.Serializer):
        node = serializers.IntegerField()
        kind = serializers.ChoiceField(choices=MaintenanceWindow.Kind.choices)
        starts_at = serializers.DateTimeField()
        ends_at = serializers.DateTimeField()
        reason = serializers.CharField(max_length=300)
        ticket = serializers.IntegerField(required=False, allow_null=True, default=None)

    def get_queryset(self) -> QuerySet[MaintenanceWindow]:
        if getattr(self, "swagger_fake_view", False):
            return MaintenanceWindow.objects.none()
        return selectors.window_list(user=self.request.user)  # type: ignore[arg-type]

    @extend_schema(request=InputSerializer, responses={201: WindowSerializer})
    def post(self, request: AuthenticatedRequest) -> Response:
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        values = dict(data.validated_data)
        node = selectors.maintained_node_get(user=request.user, pk=values.pop("node"))
        ticket_id = values.pop("ticket")
        ticket = None
        if ticket_id is not None:
            ticket = selectors.ticket_get_for_user(user=request.user, pk=ticket_id)
        window = window_schedule(by=request.user, node=node, ticket=ticket, **values)
        return Response(WindowSerializer(window).data, status=status.HTTP_201_CREATED)


class WindowCompleteApi(APIView):
    class InputSerializer(serializers.Serializer):
        work_done = serializers.CharField(max_length=5000)

    @extend_schema(request=InputSerializer, responses={200: WindowSerializer})
    def post(self, request: AuthenticatedRequest, pk: int) -> Response:
        window = selectors.window_get_for_user(user=request.user, pk=pk)
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        window = window_complete(by=request.user, window=window, **data.validated_data)
        return Response(WindowSerializer(window).data)


class WindowCancelApi(APIView):
    @extend_schema(request=None, responses={200: WindowSerializer})
    def post(self, request: AuthenticatedRequest, pk: int) -> Response:
        window = selectors.window_get_for_user(user=request.user, pk=pk)
        return Response(WindowSerializer(window_cancel(by=request.user, window=window)).data)


# --- Health, predictions, registry -------------------------------------------------------------


class HealthSerializer(serializers.ModelSerializer):
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
            "planned_horizon_h",
            "computed_at",
        ]


class FleetNodeSerializer(serializers.ModelSerializer):
    site = serializers.CharField(source="site.name", default=None, read_only=True, allow_null=True)
    health = serializers.SerializerMethodField()
    open_tickets = serializers.SerializerMethodField()

    class Meta:
        model = FabricationNode
        fields = ["id", "name", "kind", "status", "site", "health", "open_tickets"]

    def get_health(self, node: FabricationNode) -> dict[str, Any] | None:
        health = selectors.health_of(node)
        return HealthSerializer(health).data if health else None  # type: ignore[return-value]

    def get_open_tickets(self, node: Any) -> dict[str, int]:
        return {
            "critical": node.tickets_critical,
            "warning": node.tickets_warning,
            "info": node.tickets_info,
        }


class FleetHealthApi(ListAPIView):
    """Every node you maintain with its health score, online state, latest predictions and
    open tickets by severity (filter: site)."""

    serializer_class = FleetNodeSerializer
    filterset_fields = ["site"]

    def get_queryset(self) -> Any:
        if getattr(self, "swagger_fake_view", False):
            return FabricationNode.objects.none()
        return selectors.fleet_health(user=self.request.user)  # type: ignore[arg-type]


class PredictionSerializer(serializers.ModelSerializer):
    class Meta:
        model = Prediction
        fields = [
            "at",
            "anomaly_score",
            "anomaly_threshold",
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


class TrainedModelSerializer(serializers.ModelSerializer):
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


class ModelListApi(ListAPIView):
    """The model registry: every trained version with its metrics (filter: name)."""

    serializer_class = TrainedModelSerializer
    filterset_fields = ["name", "is_active"]

    def get_queryset(self) -> QuerySet[TrainedModel]:
        if getattr(self, "swagger_fake_view", False):
            return TrainedModel.objects.none()
        if not selectors.registry_can_view(user=self.request.user):  # type: ignore[arg-type]
            raise PermissionDenied("The model registry is for the ops portal's roles.")
        return selectors.registry_list()


class ModelRollbackApi(APIView):
    """Make an earlier version of a model the active one (administrators)."""

    class InputSerializer(serializers.Serializer):
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
