"""JWT issue, checks and revocation.

Access and refresh tokens carry `role` (the role they were issued for) and `otp` (whether the
login passed a second factor); simplejwt adds a hash of the password (CHECK_REVOKE_TOKEN).
A token stops working when the role or password changes, the account is deactivated, or a
user who must use 2FA holds a token issued without it. Logout puts the access token's id on a
denylist in the cache (Redis in production) until it would have expired anyway.
"""

from __future__ import annotations

from typing import Any

from django.core.cache import cache
from django.utils import timezone
from rest_framework_simplejwt.token_blacklist.models import BlacklistedToken, OutstandingToken
from rest_framework_simplejwt.tokens import RefreshToken

from apps.users.roles import two_factor_required

DENYLIST_PREFIX = "jwt-denied:"


def tokens_issue(*, user: Any, otp_verified: bool) -> RefreshToken:
    refresh = RefreshToken.for_user(user)
    refresh["role"] = user.role
    refresh["otp"] = bool(otp_verified)
    return refresh


def token_problem(*, token: Any, user: Any) -> tuple[str, str] | None:
    """Why `token` may no longer act for `user` (code, message), or None when it may."""
    if token.get("role") != user.role:
        return (
            "role_changed",
            "The account's role changed since this token was issued; sign in again.",
        )
    if two_factor_required(user) and not token.get("otp"):
        return (
            "otp_required",
            "Your role requires two-factor authentication; sign in with your code.",
        )
    return None


def user_tokens_revoke(*, user: Any) -> int:
    """Blacklist every outstanding refresh token of the user (role change, deactivation...)."""
    outstanding = OutstandingToken.objects.filter(user=user, blacklistedtoken__isnull=True)
    return len(
        BlacklistedToken.objects.bulk_create(
            [BlacklistedToken(token=row) for row in outstanding], ignore_conflicts=True
        )
    )


def access_token_revoke(*, jti: str, expires_at: int) -> None:
    ttl = max(int(expires_at - timezone.now().timestamp()), 1)
    cache.set(f"{DENYLIST_PREFIX}{jti}", 1, timeout=ttl)


def access_token_is_revoked(*, jti: str) -> bool:
    return cache.get(f"{DENYLIST_PREFIX}{jti}") is not None
