from typing import Any

from django.contrib import admin
from django.http import HttpRequest

from apps.core.models import AuditLog, Notification, TrainedModel


@admin.register(AuditLog)
class AuditLogAdmin(admin.ModelAdmin[AuditLog]):
    """Read-only: the audit log is append-only from the application."""

    list_display = [
        "created_at",
        "actor_email",
        "action",
        "object_type",
        "object_repr",
        "ip_address",
    ]
    list_filter = ["action", "object_type", "created_at"]
    search_fields = ["actor_email", "object_repr", "object_id", "ip_address", "path"]
    date_hierarchy = "created_at"
    readonly_fields = [f.name for f in AuditLog._meta.fields]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(Notification)
class NotificationAdmin(admin.ModelAdmin[Notification]):
    list_display = ["created_at", "user", "level", "title", "read_at"]
    list_filter = ["level"]
    search_fields = ["title", "user__email"]
    raw_id_fields = ["user"]


@admin.register(TrainedModel)
class TrainedModelAdmin(admin.ModelAdmin[TrainedModel]):
    """The model registry, read-only (activation and rollback follow the registry's rules:
    apps.core.ml)."""

    list_display = ["name", "version", "algorithm", "is_active", "created_at", "decision"]
    list_filter = ["name", "is_active"]
    exclude = ["artifact"]
    readonly_fields = [f.name for f in TrainedModel._meta.fields if f.name != "artifact"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False
