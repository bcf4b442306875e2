"""Tickets of the maintenance agent: the queue (filters, opening one by hand), detail,
lifecycle transitions, assignment and notes."""

from __future__ import annotations

from typing import Any

import django_filters
from django.db.models import QuerySet
from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.generics import ListAPIView
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.core.filters import ChoiceIn
from apps.core.serializers import many_data
from apps.maintenance import selectors
from apps.maintenance.models import Severity, Ticket, TicketEvent
from apps.maintenance.services import (
    ticket_assign,
    ticket_create,
    ticket_note_add,
    ticket_transition,
)
from apps.users.models import User
from apps.users.types import AuthenticatedRequest


class TicketSerializer(serializers.ModelSerializer[Ticket]):
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


class TicketEventSerializer(serializers.ModelSerializer[TicketEvent]):
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
        return many_data(TicketEventSerializer(selectors.ticket_events(ticket=ticket), many=True))


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


class TicketListApi(ListAPIView[Ticket]):
    """The ticket queue, most urgent first (filters: status, severity, issue_type as comma
    lists; node, site, assignee; active=true|false; ordering: priority, created_at,
    last_seen). POST opens a ticket by hand (never deduplicated)."""

    request: AuthenticatedRequest

    serializer_class = TicketSerializer
    filterset_class = TicketFilter
    ordering_fields = ["priority", "created_at", "last_seen", "severity"]

    class InputSerializer(serializers.Serializer[Any]):
        node = serializers.IntegerField()
        issue_type = serializers.ChoiceField(choices=Ticket.IssueType.choices)
        severity = serializers.ChoiceField(choices=Severity.choices)
        title = serializers.CharField(max_length=200)
        description = serializers.CharField(required=False, allow_blank=True, default="")

    def get_queryset(self) -> QuerySet[Ticket]:
        if getattr(self, "swagger_fake_view", False):
            return Ticket.objects.none()
        return selectors.ticket_list(user=self.request.user)

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

    class InputSerializer(serializers.Serializer[Any]):
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

    class InputSerializer(serializers.Serializer[Any]):
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
    class InputSerializer(serializers.Serializer[Any]):
        text = serializers.CharField(max_length=5000)

    @extend_schema(request=InputSerializer, responses={201: TicketEventSerializer})
    def post(self, request: AuthenticatedRequest, pk: int) -> Response:
        ticket = selectors.ticket_get_for_user(user=request.user, pk=pk)
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        event = ticket_note_add(by=request.user, ticket=ticket, text=data.validated_data["text"])
        return Response(TicketEventSerializer(event).data, status=status.HTTP_201_CREATED)
