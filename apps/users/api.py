from __future__ import annotations

from typing import Any

import django_filters
from django.db import transaction
from django.db.models import Prefetch, prefetch_related_objects
from django.shortcuts import get_object_or_404
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema, inline_serializer
from guardian.shortcuts import assign_perm, remove_perm
from rest_framework import exceptions, serializers, status
from rest_framework.generics import ListAPIView, RetrieveAPIView
from rest_framework.permissions import AllowAny, IsAuthenticated
from rest_framework.response import Response
from rest_framework.throttling import AnonRateThrottle
from rest_framework.views import APIView
from rest_framework_simplejwt.tokens import Token
from rest_framework_simplejwt.views import TokenRefreshView

from apps.core.filters import UtcIsoDateTimeFilter
from apps.core.models import AuditLog
from apps.core.throttles import AuthRateThrottle
from apps.users.models import Membership, Organization, User
from apps.users.permissions import action_required
from apps.users.roles import MATRIX, PORTALS, Action, Role, scope_for
from apps.users.selectors import organization_get_for_user, organization_list, user_list
from apps.users.services import (
    AuthFailure,
    auth_login,
    auth_logout_tokens,
    user_register,
    user_set_role,
    user_verify_email,
)
from apps.users.tokens import tokens_issue
from apps.users.types import AuthenticatedRequest


class AuthError(exceptions.APIException):
    def __init__(self, failure: AuthFailure) -> None:
        self.status_code = failure.status
        super().__init__(detail=failure.message, code=failure.code)


class OrganizationSerializer(serializers.ModelSerializer[Organization]):
    class Meta:
        model = Organization
        fields = ["id", "name", "slug", "kind", "created_at"]


class MembershipSerializer(serializers.ModelSerializer[Membership]):
    organization = OrganizationSerializer()

    class Meta:
        model = Membership
        fields = ["organization", "org_role"]


class UserSerializer(serializers.ModelSerializer[User]):
    memberships = MembershipSerializer(many=True, read_only=True)

    class Meta:
        model = User
        fields = [
            "id",
            "email",
            "full_name",
            "role",
            "is_active",
            "is_staff",
            "date_joined",
            "email_verified_at",
            "memberships",
        ]


class TokenPairSerializer(serializers.Serializer[Any]):
    access = serializers.CharField()
    refresh = serializers.CharField()


class TokenObtainApi(APIView):
    """Exchange e-mail + password (+ TOTP code when 2FA is on) for a JWT pair."""

    permission_classes = [AllowAny]
    authentication_classes: list[Any] = []
    throttle_classes = [AuthRateThrottle, AnonRateThrottle]

    class InputSerializer(serializers.Serializer[Any]):
        email = serializers.EmailField()
        password = serializers.CharField(trim_whitespace=False)
        otp = serializers.CharField(required=False, allow_blank=True, max_length=12)

    @extend_schema(request=InputSerializer, responses={200: TokenPairSerializer})
    def post(self, request: AuthenticatedRequest) -> Response:
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        try:
            user, device = auth_login(
                request=request._request,  # axes marks lockouts on Django's request
                email=data.validated_data["email"],
                password=data.validated_data["password"],
                otp_token=data.validated_data.get("otp", ""),
                for_api=True,
            )
        except AuthFailure as failure:
            raise AuthError(failure) from None
        refresh = tokens_issue(user=user, otp_verified=device is not None)
        return Response({"access": str(refresh.access_token), "refresh": str(refresh)})


class TokenRefreshApi(TokenRefreshView):
    """Rotate a refresh token: the old one is blacklisted, a new pair is returned."""

    throttle_classes = [AuthRateThrottle, AnonRateThrottle]


