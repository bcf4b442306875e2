from __future__ import annotations

from typing import Any

import pytest

from apps.users.models import Organization
from apps.users.roles import Role
from apps.vendors.models import FabricationNode
from tests.factories import OrganizationFactory, UserFactory

NODE_FIELDS = {
    "name": "Mill-01",
    "kind": "cnc_mill",
    "processes": ["milling", "drilling"],
    "materials": ["aluminium 6061", "steel"],
    "build_x_mm": 600,
    "build_y_mm": 400,
    "build_z_mm": 300,
    "precision_mm": 0.01,
    "rated_power_kw": 7.5,
    "latitude": 6.45,
    "longitude": 3.39,
    "software_version": "fanuc-31i/4.2",
}


@pytest.fixture
def fleet(db: Any) -> dict[str, Any]:
    """Two vendors, an operator site, and one user per role placed in the right organization."""
    forge = OrganizationFactory(name="Forge", slug="forge", kind=Organization.Kind.VENDOR)
    rival = OrganizationFactory(name="Rival", slug="rival", kind=Organization.Kind.VENDOR)
    site = OrganizationFactory(name="Site A", slug="site-a", kind=Organization.Kind.OPERATOR_SITE)
    design = OrganizationFactory(name="Studio", slug="studio")
    people = {
        "admin": UserFactory(role=Role.ADMIN, email="admin@f.test"),
        "vendor": UserFactory(role=Role.VENDOR, email="vendor@f.test", organization=forge),
        "rival": UserFactory(role=Role.VENDOR, email="rival@f.test", organization=rival),
        "operator": UserFactory(role=Role.OPERATOR, email="op@f.test", organization=site),
        "designer": UserFactory(role=Role.DESIGNER, email="designer@f.test", organization=design),
        "engineer": UserFactory(role=Role.ENGINEER, email="eng@f.test", organization=design),
        "viewer": UserFactory(role=Role.VIEWER, email="viewer@f.test", organization=design),
    }
    return {"forge": forge, "rival": rival, "site": site, **people}


def make_node(fleet: dict[str, Any], **overrides: Any) -> FabricationNode:
    from apps.vendors.services import node_register

    fields = {**NODE_FIELDS, "site": fleet["site"], **overrides}
    return node_register(by=fleet["vendor"], vendor=fleet["forge"], **fields)


def approved_node(fleet: dict[str, Any], **overrides: Any) -> FabricationNode:
    from apps.vendors.services import node_decide

    return node_decide(node=make_node(fleet, **overrides), by=fleet["admin"], approve=True)
