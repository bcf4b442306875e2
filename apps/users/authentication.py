from __future__ import annotations

from typing import Any

from rest_framework import exceptions
from rest_framework.authentication import SessionAuthentication
from rest_framework.request import Request
from rest_framework_simplejwt.authentication import JWTAuthentication

from apps.users.roles import two_factor_required
from apps.users.tokens import access_token_is_revoked


class RevocableJWTAuthentication(JWTAuthentication):
    """Bearer access tokens, refused once their session logged out (jti denylist)."""

    def get_validated_token(self, raw_token: bytes) -> Any:
        token = super().get_validated_token(raw_token)
        if access_token_is_revoked(jti=str(token.get("jti"))):
            raise exceptions.AuthenticationFailed(
                "This access token was revoked by a logout.", code="token_revoked"
            )
        return token


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