class LogoutApi(APIView):
    class InputSerializer(serializers.Serializer[Any]):
        # Needed for a plain logout; "everywhere" ends every token of the signed-in caller.
        refresh = serializers.CharField(required=False)
        everywhere = serializers.BooleanField(default=False)

    @extend_schema(
        request=InputSerializer,
        responses={200: inline_serializer("LogoutResult", {"revoked": serializers.IntegerField()})},
    )
    def post(self, request: AuthenticatedRequest) -> Response:
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        token = request.auth  # the access token under JWT, None under a session
        revoked = auth_logout_tokens(
            user=request.user,
            refresh=data.validated_data.get("refresh"),
            access_jti=token.get("jti") if isinstance(token, Token) else None,
            access_exp=token.get("exp") if isinstance(token, Token) else None,
            everywhere=data.validated_data["everywhere"],
        )
        return Response({"revoked": revoked})


class RegisterApi(APIView):
    permission_classes = [AllowAny]
    authentication_classes: list[Any] = []

    class InputSerializer(serializers.Serializer[Any]):
        email = serializers.EmailField()
        password = serializers.CharField(trim_whitespace=False, min_length=10)
        full_name = serializers.CharField(max_length=150)
        role = serializers.ChoiceField(choices=[Role.DESIGNER.value, Role.VENDOR.value])
        organization_name = serializers.CharField(max_length=150)

        def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
            from django.contrib.auth.password_validation import validate_password
            from django.core.exceptions import ValidationError

            probe = User(email=attrs["email"], full_name=attrs["full_name"])
            try:
                validate_password(attrs["password"], probe)
            except ValidationError as exc:
                raise serializers.ValidationError({"password": exc.messages}) from None
            return attrs

    @extend_schema(
        request=InputSerializer,
        responses={202: inline_serializer("RegisterAccepted", {"detail": serializers.CharField()})},
        description="Always 202 for a valid form: whether the address already had an account "
        "is told only to its owner, by e-mail.",
    )
    def post(self, request: AuthenticatedRequest) -> Response:
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        user_register(**data.validated_data, base_url=request.build_absolute_uri("/"))
        return Response(
            {"detail": "Check your e-mail: follow the link we sent to activate the account."},
            status=status.HTTP_202_ACCEPTED,
        )


class VerifyEmailApi(APIView):
    permission_classes = [AllowAny]
    authentication_classes: list[Any] = []

    class InputSerializer(serializers.Serializer[Any]):
        uid = serializers.CharField()
        token = serializers.CharField()

    @extend_schema(
        request=InputSerializer,
        responses={
            200: inline_serializer("EmailVerified", {"verified": serializers.BooleanField()})
        },
    )
    def post(self, request: AuthenticatedRequest) -> Response:
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        user_verify_email(uidb64=data.validated_data["uid"], token=data.validated_data["token"])
        return Response({"verified": True})


class MeApi(APIView):
    @extend_schema(
        responses={
            200: inline_serializer(
                "Me",
                {
                    "user": UserSerializer(),
                    "permissions": serializers.DictField(child=serializers.CharField()),
                    "portals": serializers.ListField(child=serializers.CharField()),
                },
            )
        }
    )
    def get(self, request: AuthenticatedRequest) -> Response:
        user = request.user
        # the memberships with their organizations in one query, not one more per membership
        prefetch_related_objects(
            [user],
            Prefetch("memberships", queryset=Membership.objects.select_related("organization")),
        )
        scopes = {action.value: scope_for(user, action) for action in Action}
        return Response(
            {
                "user": UserSerializer(user).data,
                "permissions": {k: v.value for k, v in scopes.items() if v is not None},
                "portals": [p for p, roles in PORTALS.items() if Role(user.role) in roles],
            }
        )


class RoleMatrixApi(APIView):
    @extend_schema(
        responses={200: OpenApiTypes.OBJECT},
        description="action -> role -> scope; roles absent from an action may not perform it.",
    )
    def get(self, request: AuthenticatedRequest) -> Response:
        return Response(
            {
                action.value: {role.value: scope.value for role, scope in scopes.items()}
                for action, scopes in MATRIX.items()
            }
        )


