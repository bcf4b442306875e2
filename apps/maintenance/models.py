from __future__ import annotations

from datetime import datetime

from django.conf import settings
from django.db import models
from django.db.models import Q

from apps.core.labels import label, unit
from apps.core.models import TimeStampedModel


class Severity(models.TextChoices):
    INFO = "info", "Info"
    WARNING = "warning", "Warning"
    CRITICAL = "critical", "Critical"


SEVERITY_RANK = {Severity.INFO: 0, Severity.WARNING: 1, Severity.CRITICAL: 2}


class ThresholdRule(TimeStampedModel):
    """A limit on one signal in one mode. A rule with neither node kind nor node is the platform
    default; one for a node kind overrides it for that kind, one for a node overrides both. Of
    the rules of one signal and mode the most specific is the one evaluated (a disabled one
    switches that mode off), so a signal may have a level rule and a rate rule at once."""

    class Mode(models.TextChoices):
        ABOVE = "above", "Value above the limit"
        BASELINE_RATIO = "baseline_ratio", "Value above the limit × the node's baseline"
        BELOW = "below", "Value below the limit"
        RATE = "rate", "Change per minute (either way) above the limit"
        RISE = "rise", "Rise per minute above the limit"

    signal = models.CharField(max_length=60)
    node_kind = models.CharField(max_length=20, blank=True)
    node = models.ForeignKey(
        "vendors.FabricationNode",
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="threshold_rules",
    )
    mode = models.CharField(max_length=20, choices=Mode.choices, default=Mode.ABOVE)
    warning = models.FloatField(null=True, blank=True)
    critical = models.FloatField(null=True, blank=True)
    # A level is left only once the value falls this share below its threshold, and entered
    # only once the value has stayed there this long: a signal hovering at a limit cannot flap.
    hysteresis_pct = models.FloatField(default=5.0)
    min_duration_s = models.FloatField(default=10.0)
    enabled = models.BooleanField(default=True)
    updated_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        ordering = ["signal", "mode", "node_kind", "node_id"]
        constraints = [
            models.UniqueConstraint(
                fields=["signal", "mode"],
                condition=Q(node__isnull=True, node_kind=""),
                name="one_default_rule_per_signal_mode",
            ),
            models.UniqueConstraint(
                fields=["signal", "mode", "node_kind"],
                condition=Q(node__isnull=True) & ~Q(node_kind=""),
                name="one_kind_rule_per_signal_mode",
            ),
            models.UniqueConstraint(
                fields=["signal", "mode", "node"],
                condition=Q(node__isnull=False),
                name="one_node_rule_per_signal_mode",
            ),
            models.CheckConstraint(
                condition=Q(node__isnull=True) | Q(node_kind=""),
                name="rule_scope_is_kind_or_node",
            ),
            models.CheckConstraint(
                condition=Q(warning__isnull=False) | Q(critical__isnull=False),
                name="rule_has_a_limit",
            ),
        ]

    def __str__(self) -> str:
        return f"{label(self.signal, 'signal')} {self.describe()}"

    @property
    def scope(self) -> str:
        if self.node_id:
            return "node"
        return "kind" if self.node_kind else "default"

    def describe(self) -> str:
        reading_unit = unit(self.signal)
        reading_unit = f" {reading_unit}" if reading_unit and reading_unit != "%" else reading_unit
        unit_text = {
            self.Mode.BASELINE_RATIO: " × baseline",
            self.Mode.RATE: f"{reading_unit}/min change",
            self.Mode.RISE: f"{reading_unit}/min rise",
        }.get(self.Mode(self.mode), reading_unit)
        sign = "<" if self.mode == self.Mode.BELOW else ">"
        limits = []
        if self.warning is not None:
            limits.append(f"warning {sign} {self.warning:g}{unit_text}")
        if self.critical is not None:
            limits.append(f"critical {sign} {self.critical:g}{unit_text}")
        where = {
            "node": f"node {self.node_id}",
            "kind": label(self.node_kind, "node_kind"),
            "default": "default",
        }
        return f"{', '.join(limits)} ({where[self.scope]})"


