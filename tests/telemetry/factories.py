"""Telemetry rows written directly, for tests of what reads them; readings a test sends as a
machine would go through `telemetry_ingest` (validation, the signal to maintenance, the live
feed)."""

from __future__ import annotations

from datetime import timedelta

import factory
from django.utils import timezone

from apps.telemetry.models import TelemetryLateRange, TelemetryPoint
from tests.vendors.factories import FabricationNodeFactory


class TelemetryPointFactory(factory.django.DjangoModelFactory[TelemetryPoint]):
    """A reading of a node now, with no signal unless given."""

    class Meta:
        model = TelemetryPoint

    node = factory.SubFactory(FabricationNodeFactory)
    time = factory.LazyFunction(timezone.now)


class TelemetryLateRangeFactory(factory.django.DjangoModelFactory[TelemetryLateRange]):
    """An earlier hour (each row another), noted as late."""

    class Meta:
        model = TelemetryLateRange

    start = factory.Sequence(
        lambda n: timezone.now().replace(minute=0, second=0, microsecond=0) - timedelta(hours=n + 1)
    )
    end = factory.LazyAttribute(lambda o: o.start + timedelta(hours=1))