class OrganizationListApi(ListAPIView[Organization]):
    request: AuthenticatedRequest

    serializer_class = OrganizationSerializer
    filterset_fields = ["kind"]
    ordering_fields = ["name", "created_at"]

    def get_queryset(self) -> Any:
        if getattr(self, "swagger_fake_view", False):  # schema generation has no user
            return Organization.objects.none()
        return organization_list(user=self.request.user)


class OrganizationDetailApi(RetrieveAPIView[Organization]):
    request: AuthenticatedRequest

    serializer_class = OrganizationSerializer

    def get_object(self) -> Organization:
        return organization_get_for_user(
            user=self.request.user,
            pk=self.kwargs["pk"],
        )


class OrganizationShareApi(APIView):
    """Grant or revoke a named user's view right on an organization (guardian object
    permission). Admins, and owners of the organization, may share."""

    class InputSerializer(serializers.Serializer[Any]):
        user_email = serializers.EmailField()
        grant = serializers.BooleanField(default=True)

    @extend_schema(request=InputSerializer, responses={200: OrganizationSerializer})
    def post(self, request: AuthenticatedRequest, pk: int) -> Response:
        organization = organization_get_for_user(user=request.user, pk=pk)
        is_owner = organization.memberships.filter(
            user=request.user, org_role=Membership.OrgRole.OWNER
        ).exists()
        if not (is_owner or scope_for(request.user, Action.SYSTEM_ADMIN)):
            raise exceptions.PermissionDenied("Only the organization's owners may share it.")
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        target = User.objects.filter(email__iexact=data.validated_data["user_email"]).first()
        if target is None:
            raise exceptions.ValidationError({"user_email": "No user has this e-mail address."})
        with transaction.atomic():
            if data.validated_data["grant"]:
                assign_perm("users.view_organization", target, organization)
            else:
                remove_perm("users.view_organization", target, organization)
        return Response(OrganizationSerializer(organization).data)


class UserListApi(ListAPIView[User]):
    serializer_class = UserSerializer
    permission_classes = [IsAuthenticated, action_required(Action.SYSTEM_ADMIN)]
    filterset_fields = ["role", "is_active"]
    ordering_fields = ["email", "date_joined"]

    def get_queryset(self) -> Any:
        return user_list(search=self.request.query_params.get("search", ""))


class UserRoleApi(APIView):
    permission_classes = [IsAuthenticated, action_required(Action.SYSTEM_ADMIN)]

    class InputSerializer(serializers.Serializer[Any]):
        role = serializers.ChoiceField(choices=Role.choices)

    @extend_schema(request=InputSerializer, responses={200: UserSerializer})
    def post(self, request: AuthenticatedRequest, pk: int) -> Response:
        user = get_object_or_404(User, pk=pk)
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        user = user_set_role(user=user, role=data.validated_data["role"], by=request.user)
        return Response(UserSerializer(user).data)


class AuditLogSerializer(serializers.ModelSerializer[AuditLog]):
    class Meta:
        model = AuditLog
        fields = [
            "id",
            "created_at",
            "actor",
            "actor_email",
            "action",
            "object_type",
            "object_id",
            "object_repr",
            "changes",
            "ip_address",
            "path",
        ]


class AuditLogFilter(django_filters.FilterSet):
    since = UtcIsoDateTimeFilter(field_name="created_at", lookup_expr="gte")
    until = UtcIsoDateTimeFilter(field_name="created_at", lookup_expr="lt")
    actor_email = django_filters.CharFilter(lookup_expr="icontains")

    class Meta:
        model = AuditLog
        fields = ["action", "object_type", "object_id", "ip_address", "actor"]


class AuditLogListApi(ListAPIView[AuditLog]):
    serializer_class = AuditLogSerializer
    filterset_class = AuditLogFilter
    ordering_fields = ["created_at"]

    permission_classes = [IsAuthenticated, action_required(Action.SYSTEM_ADMIN)]

    def get_queryset(self) -> Any:
        return AuditLog.objects.all()
