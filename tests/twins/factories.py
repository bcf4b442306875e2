from __future__ import annotations

from typing import Any

import factory

from apps.twins.models import DigitalTwin, Simulation
from apps.twins.services import twin_create
from tests.users.factories import OrganizationFactory, UserFactory

# A short ageing run: a few hundred samples over 20,000 h.
AGEING_PARAMS: dict[str, Any] = {
    "avg_rpm": 12000,
    "load_n": 8000,
    "temperature_c": 70,
    "duty_cycle": 0.8,
    "horizon_h": 20000,
    "steps": 100,
    "samples": 200,
}


class DigitalTwinFactory(factory.django.DjangoModelFactory[DigitalTwin]):
    """A spindle twin made by a designer of one design team through `twin_create`, so it has
    its first version and the document checks passed."""

    class Meta:
        model = DigitalTwin

    owner = factory.SubFactory(UserFactory, organization=factory.SubFactory(OrganizationFactory))
    name = factory.Sequence(lambda n: f"Twin {n}")
    twin_type = DigitalTwin.Type.SPINDLE

    @classmethod
    def _create(cls, model_class: type[DigitalTwin], *args: Any, **kwargs: Any) -> DigitalTwin:
        return twin_create(by=kwargs.pop("owner"), **kwargs)


class SimulationFactory(factory.django.DjangoModelFactory[Simulation]):
    """A queued run written directly, for a test to run with `simulation_run` as the worker
    would; `simulation_start` checks the parameters first, and queues the task."""

    class Meta:
        model = Simulation

    twin = factory.SubFactory(DigitalTwinFactory)
    kind = Simulation.Kind.AGEING
    params = factory.LazyFunction(lambda: dict(AGEING_PARAMS))
    created_by = factory.SelfAttribute("twin.owner")
