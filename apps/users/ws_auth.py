"""Websocket authentication: the portal's session cookie, or `?token=<JWT access>` for API
clients. A session of a user who must use 2FA counts only when it was verified.

Origin: a session cookie is ambient authority (the browser sends it to any page's socket), so a
session counts only when the `Origin` header names one of our hosts (ALLOWED_HOSTS, or an origin
in CSRF_TRUSTED_ORIGINS); a signed-in session from a foreign or missing Origin is refused with
4403. A token in the query string is not ambient: whoever sends it already holds it, so
cross-site websocket hijacking does not apply, and token clients (mobile apps, machines, which
send no Origin) are accepted from any Origin or none.

The socket keeps its credential in `scope["credential"]`; the consumers' base
(`apps.core.sockets.LiveConsumer`) asks it every few seconds whether it still holds.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib import import_module
from typing import Any, cast
from urllib.parse import parse_qs, urlparse

from channels.auth import AuthMiddlewareStack
from channels.db import database_sync_to_async
from channels.security.websocket import OriginValidator
from django.conf import settings
from django.contrib.auth import get_user
from django.contrib.auth.models import AnonymousUser
from django.http import HttpRequest
from django_otp import DEVICE_ID_SESSION_KEY
from django_otp.models import Device
from rest_framework_simplejwt.exceptions import TokenError
from rest_framework_simplejwt.tokens import AccessToken
from rest_framework_simplejwt.utils import get_md5_hash_password

from apps.core.sockets import CLOSE_FORBIDDEN
from apps.users.models import User
from apps.users.roles import two_factor_required
from apps.users.tokens import access_token_is_revoked, token_problem


def token_user(raw: str) -> User | None:
    """The user an access token acts for now, or None: expired, revoked, password or role
    changed since issue, account deactivated, or a 2FA role without a second factor."""
    try:
        # simplejwt annotates the encoded token as a Token; it takes the str
        token = AccessToken(cast(Any, raw))
    except TokenError:
        return None
    if access_token_is_revoked(jti=str(token.get("jti"))):
        return None
    user = User.objects.filter(pk=token.get("user_id"), is_active=True).first()
    if user is None or token.get("hash_password") != get_md5_hash_password(user.password):
        return None
    if token_problem(token=token, user=user) is not None:
        return None
    return user


def session_verified(session: Any, user: User) -> bool:
    """The session holds the id of a confirmed device that still belongs to the user."""
    device_id = session.get(DEVICE_ID_SESSION_KEY) if session else None
    device = Device.from_persistent_id(device_id) if device_id else None
    return bool(device is not None and device.confirmed and device.user_id == user.pk)


def session_user(session: Any) -> User | None:
    """The session's user as Django's auth middleware sees it (logged out, password changed,
    deactivated: none), and for a 2FA role only when the session was verified."""
    request = HttpRequest()
    request.session = session  # all that get_user reads
    user = get_user(request)
    if not user.is_authenticated:
        return None
    if two_factor_required(user) and not session_verified(session, user):
        return None
    return user


@dataclass
class TokenCredential:
    raw: str

    def current_user(self) -> User | None:
        return token_user(self.raw)


@dataclass
class SessionCredential:
    session_key: str

    def current_user(self) -> User | None:
        store = import_module(settings.SESSION_ENGINE).SessionStore(self.session_key)
        user = session_user(store)
        if store.session_key and store.session_key != self.session_key:
            self.session_key = store.session_key  # (cycled to a new key by a rotated secret)
        return user


def allowed_origin(scope: dict[str, Any]) -> bool:
    """The Origin header names one of our hosts, as channels' AllowedHostsOriginValidator
    checks, or an origin listed in CSRF_TRUSTED_ORIGINS. A missing Origin is not allowed."""
    origin = None
    for name, value in scope.get("headers", []):
        if name == b"origin":
            try:
                origin = urlparse(value.decode("latin1"))
            except UnicodeDecodeError:
                return False
    if origin is None:
        return False
    hosts = list(settings.ALLOWED_HOSTS)
    if settings.DEBUG and not hosts:
        hosts = ["localhost", "127.0.0.1", "[::1]"]
    validator = OriginValidator(None, [*hosts, *settings.CSRF_TRUSTED_ORIGINS])
    return bool(validator.valid_origin(origin))


class TokenOrVerifiedSessionMiddleware:
    def __init__(self, inner: Any) -> None:
        self.inner = inner

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> Any:
        token = parse_qs(scope.get("query_string", b"").decode()).get("token")
        if token:
            user = await database_sync_to_async(token_user)(token[0])
            scope["user"] = user or AnonymousUser()
            scope["credential"] = TokenCredential(token[0])
        else:
            user = scope.get("user")
            session = scope.get("session")
            if user is not None and user.is_authenticated:
                if not allowed_origin(scope):
                    scope["user"] = AnonymousUser()
                    scope["refusal"] = (
                        CLOSE_FORBIDDEN,
                        "A signed-in session is accepted only from this site's pages; "
                        "other clients use ?token=<access JWT>.",
                    )
                elif two_factor_required(user) and not await database_sync_to_async(
                    session_verified
                )(session, user):
                    scope["user"] = AnonymousUser()
                elif session is not None:
                    scope["credential"] = SessionCredential(session.session_key)
        return await self.inner(scope, receive, send)


def WebsocketAuthStack(inner: Any) -> Any:  # noqa: N802 (mirrors channels' AuthMiddlewareStack)
    return AuthMiddlewareStack(TokenOrVerifiedSessionMiddleware(inner))
