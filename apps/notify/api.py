"""The notification API: channels with their rules (own, and the organizations' one owns),
"send test", the delivery log, the event catalogue and browser push subscriptions. Secrets
are write-only: answers carry a hint (last four characters), never the value."""

from __future__ import annotations

from typing import Any

import django_filters
from django.db.models import QuerySet
from django.shortcuts import get_object_or_404
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.generics import ListAPIView
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.core.filters import ChoiceIn, UtcIsoDateTimeFilter
from apps.notify import selectors, services
from apps.notify.models import Channel, Delivery, EventKind, OnCallRota, QuietHours, Severity
from apps.notify.vapid import vapid_keys
from apps.users.types import AuthenticatedRequest


class NotifyRuleSerializer(serializers.Serializer[Any]):
    event_kind = serializers.ChoiceField(
        choices=[("", "Any event"), *[(k, EventKind(k).label) for k in services.SUBSCRIBABLE]],
        allow_blank=True,
        default="",
    )
    min_severity = serializers.ChoiceField(choices=Severity.choices, default=Severity.WARNING)


class ChannelSerializer(serializers.ModelSerializer[Channel]):
    secret_hint = serializers.CharField(read_only=True)
    rules = NotifyRuleSerializer(many=True, read_only=True)
    organization_name = serializers.CharField(
        source="organization.name", default=None, read_only=True, allow_null=True
    )

    class Meta:
        model = Channel
        fields = [
            "id",
            "kind",
            "name",
            "organization",
            "organization_name",
            "target",
            "secret_hint",
            "is_active",
            "rules",
            "created_at",
        ]


class ChannelCreatedSerializer(ChannelSerializer):
    """The answer to a create: a secret the platform generated is shown this once."""

    generated_secret = serializers.SerializerMethodField()

    class Meta(ChannelSerializer.Meta):
        fields = [*ChannelSerializer.Meta.fields, "generated_secret"]

    def get_generated_secret(self, channel: Channel) -> str | None:
        return self.context.get("generated_secret")


class ChannelListApi(ListAPIView[Channel]):
    request: AuthenticatedRequest

    serializer_class = ChannelSerializer

    class InputSerializer(serializers.Serializer[Any]):
        kind = serializers.ChoiceField(choices=Channel.Kind.choices)
        name = serializers.CharField(max_length=100)
        organization = serializers.IntegerField(required=False, allow_null=True, default=None)
        target = serializers.CharField(max_length=500, required=False, allow_blank=True, default="")
        secret = serializers.CharField(
            max_length=2000, required=False, allow_blank=True, default="", write_only=True
        )
        rules = NotifyRuleSerializer(many=True, required=False, default=list)

    def get_queryset(self) -> QuerySet[Channel]:
        if getattr(self, "swagger_fake_view", False):
            return Channel.objects.none()
        return selectors.channel_list(user=self.request.user)

    @extend_schema(request=InputSerializer, responses={201: ChannelCreatedSerializer})
    def post(self, request: AuthenticatedRequest) -> Response:
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        values = dict(data.validated_data)
        org_id = values.pop("organization")
        organization = None
        if org_id is not None:
            # An organization one does not own is "not found", not "forbidden": no probing.
            organization = get_object_or_404(
                selectors.organizations_managed(user=request.user), pk=org_id
            )
        given_secret = values["secret"]
        channel = services.channel_create(by=request.user, organization=organization, **values)
        generated = channel.secret if channel.secret and not given_secret else None
        context = {"generated_secret": generated if channel.kind == Channel.Kind.WEBHOOK else None}
        return Response(
            ChannelCreatedSerializer(channel, context=context).data, status=status.HTTP_201_CREATED
        )


