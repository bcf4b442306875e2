"""Digital twins: the shared, versioned model of a node or a part design."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.db import models

from apps.core.models import TimeStampedModel


class DigitalTwin(TimeStampedModel):
    class Type(models.TextChoices):
        SPINDLE = "spindle", "Spindle"
        BEARING = "bearing", "Bearing"
        GEAR = "gear", "Gear"
        SEAL = "seal", "Seal"
        PRINTER = "printer", "3D printer"
        MILL = "mill", "CNC mill"
        LATHE = "lathe", "CNC lathe"
        LASER = "laser", "Laser cutter"
        PART = "part", "Part design"
        MIXER = "mixer", "Mixing session"
        OTHER = "other", "Other"

    class ModelFormat(models.TextChoices):
        NONE = "", "None"
        GLB = "glb", "glTF binary (GLB)"
        GLTF = "gltf", "glTF (JSON)"
        STL = "stl", "STL"

    name = models.CharField(max_length=200)
    twin_type = models.CharField(max_length=20, choices=Type.choices)
    node = models.ForeignKey(
        "vendors.FabricationNode",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="twins",
    )
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="twins"
    )
    organization = models.ForeignKey(
        "users.Organization", on_delete=models.PROTECT, related_name="twins"
    )
    properties = models.JSONField(default=dict, blank=True)  # the latest version's document
    version = models.PositiveIntegerField(default=1)  # the latest version's number
    tags = models.JSONField(default=list, blank=True)
    model_file = models.FileField(upload_to="twins/%Y/%m/", blank=True)
    model_format = models.CharField(
        max_length=4, choices=ModelFormat.choices, blank=True, default=ModelFormat.NONE
    )
    model_size_bytes = models.PositiveBigIntegerField(default=0)

    class Meta:
        ordering = ["name", "id"]
        indexes = [models.Index(fields=["organization", "twin_type"])]

    def __str__(self) -> str:
        return f"{self.name} ({self.get_twin_type_display()})"


class TwinVersion(models.Model):
    """One accepted change: the operations as applied (after transformation), the document
    they produced, who, why and on which version the author based them. Never deleted; a
    revert is a new version."""

    twin = models.ForeignKey(DigitalTwin, on_delete=models.CASCADE, related_name="versions")
    number = models.PositiveIntegerField()
    parent_number = models.PositiveIntegerField(null=True, blank=True)
    based_on = models.PositiveIntegerField(null=True, blank=True)  # the author's base version
    author = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    message = models.CharField(max_length=300, blank=True)
    ops = models.JSONField(default=list)
    document = models.JSONField(default=dict)
    is_latest = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["twin_id", "-number"]
        constraints = [
            models.UniqueConstraint(fields=["twin", "number"], name="unique_twin_version"),
            models.UniqueConstraint(
                fields=["twin"], condition=models.Q(is_latest=True), name="one_latest_twin_version"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.twin_id} v{self.number}"


class TwinLock(models.Model):
    """A lock on a path of the properties document. Live while not released and not expired;
    it conflicts with locks on the same path, its ancestors and its descendants."""

    class Mode(models.TextChoices):
        EXCLUSIVE = "exclusive", "Exclusive"
        SHARED = "shared", "Shared"

    twin = models.ForeignKey(DigitalTwin, on_delete=models.CASCADE, related_name="locks")
    path = models.CharField(max_length=500)
    mode = models.CharField(max_length=10, choices=Mode.choices)
    holder = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="twin_locks"
    )
    acquired_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField()
    released_at = models.DateTimeField(null=True, blank=True)
    released_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    release_reason = models.CharField(max_length=30, blank=True)  # released, forced, expired

    class Meta:
        ordering = ["twin_id", "path"]
        indexes = [models.Index(fields=["twin", "released_at", "expires_at"])]

    def __str__(self) -> str:
        return f"{self.mode} lock on {self.twin_id}:{self.path} by {self.holder_id}"


class Simulation(TimeStampedModel):
    """A simulation run on a twin, computed by a Celery task that reports its progress here."""

    class Kind(models.TextChoices):
        AGEING = "ageing", "4D ageing"
        SCENARIOS = "scenarios", "Physics scenarios"

    class Status(models.TextChoices):
        QUEUED = "queued", "Queued"
        RUNNING = "running", "Running"
        SUCCEEDED = "succeeded", "Succeeded"
        FAILED = "failed", "Failed"

    twin = models.ForeignKey(DigitalTwin, on_delete=models.CASCADE, related_name="simulations")
    kind = models.CharField(max_length=20, choices=Kind.choices)
    params = models.JSONField(default=dict)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.QUEUED)
    progress = models.FloatField(default=0.0)  # 0-1
    stage = models.CharField(max_length=200, blank=True)  # what it is doing now
    result = models.JSONField(null=True, blank=True)
    error = models.CharField(max_length=1000, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["twin", "-created_at"])]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} #{self.pk} on twin {self.twin_id}"

    @property
    def is_finished(self) -> bool:
        return self.status in (self.Status.SUCCEEDED, self.Status.FAILED)

    def summary(self) -> dict[str, Any] | None:
        """The headline numbers of the result, without its series."""
        result = self.result
        if not result:
            return None
        if self.kind == self.Kind.AGEING:
            band = result.get("uncertainty", {})
            return {
                "component": result["component"],
                "predicted_failure_hours": result["predicted_failure_hours"],
                "failure_hours_p10": band.get("failure_hours_p10"),
                "failure_hours_p90": band.get("failure_hours_p90"),
            }
        return {"scenarios": result["summary"], "seed_source": result["seed_source"]}


class MixRecipe(models.Model):
    """A saved mixing recipe: material, process and parameters with the outcome they gave.
    Saving under an existing name makes its next version; versions are never changed."""

    organization = models.ForeignKey(
        "users.Organization", on_delete=models.CASCADE, related_name="mix_recipes"
    )
    name = models.CharField(max_length=120)
    version = models.PositiveIntegerField()
    material = models.CharField(max_length=40)
    recipe = models.CharField(max_length=40)
    params = models.JSONField()
    outcome = models.JSONField()
    message = models.CharField(max_length=300, blank=True)
    twin = models.ForeignKey(
        DigitalTwin, null=True, blank=True, on_delete=models.SET_NULL, related_name="recipes"
    )
    author = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["organization_id", "name", "-version"]
        constraints = [
            models.UniqueConstraint(
                fields=["organization", "name", "version"], name="unique_mix_recipe_version"
            )
        ]

    def __str__(self) -> str:
        return f"{self.name} v{self.version}"
