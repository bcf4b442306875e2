"""Events the platform raises, the channels people and organizations receive them on, the
rules that say which event at which severity goes to which channel, and one delivery row per
(event, channel): the idempotency key and the delivery log at once."""

from __future__ import annotations

from django.conf import settings
from django.db import models

from apps.core.encryption import EncryptedTextField
from apps.core.models import TimeStampedModel


class Severity(models.TextChoices):
    INFO = "info", "Info"
    WARNING = "warning", "Warning"
    CRITICAL = "critical", "Critical"


SEVERITY_RANK = {Severity.INFO: 0, Severity.WARNING: 1, Severity.CRITICAL: 2}


class EventKind(models.TextChoices):
    """The catalogue. Each kind is raised by the app that owns what happened."""

    TICKET_OPENED = "ticket_opened", "Ticket opened"
    TICKET_ESCALATED = "ticket_escalated", "Ticket escalated"
    TICKET_RESOLVED = "ticket_resolved", "Ticket resolved"
    NODE_OFFLINE = "node_offline", "Node offline"
    NODE_AWAITING_APPROVAL = "node_awaiting_approval", "Node awaiting approval"
    JOB_FINISHED = "job_finished", "Job finished"
    JOB_FAILED = "job_failed", "Job failed"
    PURCHASE_ORDER_CREATED = "purchase_order_created", "Purchase order created"
    STOCK_OUT_FORECAST = "stock_out_forecast", "Stock-out forecast"
    SPOOL_LOW = "spool_low", "Spool running low"
    MODEL_PROMOTED = "model_promoted", "Model promoted"
    ESCALATION = "notify_escalation", "Unacknowledged critical alert"
    DIGEST = "notify_digest", "Grouped alerts"
    TEST = "notify_test", "Test message"


class Event(TimeStampedModel):
    """Something that happened, once, whoever hears about it. `subject` names the thing it is
    about ("ticket:12", "node:4"): deliveries of one subject to one channel go out in order,
    and repeats of one subject within the grouping window become one digest."""

    kind = models.CharField(max_length=40, choices=EventKind.choices, db_index=True)
    severity = models.CharField(max_length=10, choices=Severity.choices)
    title = models.CharField(max_length=200)
    body = models.TextField(blank=True)
    link = models.CharField(max_length=300, blank=True)
    subject = models.CharField(max_length=80, blank=True)
    data = models.JSONField(default=dict, blank=True)
    organizations = models.ManyToManyField(
        "users.Organization", related_name="notify_events", blank=True
    )
    users = models.ManyToManyField(settings.AUTH_USER_MODEL, related_name="+", blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"{self.kind} #{self.pk}: {self.title}"


class Channel(TimeStampedModel):
    """Where messages go. Belongs to one user (their own channels) or one organization (edited
    by its owners). Secrets (the webhook's signing key, the Apprise URL, which carries the chat
    service's token) live in `secret` only, never shown back in full."""

    class Kind(models.TextChoices):
        IN_APP = "in_app", "In-app"
        EMAIL = "email", "E-mail"
        WEBHOOK = "webhook", "Signed webhook"
        APPRISE = "apprise", "Chat (Apprise)"
        WEB_PUSH = "web_push", "Browser push"

    kind = models.CharField(max_length=10, choices=Kind.choices)
    name = models.CharField(max_length=100)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="notify_channels",
    )
    organization = models.ForeignKey(
        "users.Organization",
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="notify_channels",
    )
    # Not secret: the webhook's URL, an e-mail address.
    target = models.CharField(max_length=500, blank=True)
    # Secret: the webhook's signing key, the Apprise URL. Encrypted at rest (FIELD_ENCRYPTION_KEYS,
    # apps/core/encryption.py): the column holds a Fernet token, never the value.
    secret = EncryptedTextField(blank=True)
    is_active = models.BooleanField(default=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        ordering = ["name", "id"]
        constraints = [
            models.CheckConstraint(
                condition=(models.Q(user__isnull=True) ^ models.Q(organization__isnull=True)),
                name="notify_channel_one_owner",
            )
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.kind})"

    def secret_hint(self) -> str:
        """What the pages and the API show of the secret: set or not, and its last 4."""
        if not self.secret:
            return ""
        return "•" * 8 + self.secret[-4:] if len(self.secret) >= 12 else "•" * 8


class Rule(TimeStampedModel):
    """A preference: events of `event_kind` ("" = every kind) at `min_severity` or above go to
    `channel`."""

    channel = models.ForeignKey(Channel, on_delete=models.CASCADE, related_name="rules")
    event_kind = models.CharField(max_length=40, choices=EventKind.choices, blank=True)
    min_severity = models.CharField(
        max_length=10, choices=Severity.choices, default=Severity.WARNING
    )

    class Meta:
        ordering = ["channel", "event_kind"]
        constraints = [
            models.UniqueConstraint(
                fields=["channel", "event_kind"], name="notify_rule_one_per_kind"
            )
        ]

    def __str__(self) -> str:
        return f"{self.event_kind or 'any'} >= {self.min_severity} -> {self.channel_id}"