class SignalState(models.Model):
    """Where one signal of one node stands against its rule of one mode: the level it is at, a
    level it is heading for (and since when), and the open alert. Updated by the rule
    evaluation only."""

    node = models.ForeignKey(
        "vendors.FabricationNode", on_delete=models.CASCADE, related_name="signal_states"
    )
    signal = models.CharField(max_length=60)
    mode = models.CharField(
        max_length=20, choices=ThresholdRule.Mode.choices, default=ThresholdRule.Mode.ABOVE
    )
    level = models.CharField(max_length=10, default="normal")  # normal / warning / critical
    pending_level = models.CharField(max_length=10, blank=True)
    pending_since = models.DateTimeField(null=True, blank=True)
    alert = models.ForeignKey("Alert", null=True, blank=True, on_delete=models.SET_NULL)
    value = models.FloatField(null=True, blank=True)
    seen_at = models.DateTimeField(null=True, blank=True)
    # A `rate` rule's reference reading: the next rate is measured from it, once a minute apart.
    rate_from_value = models.FloatField(null=True, blank=True)
    rate_from_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["node", "signal", "mode"]
        constraints = [
            models.UniqueConstraint(
                fields=["node", "signal", "mode"], name="one_state_per_node_signal_mode"
            )
        ]

    def __str__(self) -> str:
        return f"{self.node_id} {self.signal} ({self.mode}): {self.level}"


class Alert(TimeStampedModel):
    """A signal out of its limits on one node, from the first reading past the limit until it
    is back within them. Repeated readings update it (count, last seen, peak) instead of adding
    rows; a rise from warning to critical raises its severity."""

    node = models.ForeignKey(
        "vendors.FabricationNode", on_delete=models.CASCADE, related_name="alerts"
    )
    signal = models.CharField(max_length=60)
    # the rule's mode: a rate or rise alert's value, peak and threshold are changes per minute
    mode = models.CharField(
        max_length=20, choices=ThresholdRule.Mode.choices, default=ThresholdRule.Mode.ABOVE
    )
    severity = models.CharField(max_length=10, choices=Severity.choices)
    value = models.FloatField()
    peak = models.FloatField()
    threshold = models.FloatField()
    rule = models.ForeignKey(ThresholdRule, null=True, blank=True, on_delete=models.SET_NULL)
    rule_text = models.CharField(max_length=200)
    first_seen = models.DateTimeField()
    last_seen = models.DateTimeField()
    count = models.PositiveIntegerField(default=1)
    resolved_at = models.DateTimeField(null=True, blank=True, db_index=True)

    class Meta:
        ordering = ["-last_seen", "-id"]
        indexes = [models.Index(fields=["node", "resolved_at"])]

    def __str__(self) -> str:
        return f"{self.node_id} {self.signal} {self.severity}"

    @property
    def is_open(self) -> bool:
        return self.resolved_at is None


class Ticket(TimeStampedModel):
    """A maintenance ticket, opened by the agent (or a person) for one issue on one node. The
    agent's repeated findings of the same issue update it (occurrences, latest evidence) for as
    long as it is unresolved, instead of opening another."""

    class Status(models.TextChoices):
        OPEN = "open", "Open"
        ACKNOWLEDGED = "acknowledged", "Acknowledged"
        IN_PROGRESS = "in_progress", "In progress"
        RESOLVED = "resolved", "Resolved"
        CLOSED = "closed", "Closed"

    class IssueType(models.TextChoices):
        OVERHEATING = "overheating", "Overheating"
        VIBRATION = "vibration", "Excessive vibration"
        POWER_SPIKE = "power_spike", "Power spike"
        SIGNAL_LIMIT = "signal_limit", "Signal out of limits"
        ANOMALY = "anomaly", "Anomalous behaviour"
        FAILURE_RISK = "failure_risk", "Failure predicted"
        LOW_RUL = "low_rul", "Remaining life below plan"
        OFFLINE = "offline", "Node offline"
        MACHINE_FAULT = "machine_fault", "Machine fault reported"
        OTHER = "other", "Other"

    node = models.ForeignKey(
        "vendors.FabricationNode", on_delete=models.CASCADE, related_name="tickets"
    )
    issue_type = models.CharField(max_length=20, choices=IssueType.choices)
    severity = models.CharField(max_length=10, choices=Severity.choices)
    status = models.CharField(max_length=15, choices=Status.choices, default=Status.OPEN)
    priority = models.PositiveSmallIntegerField(default=3)  # 1 (most urgent) .. 4
    title = models.CharField(max_length=200)
    evidence = models.JSONField(default=dict, blank=True)  # the latest: readings, scores, model
    suggested_action = models.TextField(blank=True)
    occurrences = models.PositiveIntegerField(default=1)
    last_seen = models.DateTimeField()
    opened_by_agent = models.BooleanField(default=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    assignee = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="maintenance_tickets",
    )
    acknowledged_at = models.DateTimeField(null=True, blank=True)
    resolved_at = models.DateTimeField(null=True, blank=True)
    closed_at = models.DateTimeField(null=True, blank=True)
    resolution = models.TextField(blank=True)
    # Set on resolving: did the machine actually fail? Confirmed failures label the platform's
    # own history for the failure model.
    was_failure = models.BooleanField(null=True, blank=True)

    class Meta:
        ordering = ["priority", "created_at", "id"]
        indexes = [
            models.Index(fields=["node", "issue_type", "status"]),
            models.Index(fields=["status", "priority"]),
        ]

    def __str__(self) -> str:
        return f"#{self.pk} {self.title}"

    @property
    def is_active(self) -> bool:
        return self.status in UNRESOLVED


