"""Energy: where a site's or a node's power comes from, what each kind emits, a site's power cap
and hourly prices, and the energy each part drew (kWh, source, cost, kg CO2e).

A "site" is an Organization: the operator site a node stands at (`node.site`), or its vendor
company when it stands at none (`apps.energy.calc.site_key`)."""

from __future__ import annotations

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import Q

from apps.core.models import TimeStampedModel


class SourceKind(models.TextChoices):
    SOLAR = "solar", "Solar"
    WIND = "wind", "Wind"
    BATTERY = "battery", "Battery"
    FUEL_CELL = "fuel_cell", "Fuel cell"
    GRID = "grid", "Grid"


RENEWABLE_KINDS = frozenset({SourceKind.SOLAR, SourceKind.WIND})


def default_currency() -> str:
    return str(settings.JOBS_CURRENCY)


class EnergySource(TimeStampedModel):
    """A power source of a site (every node there may draw from it) or of one node."""

    class Status(models.TextChoices):
        ONLINE = "online", "Online"
        OFFLINE = "offline", "Offline"
        MAINTENANCE = "maintenance", "Maintenance"

    site = models.ForeignKey(
        "users.Organization",
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="energy_sources",
    )
    node = models.ForeignKey(
        "vendors.FabricationNode",
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="energy_sources",
    )
    name = models.CharField(max_length=120, blank=True)
    kind = models.CharField(max_length=10, choices=SourceKind.choices)
    capacity_kw = models.FloatField(validators=[MinValueValidator(0), MaxValueValidator(100000)])
    efficiency = models.FloatField(
        default=1.0, validators=[MinValueValidator(0), MaxValueValidator(1)]
    )
    status = models.CharField(max_length=12, choices=Status.choices, default=Status.ONLINE)
    # batteries only: how much they hold, how full they are, and the charge kept in reserve
    capacity_kwh = models.FloatField(
        null=True, blank=True, validators=[MinValueValidator(0), MaxValueValidator(1000000)]
    )
    soc_pct = models.FloatField(
        "state of charge (%)",
        null=True,
        blank=True,
        validators=[MinValueValidator(0), MaxValueValidator(100)],
    )
    reserve_pct = models.FloatField(
        default=20.0, validators=[MinValueValidator(0), MaxValueValidator(100)]
    )

    class Meta:
        ordering = ["kind", "id"]
        constraints = [
            models.CheckConstraint(
                condition=(Q(site__isnull=False) & Q(node__isnull=True))
                | (Q(site__isnull=True) & Q(node__isnull=False)),
                name="energy_source_site_xor_node",
            ),
            models.CheckConstraint(
                condition=Q(efficiency__gte=0, efficiency__lte=1),
                name="energy_source_efficiency_0_1",
            ),
            models.CheckConstraint(
                condition=Q(capacity_kw__gte=0), name="energy_source_capacity_positive"
            ),
            models.CheckConstraint(
                condition=Q(soc_pct__isnull=True) | Q(soc_pct__gte=0, soc_pct__lte=100),
                name="energy_source_soc_0_100",
            ),
        ]
        indexes = [models.Index(fields=["site", "kind"]), models.Index(fields=["node", "kind"])]

    def __str__(self) -> str:
        label = self.name or self.get_kind_display()
        return f"{label} ({self.capacity_kw:g} kW)"

    @property
    def is_renewable(self) -> bool:
        return self.kind in RENEWABLE_KINDS

    @property
    def owner_label(self) -> str:
        return f"node {self.node_id}" if self.node_id else f"site {self.site_id}"


class EmissionFactor(TimeStampedModel):
    """kg CO2e per kWh drawn from a kind of source. Seeded by migration 0002; admins edit them
    (Django admin, the API); consumption keeps the factor it was computed with."""

    kind = models.CharField(max_length=10, choices=SourceKind.choices, unique=True)
    kg_co2e_per_kwh = models.FloatField(validators=[MinValueValidator(0), MaxValueValidator(10)])
    note = models.CharField(max_length=200, blank=True)

    class Meta:
        ordering = ["kind"]

    def __str__(self) -> str:
        return f"{self.get_kind_display()}: {self.kg_co2e_per_kwh:g} kg CO2e/kWh"