class Delivery(TimeStampedModel):
    """One event on one channel: unique, so a repeated or retried task never sends twice."""

    class Status(models.TextChoices):
        PENDING = "pending", "Waiting to send"
        SENT = "sent", "Sent"
        HELD = "held", "Held for a digest"
        GROUPED = "grouped", "Sent in a digest"
        FAILED = "failed", "Gave up"

    event = models.ForeignKey(Event, on_delete=models.CASCADE, related_name="deliveries")
    channel = models.ForeignKey(Channel, on_delete=models.CASCADE, related_name="deliveries")
    subject = models.CharField(max_length=80, blank=True)  # the event's, for ordered draining
    status = models.CharField(
        max_length=10, choices=Status.choices, default=Status.PENDING, db_index=True
    )
    attempts = models.PositiveIntegerField(default=0)
    response_code = models.PositiveIntegerField(null=True, blank=True)
    latency_ms = models.PositiveIntegerField(null=True, blank=True)
    last_error = models.CharField(max_length=500, blank=True)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    hold_until = models.DateTimeField(null=True, blank=True)  # HELD: for a digest, quiet hours
    sent_at = models.DateTimeField(null=True, blank=True)
    digest = models.ForeignKey(
        Event, null=True, blank=True, on_delete=models.SET_NULL, related_name="grouped"
    )

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["event", "channel"], name="notify_delivery_once")
        ]
        indexes = [models.Index(fields=["channel", "subject", "status"])]

    def __str__(self) -> str:
        return f"event {self.event_id} -> channel {self.channel_id}: {self.status}"


class PushSubscription(TimeStampedModel):
    """A browser's Web Push endpoint for one user (what PushManager.subscribe() returned)."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="push_subscriptions"
    )
    endpoint = models.URLField(max_length=1000, unique=True)
    p256dh = models.CharField(max_length=200)
    auth = models.CharField(max_length=100)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"{self.user_id}: {self.endpoint[:60]}"


class QuietHours(TimeStampedModel):
    """A person's nightly quiet period: alerts below critical to their own channels wait until
    it ends (and go out then, grouped per subject); critical ones are never held."""

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="quiet_hours"
    )
    start = models.TimeField()
    end = models.TimeField()
    timezone = models.CharField(max_length=64, default="UTC")

    class Meta:
        ordering = ["user"]

    def __str__(self) -> str:
        return f"{self.user_id}: {self.start:%H:%M}-{self.end:%H:%M} {self.timezone}"


class OnCallRota(TimeStampedModel):
    """Who is called, in order, when a critical alert of a site is not acknowledged in time;
    after the last of them, the platform admins."""

    organization = models.OneToOneField(
        "users.Organization", on_delete=models.CASCADE, related_name="on_call_rota"
    )
    members = models.ManyToManyField(
        settings.AUTH_USER_MODEL, through="OnCallSlot", related_name="+", blank=True
    )
    ack_minutes = models.PositiveIntegerField(default=15)

    class Meta:
        ordering = ["organization"]

    def __str__(self) -> str:
        return f"on call at {self.organization_id}"


class OnCallSlot(models.Model):
    rota = models.ForeignKey(OnCallRota, on_delete=models.CASCADE, related_name="slots")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    position = models.PositiveSmallIntegerField()

    class Meta:
        ordering = ["rota", "position"]
        constraints = [
            models.UniqueConstraint(fields=["rota", "position"], name="notify_slot_position"),
            models.UniqueConstraint(fields=["rota", "user"], name="notify_slot_user"),
        ]

    def __str__(self) -> str:
        return f"{self.rota_id} #{self.position}: {self.user_id}"


class Escalation(TimeStampedModel):
    """A critical alert waiting for someone to acknowledge it. `key` names the thing ("ticket:12")
    whose owning app answers "acknowledged yet?" through a registered check."""

    key = models.CharField(max_length=80, unique=True)
    event = models.ForeignKey(Event, on_delete=models.CASCADE, related_name="escalations")
    organization = models.ForeignKey(
        "users.Organization", null=True, on_delete=models.SET_NULL, related_name="+"
    )
    step = models.PositiveSmallIntegerField(default=0)  # people called so far
    next_at = models.DateTimeField(db_index=True)
    done_at = models.DateTimeField(null=True, blank=True)
    outcome = models.CharField(max_length=200, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"{self.key} step {self.step}"