class ChannelDetailApi(APIView):
    class InputSerializer(serializers.Serializer[Any]):
        name = serializers.CharField(max_length=100, required=False)
        target = serializers.CharField(max_length=500, required=False, allow_blank=True)
        secret = serializers.CharField(
            max_length=2000, required=False, allow_blank=True, write_only=True
        )
        is_active = serializers.BooleanField(required=False)
        rules = NotifyRuleSerializer(many=True, required=False)

    @extend_schema(responses=ChannelSerializer)
    def get(self, request: AuthenticatedRequest, pk: int) -> Response:
        channel = selectors.channel_get_for_user(user=request.user, pk=pk)
        return Response(ChannelSerializer(channel).data)

    @extend_schema(request=InputSerializer, responses=ChannelSerializer)
    def patch(self, request: AuthenticatedRequest, pk: int) -> Response:
        channel = selectors.channel_get_for_user(user=request.user, pk=pk)
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        channel = services.channel_update(by=request.user, channel=channel, **data.validated_data)
        return Response(
            ChannelSerializer(selectors.channel_get_for_user(user=request.user, pk=pk)).data
        )

    @extend_schema(responses={204: None})
    def delete(self, request: AuthenticatedRequest, pk: int) -> Response:
        channel = selectors.channel_get_for_user(user=request.user, pk=pk)
        services.channel_delete(by=request.user, channel=channel)
        return Response(status=status.HTTP_204_NO_CONTENT)


class DeliverySerializer(serializers.ModelSerializer[Delivery]):
    event_kind = serializers.CharField(source="event.kind", read_only=True)
    severity = serializers.CharField(source="event.severity", read_only=True)
    title = serializers.CharField(source="event.title", read_only=True)
    channel_name = serializers.CharField(source="channel.name", read_only=True)

    class Meta:
        model = Delivery
        fields = [
            "id",
            "event",
            "event_kind",
            "severity",
            "title",
            "channel",
            "channel_name",
            "subject",
            "status",
            "attempts",
            "response_code",
            "latency_ms",
            "last_error",
            "next_attempt_at",
            "sent_at",
            "digest",
            "created_at",
        ]


class ChannelTestApi(APIView):
    @extend_schema(request=None, responses={202: DeliverySerializer})
    def post(self, request: AuthenticatedRequest, pk: int) -> Response:
        channel = selectors.channel_get_for_user(user=request.user, pk=pk)
        delivery = services.channel_test(by=request.user, channel=channel)
        # Queued: its outcome shows in the delivery log (GET deliveries/?channel=<id>).
        return Response(DeliverySerializer(delivery).data, status=status.HTTP_202_ACCEPTED)


class DeliveryFilter(django_filters.FilterSet):
    status = ChoiceIn(choices=Delivery.Status.choices)
    event_kind = ChoiceIn(field_name="event__kind", choices=EventKind.choices)
    severity = ChoiceIn(field_name="event__severity", choices=Severity.choices)
    since = UtcIsoDateTimeFilter(field_name="created_at", lookup_expr="gte")

    class Meta:
        model = Delivery
        fields = ["channel", "status", "event_kind", "severity", "since"]


class DeliveryListApi(ListAPIView[Delivery]):
    request: AuthenticatedRequest

    serializer_class = DeliverySerializer
    filterset_class = DeliveryFilter

    def get_queryset(self) -> QuerySet[Delivery]:
        if getattr(self, "swagger_fake_view", False):
            return Delivery.objects.none()
        return selectors.delivery_list(user=self.request.user)


class EventKindListApi(APIView):
    @extend_schema(
        responses=inline_serializer(
            "NotifyEventKind",
            {"kind": serializers.CharField(), "label": serializers.CharField()},
            many=True,
        )
    )
    def get(self, request: AuthenticatedRequest) -> Response:
        return Response([{"kind": k, "label": EventKind(k).label} for k in services.SUBSCRIBABLE])


