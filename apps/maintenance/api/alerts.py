"""Alerts on the nodes you maintain, and the threshold rules that raise them."""

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
from apps.maintenance import selectors
from apps.maintenance.models import Alert, Severity, ThresholdRule
from apps.maintenance.services import rule_delete, rule_save
from apps.users.types import AuthenticatedRequest


class AlertSerializer(serializers.ModelSerializer[Alert]):
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


class AlertListApi(ListAPIView[Alert]):
    """Alerts on the nodes you maintain, newest first (filters: node, severity, signal,
    open=true|false)."""

    request: AuthenticatedRequest

    serializer_class = AlertSerializer
    filterset_class = AlertFilter

    def get_queryset(self) -> QuerySet[Alert]:
        if getattr(self, "swagger_fake_view", False):
            return Alert.objects.none()
        return selectors.alert_list(user=self.request.user)


class RuleSerializer(serializers.ModelSerializer[ThresholdRule]):
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


class RuleListApi(ListAPIView[ThresholdRule]):
    """The platform's default rules, the per-kind overrides and the per-node overrides of the
    nodes you maintain. POST saves the rule of a signal in one mode at one scope (defaults and
    kinds: admins; a node: whoever maintains it), replacing the one of that mode there; a
    signal's rules of other modes stay (a level rule and a rise rule on temperature)."""

    request: AuthenticatedRequest

    serializer_class = RuleSerializer
    pagination_class = None

    class InputSerializer(serializers.Serializer[Any]):
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
        if not selectors.rules_can_view(user=user):
            raise PermissionDenied("Your role does not maintain nodes.")
        return selectors.rule_list(user=user)

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
