from __future__ import annotations

from typing import Any

import django_filters
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.generics import ListAPIView
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.core.models import Notification
from apps.core.selectors import notification_list
from apps.core.services import notification_mark_read


class NotificationSerializer(serializers.ModelSerializer[Notification]):
    class Meta:
        model = Notification
        fields = ["id", "level", "title", "body", "link", "created_at", "read_at"]


class NotificationFilter(django_filters.FilterSet):
    unread = django_filters.BooleanFilter(field_name="read_at", lookup_expr="isnull")

    class Meta:
        model = Notification
        fields = ["level", "unread"]


class NotificationListApi(ListAPIView[Notification]):
    serializer_class = NotificationSerializer
    filterset_class = NotificationFilter

    def get_queryset(self) -> Any:
        if getattr(self, "swagger_fake_view", False):  # schema generation has no user
            return Notification.objects.none()
        return notification_list(user=self.request.user)


class NotificationMarkReadApi(APIView):
    class InputSerializer(serializers.Serializer[Any]):
        ids = serializers.ListField(child=serializers.IntegerField(), required=False)
        all = serializers.BooleanField(default=False)

        def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
            if not attrs.get("all") and not attrs.get("ids"):
                raise serializers.ValidationError("Give ids, or all=true.")
            return attrs

    @extend_schema(
        request=InputSerializer,
        responses={
            200: inline_serializer("MarkReadResult", {"marked": serializers.IntegerField()})
        },
    )
    def post(self, request: Request) -> Response:
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        qs = notification_list(user=request.user)
        if not data.validated_data["all"]:
            qs = qs.filter(pk__in=data.validated_data["ids"])
        return Response({"marked": notification_mark_read(notifications=qs)})
