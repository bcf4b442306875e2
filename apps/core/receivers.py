"""Audit entries for Django's authentication signals (every login path sends them)."""

from __future__ import annotations

from typing import Any

from django.contrib.auth.signals import user_logged_in, user_logged_out, user_login_failed
from django.dispatch import receiver

from apps.core.audit import audit_log
from apps.core.models import AuditLog


@receiver(user_logged_in, dispatch_uid="audit-login")
def _audit_login(sender: Any, request: Any, user: Any, **kwargs: Any) -> None:
    audit_log(action=AuditLog.Action.LOGIN_SUCCESS, actor=user, request=request)


@receiver(user_login_failed, dispatch_uid="audit-login-failed")
def _audit_login_failed(
    sender: Any, credentials: dict[str, Any], request: Any = None, **kw: Any
) -> None:
    email = str(credentials.get("email") or credentials.get("username") or "")[:254]
    audit_log(action=AuditLog.Action.LOGIN_FAILURE, request=request, actor_email=email)


@receiver(user_logged_out, dispatch_uid="audit-logout")
def _audit_logout(sender: Any, request: Any, user: Any, **kwargs: Any) -> None:
    if user is not None:
        audit_log(action=AuditLog.Action.LOGOUT, actor=user, request=request)
