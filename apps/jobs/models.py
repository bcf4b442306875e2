from __future__ import annotations

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator, RegexValidator
from django.db import models

from apps.core.models import TimeStampedModel
from apps.vendors import catalog


class Status(models.TextChoices):
    """Shared by jobs and parts; a job's status follows its parts (apps/jobs/lifecycle.py)."""

    SUBMITTED = "submitted", "Submitted"
    VALIDATED = "validated", "Validated"
    SCHEDULED = "scheduled", "Scheduled"
    ASSIGNED = "assigned", "Assigned"
    IN_PROGRESS = "in_progress", "In progress"
    COMPLETED = "completed", "Completed"
    FAILED = "failed", "Failed"
    CANCELLED = "cancelled", "Cancelled"


class CadFile(TimeStampedModel):
    """An uploaded part model with what the server measured in it (mm, cm3, cm2)."""

    class Format(models.TextChoices):
        STL = "stl", "STL"
        OBJ = "obj", "OBJ"
        STEP = "step", "STEP"
        GCODE = "gcode", "G-code"

    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    file = models.FileField(upload_to="cad/%Y/%m/")
    original_name = models.CharField(max_length=255)
    format = models.CharField(max_length=8, choices=Format.choices)
    size_bytes = models.PositiveBigIntegerField()
    sha256 = models.CharField(max_length=64)
    # measured from the mesh; for STEP, declared by the uploader
    size_x_mm = models.FloatField()
    size_y_mm = models.FloatField()
    size_z_mm = models.FloatField()
    volume_cm3 = models.FloatField(null=True, blank=True)
    surface_area_cm2 = models.FloatField(null=True, blank=True)
    watertight = models.BooleanField(default=False)
    triangles = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return self.original_name


class Job(TimeStampedModel):
    Status = Status

    class Timing(models.TextChoices):
        """When the scheduler may run the job's parts. The energy-aware choices need a deadline:
        they move the parts into cheaper and greener hours before it, never past it."""

        ASAP = "asap", "As soon as possible"
        BALANCED = "balanced", "Cheaper and greener hours before the deadline"
        LOWEST_CARBON = "lowest_carbon", "Lowest carbon before the deadline"

    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="jobs"
    )
    organization = models.ForeignKey(
        "users.Organization", on_delete=models.PROTECT, related_name="jobs"
    )
    title = models.CharField(max_length=200)
    priority = models.PositiveSmallIntegerField(
        default=5, validators=[MinValueValidator(1), MaxValueValidator(10)]
    )
    deadline = models.DateTimeField(null=True, blank=True)
    status = models.CharField(max_length=12, choices=Status.choices, default=Status.SUBMITTED)
    timing = models.CharField(max_length=16, choices=Timing.choices, default=Timing.ASAP)
    # duration_h, energy_kwh, material_g, material_cm3, cost {material, energy, machine_time,
    # platform_fee, total, currency}, earliest_completion, per part; see apps/jobs/estimates.py
    estimates = models.JSONField(default=dict, blank=True)
    metadata = models.JSONField(default=dict, blank=True)
    # where the designer wants the parts (proximity scoring); defaults to nothing
    latitude = models.FloatField(
        null=True, blank=True, validators=[MinValueValidator(-90), MaxValueValidator(90)]
    )
    longitude = models.FloatField(
        null=True, blank=True, validators=[MinValueValidator(-180), MaxValueValidator(180)]
    )
    template = models.ForeignKey(
        "jobs.JobTemplate", null=True, blank=True, on_delete=models.SET_NULL, related_name="jobs"
    )
    completed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["status", "priority"])]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(priority__gte=1, priority__lte=10), name="job_priority_1_10"
            )
        ]

    def __str__(self) -> str:
        return f"Job {self.pk}: {self.title}"

    @property
    def is_final(self) -> bool:
        return self.status in {Status.COMPLETED, Status.FAILED, Status.CANCELLED}


