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


class DeviceCredential(TimeStampedModel):
    """A device token for an edge gateway. Only its SHA-256 is stored; the token is shown once.
    The prefix (first characters) finds the row without scanning every hash."""

    node = models.ForeignKey(
        FabricationNode, on_delete=models.CASCADE, related_name="device_credentials"
    )
    prefix = models.CharField(max_length=12, db_index=True)
    token_hash = models.CharField(max_length=64, unique=True)
    label = models.CharField(max_length=100, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    revoked_at = models.DateTimeField(null=True, blank=True)
    last_used_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.prefix}… for node {self.node_id}"

    @property
    def is_active(self) -> bool:
        return self.revoked_at is None
