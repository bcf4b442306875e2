from __future__ import annotations

import factory

from apps.core.models import AuditLog


class AuditLogFactory(factory.django.DjangoModelFactory[AuditLog]):
    """An audit entry written directly; the app writes its own with `apps.core.audit.audit_log`."""

    class Meta:
        model = AuditLog

    action = AuditLog.Action.LOGIN_FAILURE
    actor_email = factory.Sequence(lambda n: f"user{n}@example.test")
