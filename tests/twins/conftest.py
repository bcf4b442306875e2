from __future__ import annotations

from typing import Any

import pytest

from apps.twins.models import DigitalTwin
from apps.twins.services import twin_create
from tests.factories import OrganizationFactory, UserFactory
from tests.vendors.conftest import (
    approved_node,
    fleet,  # noqa: F401  (the shared fixture)
)

PROPERTIES = {
    "spindle": {"max_rpm": 60000, "bearing": {"type": "angular_contact", "preload_n": 300}},
    "tools": ["t1", "t2", "t3"],
}


@pytest.fixture
def studio(fleet: dict[str, Any]) -> dict[str, Any]:  # noqa: F811
    """The fleet's people, a second designer in the studio and one in another studio, a node,
    and the designer's spindle twin."""
    from apps.users.models import Organization
    from apps.users.roles import Role

    design = Organization.objects.get(slug="studio")
    other = OrganizationFactory(name="Elsewhere", slug="elsewhere")
    people = {
        **fleet,
        "colleague": UserFactory(role=Role.DESIGNER, email="colleague@f.test", organization=design),
        "outsider": UserFactory(role=Role.DESIGNER, email="outsider@f.test", organization=other),
        "design": design,
        "other": other,
    }
    people["node"] = approved_node(fleet)
    people["twin"] = twin_create(
        by=fleet["designer"], name="Spindle A", twin_type="spindle", properties=PROPERTIES
    )
    return people


def twin_of(people: dict[str, Any]) -> DigitalTwin:
    return DigitalTwin.objects.get(pk=people["twin"].pk)
