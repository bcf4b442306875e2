from __future__ import annotations

import json
from typing import Any

import django_filters
from django.db.models import QuerySet
from django.http import FileResponse, Http404
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers, status
from rest_framework.generics import ListAPIView
from rest_framework.parsers import FormParser, MultiPartParser
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.twins.models import DigitalTwin, TwinLock, TwinVersion
from apps.twins.selectors import lock_list, twin_can_edit, twin_get_for_user, twin_list
from apps.twins.services import (
    lock_acquire,
    lock_heartbeat,
    lock_release,
    twin_create,
    twin_diff,
    twin_edit,
    twin_model_upload,
    twin_revert,
    twin_share,
)
from apps.users.models import Organization, User
from apps.users.types import AuthenticatedRequest
from apps.vendors.models import FabricationNode
from apps.vendors.selectors import node_list


class LockSerializer(serializers.ModelSerializer[TwinLock]):
    holder = serializers.CharField(source="holder.email", read_only=True)

    class Meta:
        model = TwinLock
        fields = ["id", "path", "mode", "holder", "acquired_at", "expires_at"]


class TwinSerializer(serializers.ModelSerializer[DigitalTwin]):
    owner = serializers.CharField(source="owner.email", read_only=True)
    organization_name = serializers.CharField(source="organization.name", read_only=True)
    node_name = serializers.CharField(
        source="node.name", read_only=True, default=None, allow_null=True
    )
    model_url = serializers.SerializerMethodField()

    class Meta:
        model = DigitalTwin
        fields = [
            "id",
            "name",
            "twin_type",
            "node",
            "node_name",
            "owner",
            "organization",
            "organization_name",
            "tags",
            "version",
            "model_format",
            "model_size_bytes",
            "model_url",
            "created_at",
            "updated_at",
        ]

    def get_model_url(self, twin: DigitalTwin) -> str | None:
        return f"/api/v1/twins/{twin.pk}/model/" if twin.model_file else None


class TwinDetailSerializer(TwinSerializer):
    properties = serializers.JSONField()
    can_edit = serializers.SerializerMethodField()

    class Meta(TwinSerializer.Meta):
        fields = [*TwinSerializer.Meta.fields, "properties", "can_edit"]

    def get_can_edit(self, twin: DigitalTwin) -> bool:
        return twin_can_edit(user=self.context["request"].user, twin=twin)


class TwinFilter(django_filters.FilterSet):
    search = django_filters.CharFilter(field_name="name", lookup_expr="icontains")
    tag = django_filters.CharFilter(method="filter_tag")

    class Meta:
        model = DigitalTwin
        fields = ["twin_type", "node", "organization"]

    def filter_tag(
        self, queryset: QuerySet[DigitalTwin], name: str, value: str
    ) -> QuerySet[DigitalTwin]:
        # the tags' JSON text holds the quoted tag (portable: SQLite has no JSON containment)
        return queryset.filter(tags__icontains=json.dumps(value.strip()))


class TwinListApi(ListAPIView[DigitalTwin]):
    """Twins you may see (filters: twin_type, node, organization, tag, search), or create one."""

    request: AuthenticatedRequest

    serializer_class = TwinSerializer
    filterset_class = TwinFilter
    ordering_fields = ["name", "created_at", "updated_at"]

    class InputSerializer(serializers.Serializer[None]):
        name = serializers.CharField(max_length=200)
        twin_type = serializers.ChoiceField(choices=DigitalTwin.Type.choices)
        properties = serializers.JSONField(required=False, default=dict)
        tags = serializers.ListField(
            child=serializers.CharField(max_length=40), required=False, max_length=30
        )
        node = serializers.IntegerField(required=False, allow_null=True)
        organization = serializers.PrimaryKeyRelatedField(
            queryset=Organization.objects.all(), required=False
        )

    def get_queryset(self) -> QuerySet[DigitalTwin]:
        if getattr(self, "swagger_fake_view", False):
            return DigitalTwin.objects.none()
        return twin_list(user=self.request.user)

    @extend_schema(request=InputSerializer, responses={201: TwinDetailSerializer})
    def post(self, request: AuthenticatedRequest) -> Response:
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        fields = dict(data.validated_data)
        node_id = fields.pop("node", None)
        node: FabricationNode | None = None
        if node_id is not None:
            node = node_list(user=request.user).filter(pk=node_id).first()
            if node is None:
                raise serializers.ValidationError({"node": ["No such node you may see."]})
        twin = twin_create(by=request.user, node=node, **fields)
        return Response(
            TwinDetailSerializer(twin, context={"request": request}).data,
            status=status.HTTP_201_CREATED,
        )


