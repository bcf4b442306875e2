from __future__ import annotations

from typing import Any

from rest_framework import exceptions
from rest_framework.authentication import SessionAuthentication
from rest_framework.request import Request
from rest_framework_simplejwt.authentication import JWTAuthentication
from rest_framework_simplejwt.exceptions import InvalidToken
from rest_framework_simplejwt.serializers import TokenRefreshSerializer
from rest_framework_simplejwt.settings import api_settings as jwt_settings
from rest_framework_simplejwt.tokens import RefreshToken
from rest_framework_simplejwt.utils import get_md5_hash_password

from apps.users.models import User
from apps.users.roles import two_factor_required
from apps.users.tokens import token_problem, user_with_revocation


class RevocableJWTAuthentication(JWTAuthentication):
    """Bearer access tokens, refused after logout (jti denylist), "log out everywhere" (token
    generation), a password change (simplejwt's password-hash claim), a role change, or
    without 2FA where the role needs it. Every check reads the database, in the one query
    that loads the user: no cache, so a Redis outage neither fails nor opens it."""

    def get_user(self, validated_token: Any) -> Any:
        user_id = validated_token.get(jwt_settings.USER_ID_CLAIM)
        if user_id is None:
            raise InvalidToken("Token contained no recognizable user identification")
        user = user_with_revocation(user_id=user_id, jti=str(validated_token.get("jti")))
        if user is None:
            raise exceptions.AuthenticationFailed("User not found", code="user_not_found")
        if user.access_revoked:  # type: ignore[attr-defined]  # a column of the raw query
            raise exceptions.AuthenticationFailed(
                "This access token was revoked by a logout.", code="token_revoked"
            )
        if not user.is_active:
            raise exceptions.AuthenticationFailed("User is inactive", code="user_inactive")
        if validated_token.get(jwt_settings.REVOKE_TOKEN_CLAIM) != get_md5_hash_password(
            user.password
        ):
            raise exceptions.AuthenticationFailed(
                "The user's password has been changed.", code="password_changed"
            )
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
