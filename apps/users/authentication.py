from __future__ import annotations

from typing import Any

from rest_framework import exceptions
from rest_framework.authentication import SessionAuthentication
from rest_framework.request import Request
from rest_framework_simplejwt.authentication import JWTAuthentication
from rest_framework_simplejwt.serializers import TokenRefreshSerializer
from rest_framework_simplejwt.tokens import RefreshToken

from apps.users.models import User
from apps.users.roles import two_factor_required
from apps.users.tokens import access_token_is_revoked, token_problem


class RevocableJWTAuthentication(JWTAuthentication):
    """Bearer access tokens, refused after logout (jti denylist), a password change
    (simplejwt's password-hash claim), a role change, or without 2FA where the role needs it."""

    def get_validated_token(self, raw_token: bytes) -> Any:
        token = super().get_validated_token(raw_token)
        if access_token_is_revoked(jti=str(token.get("jti"))):
            raise exceptions.AuthenticationFailed(
                "This access token was revoked by a logout.", code="token_revoked"
            )
        return token

    def get_user(self, validated_token: Any) -> Any:
        user = super().get_user(validated_token)
        problem = token_problem(token=validated_token, user=user)
        if problem is not None:
            raise exceptions.AuthenticationFailed(problem[1], code=problem[0])
        return user


class CheckedTokenRefreshSerializer(TokenRefreshSerializer):
    """Refresh only for an account that is still active, with the same password and role."""

    def validate(self, attrs: dict[str, Any]) -> dict[str, str]:
        refresh = RefreshToken(attrs["refresh"])  # also refuses blacklisted tokens
        user = User.objects.filter(pk=refresh.get("user_id"), is_active=True).first()
        if user is None:
            raise exceptions.AuthenticationFailed(
                "No active account for this token.", code="no_active_account"
            )
        from rest_framework_simplejwt.utils import get_md5_hash_password

        if refresh.get("hash_password") != get_md5_hash_password(user.password):
            raise exceptions.AuthenticationFailed(
                "The password changed; sign in again.", code="password_changed"
            )
        problem = token_problem(token=refresh, user=user)
        if problem is not None:
            raise exceptions.AuthenticationFailed(problem[1], code=problem[0])
        return super().validate(attrs)


class VerifiedSessionAuthentication(SessionAuthentication):
    """Session auth for the browsable API and portal fetches; staff and admin sessions count
    only once verified with their second factor."""

    def authenticate(self, request: Request) -> tuple[Any, None] | None:
        result = super().authenticate(request)
        if result is None:
            return None
        user = result[0]
        http_request = request._request
        if two_factor_required(user) and not getattr(http_request.user, "is_verified", bool)():
            return None
        return result
