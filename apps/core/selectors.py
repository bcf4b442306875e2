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


def audit_object_types(*, current: str = "") -> list[tuple[str, str]]:
    """(type, label) of every kind of object the log names, by label, for the log's filter;
    `current` (a filter value from the address) is kept even when the log holds none."""
    from apps.core.audit import audit_object_label

    types = set(
        AuditLog.objects.exclude(object_type="")
        .order_by()
        .values_list("object_type", flat=True)
        .distinct()
    )
    if current:
        types.add(current)
    return sorted(((t, audit_object_label(t)) for t in types), key=lambda pair: pair[1])
