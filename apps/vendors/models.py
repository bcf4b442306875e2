from __future__ import annotations

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models

from apps.core.models import TimeStampedModel
from apps.vendors import catalog


class VendorProfile(TimeStampedModel):
    class Verification(models.TextChoices):
        UNVERIFIED = "unverified", "Unverified"
        PENDING = "pending", "Pending review"
        VERIFIED = "verified", "Verified"
        REJECTED = "rejected", "Rejected"

    organization = models.OneToOneField(
        "users.Organization", on_delete=models.CASCADE, related_name="vendor_profile"
    )
    description = models.TextField(blank=True)
    certifications = models.JSONField(default=list, blank=True)  # e.g. ["ISO 9001", "AS9100"]
    verification_status = models.CharField(
        max_length=12, choices=Verification.choices, default=Verification.UNVERIFIED
    )
    contact_name = models.CharField(max_length=150, blank=True)
    contact_email = models.EmailField(blank=True)
    contact_phone = models.CharField(max_length=40, blank=True)
    website = models.URLField(blank=True)

    class Meta:
        ordering = ["organization__name"]

    def __str__(self) -> str:
        return f"Vendor profile of {self.organization}"


class FabricationNode(TimeStampedModel):
    class Kind(models.TextChoices):
        FDM_PRINTER = "fdm_printer", "FDM printer"
        SLA_PRINTER = "sla_printer", "SLA printer"
        SLS_PRINTER = "sls_printer", "SLS printer"
        CNC_MILL = "cnc_mill", "CNC mill"
        CNC_LATHE = "cnc_lathe", "CNC lathe"
        LASER_CUTTER = "laser_cutter", "Laser cutter"
        ROBOT_CELL = "robot_cell", "Robot cell"
        INSPECTION = "inspection", "Inspection"

    class Status(models.TextChoices):
        REGISTERED = "registered", "Registered"
        CONFIGURED = "configured", "Configured"
        IDLE = "idle", "Idle"
        ASSIGNED = "assigned", "Assigned"
        EXECUTING = "executing", "Executing"
        MAINTENANCE = "maintenance", "Maintenance"
        DECOMMISSIONED = "decommissioned", "Decommissioned"

    class Approval(models.TextChoices):
        PENDING = "pending", "Pending approval"
        APPROVED = "approved", "Approved"
        REJECTED = "rejected", "Rejected"

    vendor = models.ForeignKey("users.Organization", on_delete=models.PROTECT, related_name="nodes")
    site = models.ForeignKey(
        "users.Organization",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="operated_nodes",
        help_text="The operator site where the machine stands (its operators manage it).",
    )
    name = models.CharField(max_length=120)
    kind = models.CharField(max_length=20, choices=Kind.choices)
    # catalogue codes (apps/vendors/catalog.py): ["fdm"], ["milling", "drilling"]; values kept
    # from before the catalogue that it does not know stay, and capability_problems names them
    processes = models.JSONField(default=list, blank=True)
    materials = models.JSONField(default=list, blank=True)  # ["pla", "petg"]
    build_x_mm = models.FloatField(validators=[MinValueValidator(1), MaxValueValidator(10000)])
    build_y_mm = models.FloatField(validators=[MinValueValidator(1), MaxValueValidator(10000)])
    build_z_mm = models.FloatField(validators=[MinValueValidator(1), MaxValueValidator(10000)])
    precision_mm = models.FloatField(
        validators=[MinValueValidator(0.0001), MaxValueValidator(10)], default=0.1
    )
    latitude = models.FloatField(
        null=True, blank=True, validators=[MinValueValidator(-90), MaxValueValidator(90)]
    )
    longitude = models.FloatField(
        null=True, blank=True, validators=[MinValueValidator(-180), MaxValueValidator(180)]
    )
    software_version = models.CharField(max_length=60, blank=True)
    rated_power_kw = models.FloatField(
        validators=[MinValueValidator(0.001), MaxValueValidator(10000)]
    )
    requires_confirmation = models.BooleanField(
        default=False,
        help_text="The vendor accepts or declines each part before this node takes it.",
    )
    # A printer whose finished part stays on the bed: after each part it waits for someone (or
    # the printer's own part ejector) to confirm the bed is clear before it takes the next one.
    bed_clear_required = models.BooleanField(
        default=False,
        help_text="After each part someone confirms the bed (build plate) is clear before the "
        "next part starts.",
    )
    bed_clear_pending_since = models.DateTimeField(null=True, blank=True)
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.REGISTERED)
    approval = models.CharField(max_length=10, choices=Approval.choices, default=Approval.PENDING)
    approval_comment = models.TextField(blank=True)
    approved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    approved_at = models.DateTimeField(null=True, blank=True)
    registered_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    # the managed edge gateway that polls this machine (one at most)
    gateway = models.ForeignKey(
        "vendors.Gateway", on_delete=models.SET_NULL, null=True, blank=True, related_name="nodes"
    )

    class Meta:
        ordering = ["vendor__name", "name"]
        constraints = [
            models.UniqueConstraint(fields=["vendor", "name"], name="unique_node_name_per_vendor")
        ]
        indexes = [models.Index(fields=["approval", "status"])]

    def __str__(self) -> str:
        return f"{self.name} ({self.get_kind_display()})"

    @property
    def is_approved(self) -> bool:
        return self.approval == self.Approval.APPROVED

    @property
    def capability_problems(self) -> list[str]:
        """Why this node can take no job (or part of what it lists is no use), for its vendor."""
        return catalog.node_capability_problems(
            processes=self.processes,
            materials=self.materials,
            build_mm=(self.build_x_mm, self.build_y_mm, self.build_z_mm),
        )

    @property
    def process_labels(self) -> list[str]:
        return [catalog.process_label(p) for p in self.processes]

    @property
    def material_labels(self) -> list[str]:
        return [catalog.material_label(m) for m in self.materials]