class SitePowerCap(TimeStampedModel):
    """A site's energy settings: the most its machines may draw together (none: no cap) and
    what its own generation (solar, wind, battery, fuel cell) costs per kWh."""

    site = models.OneToOneField(
        "users.Organization", on_delete=models.CASCADE, related_name="power_cap"
    )
    max_kw = models.FloatField(
        null=True, blank=True, validators=[MinValueValidator(0.001), MaxValueValidator(1000000)]
    )
    renewable_price_per_kwh = models.DecimalField(
        max_digits=10, decimal_places=5, null=True, blank=True, validators=[MinValueValidator(0)]
    )
    currency = models.CharField(max_length=3, default=default_currency)

    class Meta:
        ordering = ["site__name"]
        constraints = [
            models.CheckConstraint(
                condition=Q(max_kw__isnull=True) | Q(max_kw__gt=0), name="site_power_cap_positive"
            )
        ]

    def __str__(self) -> str:
        cap = f"{self.max_kw:g} kW" if self.max_kw else "no cap"
        return f"{self.site_id}: {cap}"


class HourlyRate(models.Model):
    """A site's grid price for one clock hour and, optionally, the renewable power forecast
    there. `hour` is aware and on the hour (services check it)."""

    class Source(models.TextChoices):
        IMPORTED = "imported", "Imported"
        ENTERED = "entered", "Entered"
        FORECAST = "forecast", "Forecast"

    site = models.ForeignKey(
        "users.Organization", on_delete=models.CASCADE, related_name="hourly_rates"
    )
    hour = models.DateTimeField()
    price_per_kwh = models.DecimalField(
        max_digits=10, decimal_places=5, validators=[MinValueValidator(0)]
    )
    currency = models.CharField(max_length=3, default=default_currency)
    renewable_kw = models.FloatField(null=True, blank=True, validators=[MinValueValidator(0)])
    source = models.CharField(max_length=10, choices=Source.choices, default=Source.ENTERED)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["site", "hour"]
        constraints = [
            models.UniqueConstraint(fields=["site", "hour"], name="unique_rate_per_site_hour"),
            models.CheckConstraint(condition=Q(price_per_kwh__gte=0), name="rate_price_positive"),
        ]

    def __str__(self) -> str:
        return f"{self.site_id} @ {self.hour.isoformat()}: {self.price_per_kwh} {self.currency}"


class Consumption(models.Model):
    """The energy one part drew on its node, recorded once when it finished (or by the daily
    reconciliation), with how it was measured and the figures behind cost and carbon."""

    class Method(models.TextChoices):
        TELEMETRY = "telemetry", "Telemetry (power integrated over the run)"
        REPORTED = "reported", "Reported by the node"
        ESTIMATE = "estimate", "Estimate"

    part = models.OneToOneField(
        "jobs.Part", null=True, blank=True, on_delete=models.SET_NULL, related_name="consumption"
    )
    job = models.ForeignKey(
        "jobs.Job", null=True, blank=True, on_delete=models.SET_NULL, related_name="consumption"
    )
    node = models.ForeignKey(
        "vendors.FabricationNode", on_delete=models.CASCADE, related_name="consumption"
    )
    site = models.ForeignKey(
        "users.Organization",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="consumption",
    )
    started_at = models.DateTimeField()
    finished_at = models.DateTimeField(db_index=True)
    kwh = models.FloatField(validators=[MinValueValidator(0)])
    method = models.CharField(max_length=10, choices=Method.choices)
    coverage = models.FloatField(
        null=True, blank=True, help_text="Share of the run the node's power telemetry covered."
    )
    source_kind = models.CharField(max_length=10, choices=SourceKind.choices)
    source = models.ForeignKey(
        EnergySource, null=True, blank=True, on_delete=models.SET_NULL, related_name="consumption"
    )
    reason = models.CharField(max_length=300)
    price_per_kwh = models.DecimalField(max_digits=10, decimal_places=5)
    cost = models.DecimalField(max_digits=12, decimal_places=4)
    currency = models.CharField(max_length=3, default=default_currency)
    emission_factor = models.FloatField()
    co2e_kg = models.FloatField()
    recorded_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-finished_at", "-id"]
        indexes = [
            models.Index(fields=["node", "finished_at"]),
            models.Index(fields=["site", "finished_at"]),
            models.Index(fields=["job"]),
        ]
        constraints = [
            models.CheckConstraint(condition=Q(kwh__gte=0), name="consumption_kwh_positive"),
        ]

    def __str__(self) -> str:
        return f"part {self.part_id} on node {self.node_id}: {self.kwh:.3f} kWh"

    @property
    def is_renewable(self) -> bool:
        return self.source_kind in RENEWABLE_KINDS