UNRESOLVED = (Ticket.Status.OPEN, Ticket.Status.ACKNOWLEDGED, Ticket.Status.IN_PROGRESS)


class TicketEvent(models.Model):
    """A ticket's history: notes, status changes, assignments and the agent's new occurrences."""

    class Kind(models.TextChoices):
        OPENED = "opened", "Opened"
        NOTE = "note", "Note"
        STATUS = "status", "Status change"
        ASSIGNED = "assigned", "Assignment"
        OCCURRENCE = "occurrence", "Seen again"

    ticket = models.ForeignKey(Ticket, on_delete=models.CASCADE, related_name="events")
    kind = models.CharField(max_length=12, choices=Kind.choices)
    author = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    text = models.TextField(blank=True)
    from_status = models.CharField(max_length=15, blank=True)
    to_status = models.CharField(max_length=15, blank=True)
    at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["at", "id"]

    def __str__(self) -> str:
        return f"{self.ticket_id} {self.kind}"


class MaintenanceWindow(TimeStampedModel):
    """Time a node is taken out of service for maintenance. While active the node is in
    MAINTENANCE (the scheduler moves its work elsewhere); completing it records the work done
    and returns the node to IDLE."""

    class Kind(models.TextChoices):
        SCHEDULED = "scheduled", "Scheduled"
        PREDICTIVE = "predictive", "Predictive"
        EMERGENCY = "emergency", "Emergency"

    class Status(models.TextChoices):
        PLANNED = "planned", "Planned"
        ACTIVE = "active", "Active"
        COMPLETED = "completed", "Completed"
        CANCELLED = "cancelled", "Cancelled"

    node = models.ForeignKey(
        "vendors.FabricationNode", on_delete=models.CASCADE, related_name="maintenance_windows"
    )
    kind = models.CharField(max_length=12, choices=Kind.choices)
    status = models.CharField(max_length=12, choices=Status.choices, default=Status.PLANNED)
    starts_at = models.DateTimeField()
    ends_at = models.DateTimeField()
    reason = models.CharField(max_length=300)
    ticket = models.ForeignKey(
        Ticket, null=True, blank=True, on_delete=models.SET_NULL, related_name="windows"
    )
    work_done = models.TextField(blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    completed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    started_at = models.DateTimeField(null=True, blank=True)
    completed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["starts_at", "id"]
        constraints = [
            models.CheckConstraint(
                condition=Q(ends_at__gt=models.F("starts_at")), name="window_ends_after_start"
            )
        ]

    def __str__(self) -> str:
        return f"{self.node_id} {self.kind} {self.starts_at:%Y-%m-%d %H:%M}"

    def is_due(self, now: datetime) -> bool:
        return self.status == self.Status.PLANNED and self.starts_at <= now


class PredictedFigures(models.Model):
    """What the models predict for a node, held now (NodeHealth) and as history (Prediction)."""

    failure_probability = models.FloatField(null=True, blank=True)
    # The failure probability's 90% interval (the held-out failure rate of its calibration bin)
    # and what it rests on (model, raw value, smoothing, evidence floors, missing inputs).
    failure_low = models.FloatField(null=True, blank=True)
    failure_high = models.FloatField(null=True, blank=True)
    failure_evidence = models.JSONField(default=dict, blank=True)
    rul_hours = models.FloatField(null=True, blank=True)
    # The RUL in the node's unit ("h", or "cycles" for a node reporting a cycle counter), its
    # 5-95% interval, and what it rests on (the model's raw value, smoothing, evidence caps).
    rul_unit = models.CharField(max_length=6, blank=True)
    rul_value = models.FloatField(null=True, blank=True)
    rul_low = models.FloatField(null=True, blank=True)
    rul_high = models.FloatField(null=True, blank=True)
    rul_evidence = models.JSONField(default=dict, blank=True)
    vibration_hours_to_limit = models.FloatField(null=True, blank=True)

    class Meta:
        abstract = True


class NodeHealth(PredictedFigures):
    """The fleet monitor's latest view of one node: a health score 0-100 and its parts, whether
    the node is online (heard from within the last minutes) and the latest model outputs."""

    node = models.OneToOneField(
        "vendors.FabricationNode", on_delete=models.CASCADE, related_name="health"
    )
    score = models.FloatField(default=100.0)
    components = models.JSONField(default=dict, blank=True)  # what took points off, and how many
    online = models.BooleanField(default=False)
    last_seen = models.DateTimeField(null=True, blank=True)
    went_offline_at = models.DateTimeField(null=True, blank=True)
    anomaly_score = models.FloatField(null=True, blank=True)
    anomaly_threshold = models.FloatField(null=True, blank=True)
    anomaly_since = models.DateTimeField(null=True, blank=True)  # above threshold since
    planned_horizon_h = models.FloatField(
        default=168.0, help_text="Hours the node is planned to run before its next service."
    )
    # Seconds between two readings: configured, else learned (apps/maintenance/cadence.py)
    expected_cadence_s = models.FloatField(
        null=True,
        blank=True,
        help_text="Seconds between the node's readings, when known; learned from its "
        "telemetry otherwise. Offline and sustained anomalies are counted in these samples.",
    )
    cadence_s = models.FloatField(null=True, blank=True)  # learned by the fleet monitor
    computed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["score", "node_id"]

    def __str__(self) -> str:
        return f"{self.node_id}: {self.score:.0f}"

    @property
    def cadence(self) -> float | None:
        return self.expected_cadence_s or self.cadence_s


class Prediction(PredictedFigures):
    """One scoring of one node by the models, kept as history for charts and evidence."""

    node = models.ForeignKey(
        "vendors.FabricationNode", on_delete=models.CASCADE, related_name="predictions"
    )
    at = models.DateTimeField(db_index=True)
    anomaly_score = models.FloatField(null=True, blank=True)
    anomaly_threshold = models.FloatField(null=True, blank=True)
    models_used = models.JSONField(default=dict, blank=True)  # name -> version
    window = models.JSONField(default=dict, blank=True)  # from, to, points, levels

    class Meta:
        ordering = ["node", "-at"]
        indexes = [models.Index(fields=["node", "-at"])]

    def __str__(self) -> str:
        return f"{self.node_id} @ {self.at:%Y-%m-%d %H:%M}"


class HistorySet(TimeStampedModel):
    """Imported external history (a historian export) to train on before the platform has its
    own: labelled snapshots for the failure model, or run-to-failure units for the RUL model."""

    class Kind(models.TextChoices):
        FAILURES = "failures", "Labelled failures"
        RUN_TO_FAILURE = "run_to_failure", "Run to failure"

    class TimeUnit(models.TextChoices):
        SECONDS = "s", "Seconds (timestamps)"
        CYCLES = "cycles", "Cycles"

    name = models.CharField(max_length=200)
    kind = models.CharField(max_length=20, choices=Kind.choices)
    # `time` columns are seconds; a `cycle` column counts cycles, and models trained on the
    # history (RUL) then speak cycles
    time_unit = models.CharField(max_length=6, choices=TimeUnit.choices, default=TimeUnit.SECONDS)
    signals = models.JSONField(default=list)
    rows = models.PositiveIntegerField(default=0)
    units = models.PositiveIntegerField(default=0)
    source = models.CharField(max_length=300, blank=True)
    imported_by = models.CharField(max_length=150, blank=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.name} ({self.kind}, {self.rows} rows)"


class HistoryRow(models.Model):
    """One row of an imported history: the unit, its time (seconds from the unit's start or
    an absolute time), the numeric signals, and the label (failure flag or failure time)."""

    history = models.ForeignKey(HistorySet, on_delete=models.CASCADE, related_name="records")
    unit = models.CharField(max_length=100)
    t = models.FloatField()  # seconds, or cycles when the history's time_unit is cycles
    values = models.JSONField()  # signal -> number
    failed = models.BooleanField(null=True)  # failures
    failure_t = models.FloatField(null=True)  # run_to_failure: the unit's failure time

    class Meta:
        ordering = ["history", "unit", "t"]
        indexes = [models.Index(fields=["history", "unit", "t"])]

    def __str__(self) -> str:
        return f"{self.unit} @ {self.t}"