class NodeStatusChange(models.Model):
    """One lifecycle transition: from, to, who, why, when. Written by node_transition only."""

    node = models.ForeignKey(FabricationNode, on_delete=models.CASCADE, related_name="status_log")
    from_status = models.CharField(max_length=20, choices=FabricationNode.Status.choices)
    to_status = models.CharField(max_length=20, choices=FabricationNode.Status.choices)
    by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    reason = models.CharField(max_length=500)
    at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["-at", "-id"]

    def __str__(self) -> str:
        return f"{self.node_id}: {self.from_status} -> {self.to_status}"


class NodeConfigProfile(models.Model):
    """Every saved configuration of a node, numbered; the highest version is the current one."""

    node = models.ForeignKey(FabricationNode, on_delete=models.CASCADE, related_name="configs")
    version = models.PositiveIntegerField()
    config = models.JSONField()
    message = models.CharField(max_length=300, blank=True)
    author = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    rolled_back_from = models.PositiveIntegerField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["node", "-version"]
        constraints = [
            models.UniqueConstraint(fields=["node", "version"], name="unique_config_version")
        ]

    def __str__(self) -> str:
        return f"{self.node_id} config v{self.version}"


class IssuedToken(TimeStampedModel):
    """A token issued to a machine or a gateway. Only its SHA-256 is stored; the token is shown
    once. The prefix (first characters) finds the row without scanning every hash."""

    prefix = models.CharField(max_length=12, db_index=True)
    token_hash = models.CharField(max_length=64, unique=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    revoked_at = models.DateTimeField(null=True, blank=True)
    last_used_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        abstract = True
        ordering = ["-created_at"]

    @property
    def is_active(self) -> bool:
        return self.revoked_at is None


class DeviceCredential(IssuedToken):
    """A node's device token (what its gateway sends telemetry and work reports with)."""

    node = models.ForeignKey(
        FabricationNode, on_delete=models.CASCADE, related_name="device_credentials"
    )
    label = models.CharField(max_length=100, blank=True)

    class Meta(IssuedToken.Meta):
        pass

    def __str__(self) -> str:
        return f"{self.prefix}… for node {self.node_id}"


class EdgeRelease(models.Model):
    """A release of the gateway software: a wheel of the project's `edge/` package, stored with
    the SHA-256 the gateway checks before installing it (apps/vendors/edge_releases.py builds
    and checks one; edge/software.py installs it). Rollouts ship it like forwarding settings."""

    version = models.CharField(max_length=40, unique=True)  # PEP 440, as in the wheel's name
    wheel = models.FileField(upload_to="edge-releases/")
    sha256 = models.CharField(max_length=64)
    size_bytes = models.PositiveIntegerField()
    notes = models.TextField(blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"imewe-edge {self.version}"

    @property
    def software_version(self) -> str:
        """What a gateway running this release reports (edge/software.py)."""
        return f"imewe-edge/{self.version}"


class Gateway(TimeStampedModel):
    """An edge gateway under management: it pulls its configuration from the platform (built
    from its nodes' configuration profiles and its own forwarding settings) and reports what it
    applied and how it is doing. `nodes` (FabricationNode.gateway) are the machines it serves."""

    vendor = models.ForeignKey(
        "users.Organization", on_delete=models.PROTECT, related_name="gateways"
    )
    site = models.ForeignKey(
        "users.Organization",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="operated_gateways",
    )
    name = models.CharField(max_length=120)
    tags = models.JSONField(default=list, blank=True)  # ["line-2", "canary"]
    # forwarding settings sent in its configuration (apps/vendors/gateway_config.py)
    forwarding = models.JSONField(default=dict, blank=True)
    # settings a running rollout ships to this gateway, over `forwarding` (apps/vendors/rollouts.py)
    rollout_overlay = models.JSONField(default=dict, blank=True)
    # the gateway software its configuration names: its own (kept after a rollout), or the one a
    # running rollout ships (which wins while set); neither: it runs what it was installed with
    software_release = models.ForeignKey(
        EdgeRelease, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    rollout_release = models.ForeignKey(
        EdgeRelease, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    # what the gateway last reported (POST /api/v1/gateway/status/)
    applied_version = models.PositiveIntegerField(null=True, blank=True)
    apply_error = models.TextField(blank=True)
    health = models.JSONField(default=dict, blank=True)
    software_version = models.CharField(max_length=60, blank=True)
    last_seen_at = models.DateTimeField(null=True, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        ordering = ["vendor__name", "name"]
        constraints = [
            models.UniqueConstraint(
                fields=["vendor", "name"], name="unique_gateway_name_per_vendor"
            )
        ]

    def __str__(self) -> str:
        return self.name


class GatewayCredential(IssuedToken):
    """A gateway's token, as DeviceCredential is for a node. It reads the gateway's own
    configuration and commands and obtains device tokens for the gateway's nodes, nothing
    else."""

    gateway = models.ForeignKey(Gateway, on_delete=models.CASCADE, related_name="credentials")

    class Meta(IssuedToken.Meta):
        pass

    def __str__(self) -> str:
        return f"{self.prefix}… for gateway {self.gateway_id}"


class GatewayConfigVersion(models.Model):
    """Each distinct configuration document the platform built for a gateway, numbered. A
    document is rebuilt on every pull; a new version is stored only when its content changed."""

    gateway = models.ForeignKey(Gateway, on_delete=models.CASCADE, related_name="config_versions")
    version = models.PositiveIntegerField()
    digest = models.CharField(max_length=64)  # SHA-256 of the canonical document body
    document = models.JSONField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["gateway", "-version"]
        constraints = [
            models.UniqueConstraint(
                fields=["gateway", "version"], name="unique_gateway_config_version"
            )
        ]

    def __str__(self) -> str:
        return f"gateway {self.gateway_id} config v{self.version}"


class NodeCommand(TimeStampedModel):
    """A remote command to a machine, carried by the gateway that serves its node: pause,
    resume, stop, or a setpoint the node's device map declares writable. The gateway fetches
    pending commands when it polls (so a command waits for an offline gateway), applies them and
    acknowledges each with its outcome; one not finished by `expires_at` expires."""

    class Kind(models.TextChoices):
        PAUSE = "pause", "Pause"
        RESUME = "resume", "Resume"
        STOP = "stop", "Stop"
        SETPOINT = "setpoint", "Set a setpoint"

    class Status(models.TextChoices):
        PENDING = "pending", "Waiting for the gateway"
        DELIVERED = "delivered", "Delivered to the gateway"
        SUCCEEDED = "succeeded", "Applied"
        FAILED = "failed", "Failed"
        EXPIRED = "expired", "Timed out"

    node = models.ForeignKey(FabricationNode, on_delete=models.CASCADE, related_name="commands")
    gateway = models.ForeignKey(
        Gateway, on_delete=models.SET_NULL, null=True, blank=True, related_name="commands"
    )
    kind = models.CharField(max_length=10, choices=Kind.choices)
    setpoint = models.CharField(max_length=60, blank=True)
    value = models.FloatField(null=True, blank=True)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING)
    outcome = models.CharField(max_length=500, blank=True)
    issued_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    expires_at = models.DateTimeField()
    delivered_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["node", "status"])]

    def __str__(self) -> str:
        what = f"{self.setpoint}={self.value:g}" if self.kind == self.Kind.SETPOINT else self.kind
        return f"{what} for node {self.node_id}"

    @property
    def is_open(self) -> bool:
        return self.status in (self.Status.PENDING, self.Status.DELIVERED)


class Rollout(TimeStampedModel):
    """A change of forwarding settings or gateway software shipped to a vendor's gateways in
    waves (hawkBit's model): a wave starts when the share of the previous wave that applied it
    reaches `success_threshold_pct`; a wave whose failed share exceeds `error_threshold_pct`
    stops the rollout and its failed gateways are rolled back. apps/vendors/rollouts.py runs
    it."""

    class Status(models.TextChoices):
        RUNNING = "running", "Running"
        PAUSED = "paused", "Paused"
        CANCELLED = "cancelled", "Cancelled"
        STOPPED = "stopped", "Stopped at the error threshold"
        COMPLETED = "completed", "Completed"

    vendor = models.ForeignKey("users.Organization", on_delete=models.PROTECT, related_name="+")
    name = models.CharField(max_length=120)
    forwarding = models.JSONField()  # the settings shipped (gateway_config.forwarding_clean)
    # the gateway software shipped, if any (with or without settings)
    release = models.ForeignKey(
        EdgeRelease, on_delete=models.PROTECT, null=True, blank=True, related_name="rollouts"
    )
    target_site = models.ForeignKey(
        "users.Organization", on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    target_tags = models.JSONField(default=list, blank=True)  # a gateway needs all of them
    wave_sizes = models.JSONField()  # gateways per wave, e.g. [1, 5]; the last takes the rest
    success_threshold_pct = models.PositiveSmallIntegerField(
        validators=[MinValueValidator(1), MaxValueValidator(100)]
    )
    error_threshold_pct = models.PositiveSmallIntegerField(
        validators=[MinValueValidator(0), MaxValueValidator(100)]
    )
    current_wave = models.PositiveSmallIntegerField(default=1)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.RUNNING)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return self.name


class RolloutTarget(models.Model):
    class State(models.TextChoices):
        QUEUED = "queued", "Queued"
        DOWNLOADING = "downloading", "Downloading"
        APPLIED = "applied", "Applied"
        FAILED = "failed", "Failed"
        ROLLED_BACK = "rolled_back", "Rolled back"

    rollout = models.ForeignKey(Rollout, on_delete=models.CASCADE, related_name="targets")
    gateway = models.ForeignKey(Gateway, on_delete=models.CASCADE, related_name="rollout_targets")
    wave = models.PositiveSmallIntegerField()
    state = models.CharField(max_length=12, choices=State.choices, default=State.QUEUED)
    version = models.PositiveIntegerField(null=True, blank=True)  # the version carrying it
    error = models.TextField(blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["rollout", "wave", "gateway__name"]
        constraints = [
            models.UniqueConstraint(fields=["rollout", "gateway"], name="unique_rollout_target")
        ]

    def __str__(self) -> str:
        return f"{self.gateway_id} in rollout {self.rollout_id}: {self.state}"
