from __future__ import annotations

from typing import Any

import factory

from apps.users.models import Organization
from apps.users.roles import Role
from apps.vendors.models import FabricationNode
from apps.vendors.services import node_register
from tests.users.factories import OrganizationFactory, UserFactory


class FabricationNodeFactory(factory.django.DjangoModelFactory[FabricationNode]):
    """A CNC mill registered by a user of its vendor company through `node_register`, so it
    obeys the registry's rules (a vendor company, a unique name, catalogue processes) and is
    pending approval, as every new node is. For an approved node in service, use the fleet
    fixtures (tests/fixtures/shop.py `ready_node`)."""

    class Meta:
        model = FabricationNode

    vendor = factory.SubFactory(OrganizationFactory, kind=Organization.Kind.VENDOR)
    registered_by = factory.LazyAttribute(
        lambda o: UserFactory.create(role=Role.VENDOR, organization=o.vendor)
    )
    name = factory.Sequence(lambda n: f"Mill-{n:02d}")
    kind = FabricationNode.Kind.CNC_MILL
    processes = factory.LazyFunction(lambda: ["milling", "drilling"])
    materials = factory.LazyFunction(lambda: ["aluminium 6061", "steel"])
    build_x_mm = 600
    build_y_mm = 400
    build_z_mm = 300
    precision_mm = 0.01
    rated_power_kw = 7.5

    @classmethod
    def _create(
        cls, model_class: type[FabricationNode], *args: Any, **kwargs: Any
    ) -> FabricationNode:
        by, vendor = kwargs.pop("registered_by"), kwargs.pop("vendor")
        return node_register(by=by, vendor=vendor, **kwargs)
