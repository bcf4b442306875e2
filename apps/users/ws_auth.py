"""Websocket authentication: the portal's session cookie, or `?token=<JWT access>` for API
clients. A session of a user who must use 2FA counts only when it was verified."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs

from channels.auth import AuthMiddlewareStack
from channels.db import database_sync_to_async
from django.contrib.auth.models import AnonymousUser
from django_otp import DEVICE_ID_SESSION_KEY
from django_otp.models import Device
from rest_framework_simplejwt.exceptions import TokenError
from rest_framework_simplejwt.tokens import AccessToken
from rest_framework_simplejwt.utils import get_md5_hash_password

from apps.users.models import User
from apps.users.roles import two_factor_required
from apps.users.tokens import access_token_is_revoked, token_problem


@database_sync_to_async
def _user_from_token(raw: str) -> Any:
    try:
        token = AccessToken(raw)  # type: ignore[arg-type]
    except TokenError:
        return AnonymousUser()
    if access_token_is_revoked(jti=str(token.get("jti"))):
        return AnonymousUser()
    user = User.objects.filter(pk=token.get("user_id"), is_active=True).first()
    if user is None or token.get("hash_password") != get_md5_hash_password(user.password):
        return AnonymousUser()
    if token_problem(token=token, user=user) is not None:
        return AnonymousUser()
    return user


@database_sync_to_async
def _session_verified(session: Any, user: User) -> bool:
    """The session holds the id of a confirmed device that still belongs to the user."""
    device_id = session.get(DEVICE_ID_SESSION_KEY) if session else None
    device = Device.from_persistent_id(device_id) if device_id else None
    return bool(device is not None and device.confirmed and device.user_id == user.pk)


class TokenOrVerifiedSessionMiddleware:
    def __init__(self, inner: Any) -> None:
        self.inner = inner

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> Any:
        token = parse_qs(scope.get("query_string", b"").decode()).get("token")
        if token:
            scope["user"] = await _user_from_token(token[0])
        else:
            user = scope.get("user")
            if user is not None and user.is_authenticated and two_factor_required(user):
                session = scope.get("session")
                if not await _session_verified(session, user):
                    scope["user"] = AnonymousUser()
        return await self.inner(scope, receive, send)


def WebsocketAuthStack(inner: Any) -> Any:  # noqa: N802 (mirrors channels' AuthMiddlewareStack)
    return AuthMiddlewareStack(TokenOrVerifiedSessionMiddleware(inner))