class PushSubscriptionApi(APIView):
    class InputSerializer(serializers.Serializer[Any]):
        endpoint = serializers.URLField(max_length=1000)
        keys = serializers.DictField(child=serializers.CharField(max_length=200))

        def validate_keys(self, keys: dict[str, str]) -> dict[str, str]:
            missing = {"p256dh", "auth"} - set(keys)
            if missing:
                raise serializers.ValidationError(f"Missing {', '.join(sorted(missing))}.")
            return keys

    class DeleteSerializer(serializers.Serializer[Any]):
        endpoint = serializers.URLField(max_length=1000)

    @extend_schema(
        responses={
            200: inline_serializer(
                "VapidPublicKey", {"public_key": serializers.CharField(allow_null=True)}
            )
        }
    )
    def get(self, request: AuthenticatedRequest) -> Response:
        """The VAPID public key a browser subscribes with (null: push not configured)."""
        keys = vapid_keys()
        return Response({"public_key": keys.public_key if keys else None})

    @extend_schema(request=InputSerializer, responses={201: None})
    def post(self, request: AuthenticatedRequest) -> Response:
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        keys = data.validated_data["keys"]
        services.push_subscribe(
            user=request.user,
            endpoint=data.validated_data["endpoint"],
            p256dh=keys["p256dh"],
            auth=keys["auth"],
        )
        return Response(status=status.HTTP_201_CREATED)

    @extend_schema(request=DeleteSerializer, responses={204: None})
    def delete(self, request: AuthenticatedRequest) -> Response:
        data = self.DeleteSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        services.push_unsubscribe(user=request.user, endpoint=data.validated_data["endpoint"])
        return Response(status=status.HTTP_204_NO_CONTENT)


class QuietHoursApi(APIView):
    """One's own quiet hours: alerts below critical to one's own channels wait until they end."""

    class InputSerializer(serializers.Serializer[Any]):
        start = serializers.TimeField()
        end = serializers.TimeField()
        timezone = serializers.CharField(max_length=64, default="UTC")

    class OutputSerializer(serializers.Serializer[Any]):
        start = serializers.TimeField(allow_null=True)
        end = serializers.TimeField(allow_null=True)
        timezone = serializers.CharField(allow_null=True)

    @extend_schema(responses=OutputSerializer)
    def get(self, request: AuthenticatedRequest) -> Response:
        quiet = QuietHours.objects.filter(user=request.user).first()
        empty = {"start": None, "end": None, "timezone": None}
        return Response(self.OutputSerializer(quiet).data if quiet else empty)

    @extend_schema(request=InputSerializer, responses=OutputSerializer)
    def put(self, request: AuthenticatedRequest) -> Response:
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        values = data.validated_data
        quiet = services.quiet_hours_set(
            user=request.user, start=values["start"], end=values["end"], tz=values["timezone"]
        )
        return Response(self.OutputSerializer(quiet).data)

    @extend_schema(responses={204: None})
    def delete(self, request: AuthenticatedRequest) -> Response:
        services.quiet_hours_clear(user=request.user)
        return Response(status=status.HTTP_204_NO_CONTENT)


class RotaApi(APIView):
    """An organization's on-call rota (its owners and the platform admins)."""

    class InputSerializer(serializers.Serializer[Any]):
        members = serializers.ListField(child=serializers.IntegerField(), max_length=50)
        ack_minutes = serializers.IntegerField(default=15)

    class OutputSerializer(serializers.Serializer[Any]):
        organization = serializers.IntegerField()
        ack_minutes = serializers.IntegerField()
        members = serializers.ListField(child=serializers.DictField())

    def _out(self, organization: Any) -> dict[str, Any]:
        rota = OnCallRota.objects.filter(organization=organization).first()
        slots = rota.slots.select_related("user").order_by("position") if rota else []
        return {
            "organization": organization.pk,
            "ack_minutes": rota.ack_minutes if rota else None,
            "members": [{"id": s.user_id, "email": s.user.email} for s in slots],
        }

    @extend_schema(responses=OutputSerializer)
    def get(self, request: AuthenticatedRequest, pk: int) -> Response:
        organization = get_object_or_404(selectors.organizations_managed(user=request.user), pk=pk)
        return Response(self._out(organization))

    @extend_schema(request=InputSerializer, responses=OutputSerializer)
    def put(self, request: AuthenticatedRequest, pk: int) -> Response:
        organization = get_object_or_404(selectors.organizations_managed(user=request.user), pk=pk)
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        services.rota_set(by=request.user, organization=organization, **data.validated_data)
        return Response(self._out(organization))
