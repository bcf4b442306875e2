from __future__ import annotations

from typing import Any

from django.conf import settings
from django.db import models


class TimeStampedModel(models.Model):
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        abstract = True


class AppendOnlyError(Exception):
    """Raised when application code tries to change or delete an append-only row."""


class AuditLog(models.Model):
    """Who did what, when, from where. Append-only: the app never updates or deletes a row,
    and on PostgreSQL and SQLite a trigger refuses UPDATE and DELETE (migration 0002)."""

    class Action(models.TextChoices):
        LOGIN_SUCCESS = "auth.login", "Login"
        LOGIN_FAILURE = "auth.login_failed", "Login failed"
        LOGIN_LOCKED = "auth.locked_out", "Locked out"
        LOGOUT = "auth.logout", "Logout"
        TWO_FACTOR_ENABLED = "auth.2fa_enabled", "2FA enabled"
        TWO_FACTOR_DISABLED = "auth.2fa_disabled", "2FA disabled"
        PASSWORD_CHANGED = "auth.password_changed", "Password changed"
        ROLE_CHANGED = "perm.role_changed", "Role changed"
        PERMISSION_CHANGED = "perm.changed", "Permission changed"
        PERMISSION_DENIED = "perm.denied", "Permission denied"
        CREATE = "object.create", "Created"
        UPDATE = "object.update", "Updated"
        DELETE = "object.delete", "Deleted"
        PURCHASE = "marketplace.purchase", "Marketplace purchase"
        REFUND = "marketplace.refund", "Marketplace refund"
        PAYOUT = "marketplace.payout", "Marketplace payout"

    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        # The log is append-only: deleting a user leaves the id (and actor_email) as they were.
        on_delete=models.DO_NOTHING,
        related_name="+",
        db_constraint=False,
    )
    actor_email = models.CharField(max_length=254, blank=True)
    action = models.CharField(max_length=40, choices=Action.choices, db_index=True)
    object_type = models.CharField(max_length=100, blank=True, db_index=True)
    object_id = models.CharField(max_length=64, blank=True)
    object_repr = models.CharField(max_length=200, blank=True)
    changes = models.JSONField(default=dict, blank=True)
    ip_address = models.GenericIPAddressField(null=True, blank=True)
    user_agent = models.CharField(max_length=300, blank=True)
    path = models.CharField(max_length=300, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["object_type", "object_id"])]

    def __str__(self) -> str:
        return f"{self.created_at:%Y-%m-%d %H:%M:%S} {self.actor_email or '-'} {self.action}"

    def save(self, *args: Any, **kwargs: Any) -> None:
        if self.pk is not None and not self._state.adding:
            raise AppendOnlyError("Audit log entries cannot be changed.")
        super().save(*args, **kwargs)

    def delete(self, *args: Any, **kwargs: Any) -> tuple[int, dict[str, int]]:
        raise AppendOnlyError("Audit log entries cannot be deleted.")

    def changes_summary(self) -> list[str]:
        """Readable lines in words: `Field: old → new` for updates, `Field: value` otherwise
        (apps.core.audit.audit_change_lines)."""
        from apps.core.audit import audit_change_lines

        return audit_change_lines(self)

    def object_label(self) -> str:
        """ "Fabrication node" for "vendors.fabricationnode"."""
        from apps.core.audit import audit_object_label

        return audit_object_label(self.object_type)


class Notification(TimeStampedModel):
    """A message for one user, stored and pushed live to /ws/notifications/."""

    class Level(models.TextChoices):
        INFO = "info", "Info"
        SUCCESS = "success", "Success"
        WARNING = "warning", "Warning"
        CRITICAL = "critical", "Critical"

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="notifications"
    )
    level = models.CharField(max_length=10, choices=Level.choices, default=Level.INFO)
    title = models.CharField(max_length=200)
    body = models.TextField(blank=True)
    link = models.CharField(max_length=300, blank=True)
    read_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["user", "read_at"])]

    def __str__(self) -> str:
        return f"{self.user_id}: {self.title}"

    def as_message(self) -> dict[str, Any]:
        return {
            "type": "notification",
            "id": self.pk,
            "level": self.level,
            "title": self.title,
            "body": self.body,
            "link": self.link,
            "created_at": self.created_at.isoformat(),
        }


class TrainedModel(models.Model):
    """The ML model registry: every trained model of every kind ("jobs.duration",
    "maintenance.failure", ...) with its artifact, what it was trained on and how it scored on
    held-out data. One version per name is active; a new one becomes active only if it is not
    worse (`apps.core.ml.model_register`), and an older one can be brought back."""

    name = models.CharField(max_length=80)
    version = models.PositiveIntegerField()
    algorithm = models.CharField(max_length=80)
    artifact = models.BinaryField()  # the library's own format (no pickle for xgboost)
    features = models.JSONField(default=list)
    metrics = models.JSONField(default=dict)  # held-out scores, and the baseline's on same rows
    training = models.JSONField(default=dict)  # rows, held-out rows, data range, parameters
    is_active = models.BooleanField(default=False)
    decision = models.CharField(max_length=300, blank=True)  # why it was (not) activated
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    activated_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["name", "-version"]
        constraints = [
            models.UniqueConstraint(fields=["name", "version"], name="unique_model_version"),
            models.UniqueConstraint(
                fields=["name"],
                condition=models.Q(is_active=True),
                name="one_active_model_per_name",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.name} v{self.version}{' (active)' if self.is_active else ''}"