class TwinDetailApi(APIView):
    @extend_schema(responses={200: TwinDetailSerializer})
    def get(self, request: AuthenticatedRequest, pk: int) -> Response:
        twin = twin_get_for_user(user=request.user, pk=pk)
        return Response(TwinDetailSerializer(twin, context={"request": request}).data)


class EditApi(APIView):
    """Apply edit operations made against `base_version` (see apps/twins/ot.py for the four
    operations). 200 with the new version and the operations as applied; 409 when the edit
    cannot be applied (`details.reason`: conflict, locked or rebase)."""

    class InputSerializer(serializers.Serializer[None]):
        base_version = serializers.IntegerField(min_value=1)
        ops = serializers.ListField(child=serializers.JSONField(), min_length=1)
        message = serializers.CharField(max_length=300, required=False, allow_blank=True)

    @extend_schema(request=InputSerializer, responses={200: OpenApiTypes.OBJECT})
    def post(self, request: AuthenticatedRequest, pk: int) -> Response:
        twin = twin_get_for_user(user=request.user, pk=pk)
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        result = twin_edit(by=request.user, twin=twin, **data.validated_data)
        return Response({"version": result.version, "ops": result.ops})


class VersionSerializer(serializers.ModelSerializer[TwinVersion]):
    author = serializers.CharField(
        source="author.email", default=None, read_only=True, allow_null=True
    )

    class Meta:
        model = TwinVersion
        fields = [
            "number",
            "parent_number",
            "based_on",
            "author",
            "message",
            "ops",
            "is_latest",
            "created_at",
        ]


