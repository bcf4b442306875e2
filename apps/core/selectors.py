from __future__ import annotations

from typing import Any

from django.db.models import QuerySet

from apps.core.models import AuditLog, Notification


def notification_list(*, user: Any, unread_only: bool = False) -> QuerySet[Notification]:
    qs = Notification.objects.filter(user=user)
    return qs.filter(read_at__isnull=True) if unread_only else qs


def audit_log_list(
    *,
    action: str = "",
    actor: str = "",
    object_type: str = "",
    ip: str = "",
    since: Any = None,
    until: Any = None,
) -> QuerySet[AuditLog]:
    qs = AuditLog.objects.all()
    if action:
        qs = qs.filter(action=action)
    if actor:
        qs = qs.filter(actor_email__icontains=actor)
    if object_type:
        qs = qs.filter(object_type=object_type)
    if ip:
        qs = qs.filter(ip_address=ip)
    if since:
        qs = qs.filter(created_at__gte=since)
    if until:
        qs = qs.filter(created_at__lt=until)
    return qs