class Part(TimeStampedModel):
    Status = Status

    job = models.ForeignKey(Job, on_delete=models.CASCADE, related_name="parts")
    name = models.CharField(max_length=200)
    material = models.CharField(max_length=60)
    # the colour it must be made in (#rrggbb): it goes to a printer with that colour loaded
    colour_hex = models.CharField(
        max_length=7,
        blank=True,
        validators=[RegexValidator(r"^#[0-9a-f]{6}$", "A colour is #rrggbb (hex digits).")],
    )
    process = models.CharField(max_length=40)
    quantity = models.PositiveIntegerField(
        default=1, validators=[MinValueValidator(1), MaxValueValidator(10000)]
    )
    size_x_mm = models.FloatField(validators=[MinValueValidator(0.01)])
    size_y_mm = models.FloatField(validators=[MinValueValidator(0.01)])
    size_z_mm = models.FloatField(validators=[MinValueValidator(0.01)])
    volume_cm3 = models.FloatField(null=True, blank=True)
    surface_area_cm2 = models.FloatField(null=True, blank=True)
    complexity = models.PositiveSmallIntegerField(
        default=5, validators=[MinValueValidator(1), MaxValueValidator(10)]
    )
    cad_file = models.ForeignKey(
        CadFile, null=True, blank=True, on_delete=models.SET_NULL, related_name="parts"
    )
    batch_group = models.CharField(max_length=60, blank=True)
    # A long run of many units is split at submission into lots that run on different nodes.
    lot = models.PositiveSmallIntegerField(default=1)
    lots = models.PositiveSmallIntegerField(default=1)
    status = models.CharField(max_length=12, choices=Status.choices, default=Status.SUBMITTED)
    assigned_node = models.ForeignKey(
        "vendors.FabricationNode",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="parts",
    )
    progress_pct = models.FloatField(
        default=0.0, validators=[MinValueValidator(0), MaxValueValidator(100)]
    )
    quality_score = models.FloatField(
        null=True, blank=True, validators=[MinValueValidator(0), MaxValueValidator(1)]
    )
    failure_reason = models.CharField(max_length=500, blank=True)
    # duration_h, energy_kwh, material_g, ... from apps/jobs/estimates.py: what it should take
    estimates = models.JSONField(default=dict, blank=True)
    # The scheduler's plan for the part (set with assigned_node, cleared when it moves): when
    # it should start and finish there, when it was placed, and why (`placement`: reason,
    # scored candidates, weights, energy, skipped nodes; shown to people, read by no rule).
    planned_start = models.DateTimeField(null=True, blank=True)
    planned_finish = models.DateTimeField(null=True, blank=True)
    scheduled_at = models.DateTimeField(null=True, blank=True)
    # set when the plan holds the part back on purpose (cheaper, greener hours; the site's power
    # cap): the work API hands it out from then (less JOBS_START_TOLERANCE_MINUTES), not before
    hold_until = models.DateTimeField(null=True, blank=True)
    placement = models.JSONField(default=dict, blank=True)
    # nodes that must never be offered the part again (their vendor declined it, or it
    # broke down making it)
    declined_nodes = models.ManyToManyField(
        "vendors.FabricationNode", blank=True, related_name="declined_parts"
    )
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    # what the node said the part used when it finished (None: it did not say)
    reported_material_g = models.FloatField(null=True, blank=True)
    reported_waste_g = models.FloatField(null=True, blank=True)
    reported_energy_kwh = models.FloatField(null=True, blank=True)

    class Meta:
        ordering = ["job_id", "id"]
        indexes = [
            models.Index(fields=["status"]),
            models.Index(fields=["assigned_node", "status"]),
        ]

    @property
    def usage_report(self) -> dict[str, float]:
        """What the node reported, in the `part_finished` hook's `report` form."""
        figures = {
            "material_used_g": self.reported_material_g,
            "waste_g": self.reported_waste_g,
            "energy_kwh": self.reported_energy_kwh,
        }
        return {key: value for key, value in figures.items() if value is not None}

    @property
    def process_label(self) -> str:
        return catalog.process_label(self.process)

    @property
    def material_label(self) -> str:
        return catalog.material_label(self.material)

    def __str__(self) -> str:
        lot = f", lot {self.lot}/{self.lots}" if self.lots > 1 else ""
        return f"{self.name} x{self.quantity} ({self.material}, {self.process}{lot})"


class StatusChange(models.Model):
    """One transition of a job or of one of its parts: from, to, who (None = the platform),
    why, when. Written by the services in apps/jobs/services/ only."""

    job = models.ForeignKey(Job, on_delete=models.CASCADE, related_name="history")
    part = models.ForeignKey(
        Part, null=True, blank=True, on_delete=models.CASCADE, related_name="history"
    )
    from_status = models.CharField(max_length=12, choices=Status.choices, blank=True)
    to_status = models.CharField(max_length=12, choices=Status.choices)
    by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    reason = models.CharField(max_length=500)
    at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["at", "id"]

    def __str__(self) -> str:
        what = f"part {self.part_id}" if self.part_id else f"job {self.job_id}"
        return f"{what}: {self.from_status or '-'} -> {self.to_status}"


class JobTemplate(TimeStampedModel):
    """A saved part set with parameters. `parts` holds part specs whose sizes scale with the
    `scale` parameter and whose quantities multiply by `quantity`; `parameters` gives each
    parameter's default, min and max."""

    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="job_templates"
    )
    organization = models.ForeignKey(
        "users.Organization", on_delete=models.PROTECT, related_name="job_templates"
    )
    name = models.CharField(max_length=200)
    description = models.TextField(blank=True)
    parameters = models.JSONField(default=dict, blank=True)
    parts = models.JSONField(default=list)

    class Meta:
        ordering = ["name", "id"]

    def __str__(self) -> str:
        return self.name