class VersionListApi(ListAPIView[TwinVersion]):
    """The twin's history, newest first (`?after=N` lists the versions after N, oldest first:
    what a reconnecting client applies to catch up)."""

    request: AuthenticatedRequest

    serializer_class = VersionSerializer

    def get_queryset(self) -> QuerySet[TwinVersion]:
        if getattr(self, "swagger_fake_view", False):
            return TwinVersion.objects.none()
        twin = twin_get_for_user(user=self.request.user, pk=self.kwargs["pk"])
        versions = TwinVersion.objects.filter(twin=twin).select_related("author")
        after = self.request.query_params.get("after")
        if after is not None:
            if not after.isdigit():
                raise serializers.ValidationError({"after": ["A version number."]})
            return versions.filter(number__gt=int(after)).order_by("number")
        return versions.order_by("-number")

    @extend_schema(parameters=[OpenApiParameter("after", int, required=False)])
    def get(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return super().get(request, *args, **kwargs)


class VersionDetailApi(APIView):
    @extend_schema(responses={200: OpenApiTypes.OBJECT})
    def get(self, request: AuthenticatedRequest, pk: int, number: int) -> Response:
        twin = twin_get_for_user(user=request.user, pk=pk)
        version = TwinVersion.objects.filter(twin=twin, number=number).first()
        if version is None:
            raise Http404
        return Response({**VersionSerializer(version).data, "document": version.document})


class DiffApi(APIView):
    """RFC 6902 operations from version `from` to version `to`."""

    @extend_schema(
        parameters=[OpenApiParameter("from", int), OpenApiParameter("to", int)],
        responses={200: OpenApiTypes.OBJECT},
    )
    def get(self, request: AuthenticatedRequest, pk: int) -> Response:
        twin = twin_get_for_user(user=request.user, pk=pk)
        raw = {k: request.query_params.get(k, "") for k in ("from", "to")}
        bad = {k: ["A version number."] for k, v in raw.items() if not v.isdigit()}
        if bad:
            raise serializers.ValidationError(bad)
        a, b = int(raw["from"]), int(raw["to"])
        return Response({"from": a, "to": b, "patch": twin_diff(twin=twin, a=a, b=b)})


class RevertApi(APIView):
    class InputSerializer(serializers.Serializer[None]):
        version = serializers.IntegerField(min_value=1)
        message = serializers.CharField(max_length=300, required=False, allow_blank=True)

    @extend_schema(request=InputSerializer, responses={200: OpenApiTypes.OBJECT})
    def post(self, request: AuthenticatedRequest, pk: int) -> Response:
        twin = twin_get_for_user(user=request.user, pk=pk)
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        result = twin_revert(
            by=request.user,
            twin=twin,
            to=data.validated_data["version"],
            message=data.validated_data.get("message", ""),
        )
        return Response({"version": result.version, "ops": result.ops})


class ShareApi(APIView):
    """Share for viewing or editing (`level`: view, edit, none to take back) with a user (by
    e-mail) or a team (an organization's id)."""

    class InputSerializer(serializers.Serializer[None]):
        level = serializers.ChoiceField(choices=["view", "edit", "none"])
        user = serializers.EmailField(required=False)
        team = serializers.PrimaryKeyRelatedField(
            queryset=Organization.objects.all(), required=False
        )

    @extend_schema(request=InputSerializer, responses={204: None})
    def post(self, request: AuthenticatedRequest, pk: int) -> Response:
        twin = twin_get_for_user(user=request.user, pk=pk)
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        user = None
        if "user" in data.validated_data:
            user = User.objects.filter(email__iexact=data.validated_data["user"]).first()
            if user is None:
                raise serializers.ValidationError({"user": ["No user with that e-mail."]})
        twin_share(
            by=request.user,
            twin=twin,
            level=data.validated_data["level"],
            user=user,
            team=data.validated_data.get("team"),
        )
        return Response(status=status.HTTP_204_NO_CONTENT)


class LockListApi(APIView):
    """The twin's live locks, or acquire one: `path` (e.g. spindle/bearing_01) and `mode`
    (exclusive or shared); 409 names the conflicting lock. Locks live
    TWINS_LOCK_TTL_SECONDS unless renewed by heartbeat."""

    class InputSerializer(serializers.Serializer[None]):
        path = serializers.CharField(max_length=500)
        mode = serializers.ChoiceField(choices=TwinLock.Mode.choices, default="exclusive")

    @extend_schema(responses={200: LockSerializer(many=True)})
    def get(self, request: AuthenticatedRequest, pk: int) -> Response:
        from django.utils import timezone

        twin = twin_get_for_user(user=request.user, pk=pk)
        return Response(LockSerializer(lock_list(twin=twin, now=timezone.now()), many=True).data)

    @extend_schema(request=InputSerializer, responses={201: LockSerializer})
    def post(self, request: AuthenticatedRequest, pk: int) -> Response:
        twin = twin_get_for_user(user=request.user, pk=pk)
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        lock = lock_acquire(by=request.user, twin=twin, **data.validated_data)
        return Response(LockSerializer(lock).data, status=status.HTTP_201_CREATED)


class LockHeartbeatApi(APIView):
    @extend_schema(request=None, responses={200: LockSerializer})
    def post(self, request: AuthenticatedRequest, pk: int, lock: int) -> Response:
        twin = twin_get_for_user(user=request.user, pk=pk)
        return Response(LockSerializer(lock_heartbeat(by=request.user, twin=twin, pk=lock)).data)


class LockReleaseApi(APIView):
    class InputSerializer(serializers.Serializer[None]):
        force = serializers.BooleanField(default=False)

    @extend_schema(request=InputSerializer, responses={204: None})
    def post(self, request: AuthenticatedRequest, pk: int, lock: int) -> Response:
        twin = twin_get_for_user(user=request.user, pk=pk)
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        lock_release(by=request.user, twin=twin, pk=lock, force=data.validated_data["force"])
        return Response(status=status.HTTP_204_NO_CONTENT)


class ModelApi(APIView):
    """GET the twin's 3D model file; POST (multipart `file`) a GLB, glTF or STL to replace it."""

    parser_classes = [MultiPartParser, FormParser]

    @extend_schema(responses={200: OpenApiTypes.BINARY})
    def get(self, request: AuthenticatedRequest, pk: int) -> FileResponse:
        twin = twin_get_for_user(user=request.user, pk=pk)
        if not twin.model_file:
            raise Http404
        types = {"glb": "model/gltf-binary", "gltf": "model/gltf+json", "stl": "model/stl"}
        return FileResponse(
            twin.model_file.open("rb"), content_type=types.get(twin.model_format, "")
        )

    class InputSerializer(serializers.Serializer[None]):
        file = serializers.FileField()

    @extend_schema(request=InputSerializer, responses={200: TwinSerializer})
    def post(self, request: AuthenticatedRequest, pk: int) -> Response:
        twin = twin_get_for_user(user=request.user, pk=pk)
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        upload = data.validated_data["file"]
        twin = twin_model_upload(by=request.user, twin=twin, name=upload.name, data=upload.read())
        return Response(TwinSerializer(twin).data)
