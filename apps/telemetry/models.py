from __future__ import annotations

from django.db import models

from apps.core.labels import label_with_unit

# Signals every point may carry, with the physical range a real machine can report. Values
# outside are sensor faults or unit mistakes and are rejected, never stored.
SIGNAL_RANGES: dict[str, tuple[float, float]] = {
    "temperature_c": (-60.0, 2000.0),
    "vibration_mm_s": (0.0, 500.0),
    "power_kw": (0.0, 10000.0),
    "spindle_rpm": (0.0, 100000.0),
    "torque_nm": (-20000.0, 20000.0),
    "progress_pct": (0.0, 100.0),
    "material_remaining": (0.0, 1e9),
}
# "Power (kW)": the words come from the one vocabulary of codes (apps.core.labels).
SIGNAL_LABELS: dict[str, str] = {signal: label_with_unit(signal) for signal in SIGNAL_RANGES}


class TelemetryPoint(models.Model):
    """One row per node per instant. (node, time) is the primary key: duplicates cannot exist.
    On TimescaleDB the table is a hypertable (migration 0002); elsewhere a BRIN index on time."""

    pk = models.CompositePrimaryKey("node", "time")
    node = models.ForeignKey(
        "vendors.FabricationNode", on_delete=models.CASCADE, related_name="+", db_index=False
    )
    time = models.DateTimeField()
    # The job running on the node, when known. A plain id: jobs sits to the right of telemetry.
    job_id = models.BigIntegerField(null=True, blank=True)
    temperature_c = models.FloatField(null=True, blank=True)
    vibration_mm_s = models.FloatField(null=True, blank=True)
    power_kw = models.FloatField(null=True, blank=True)
    spindle_rpm = models.FloatField(null=True, blank=True)
    torque_nm = models.FloatField(null=True, blank=True)
    progress_pct = models.FloatField(null=True, blank=True)
    material_remaining = models.FloatField(null=True, blank=True)
    extra = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["node", "time"]
        db_table = "telemetry_point"

    def __str__(self) -> str:
        return f"{self.node_id} @ {self.time.isoformat()}"


class TelemetryLateRange(models.Model):
    """Hours [start, end) that received points after the continuous aggregates may have
    materialized them (apps/telemetry/rollups.py): refreshed, then deleted, by
    late_ranges_refresh. Written only on the TimescaleDB layout."""

    start = models.DateTimeField()
    end = models.DateTimeField()
    noted_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["start"]
        db_table = "telemetry_late_range"
        constraints = [
            models.UniqueConstraint(fields=["start", "end"], name="telemetry_late_range_unique")
        ]

    def __str__(self) -> str:
        return f"{self.start.isoformat()} .. {self.end.isoformat()}"
