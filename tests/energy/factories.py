from __future__ import annotations

from decimal import Decimal

import factory
from django.utils import timezone

from apps.energy.models import EnergySource, HourlyRate, SitePowerCap, SourceKind
from apps.users.models import Organization
from tests.users.factories import OrganizationFactory

SITE = Organization.Kind.OPERATOR_SITE


class EnergySourceFactory(factory.django.DjangoModelFactory[EnergySource]):
    """A source of a site, or of `node` when one is given (a source has exactly one owner).
    Written directly: `source_create` checks who may add it and that a battery has its kWh."""

    class Meta:
        model = EnergySource

    node = None
    site = factory.Maybe(
        "node",
        yes_declaration=None,
        no_declaration=factory.SubFactory(OrganizationFactory, kind=SITE),
    )
    kind = SourceKind.SOLAR
    capacity_kw = 5.0


class SitePowerCapFactory(factory.django.DjangoModelFactory[SitePowerCap]):
    """A site's energy settings, written directly (`site_cap_save` checks who may set them);
    no cap unless `max_kw` is given."""

    class Meta:
        model = SitePowerCap

    site = factory.SubFactory(OrganizationFactory, kind=SITE)


class HourlyRateFactory(factory.django.DjangoModelFactory[HourlyRate]):
    """A site's grid price for an hour, on the hour as `rates_store` requires (the current
    one unless given)."""

    class Meta:
        model = HourlyRate

    site = factory.SubFactory(OrganizationFactory, kind=SITE)
    hour = factory.LazyFunction(lambda: timezone.now().replace(minute=0, second=0, microsecond=0))
    price_per_kwh = Decimal("0.30")
