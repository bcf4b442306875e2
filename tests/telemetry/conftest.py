"""Two streaming nodes with their device tokens (the MQTT bridge tests)."""

from __future__ import annotations

import pytest

from apps.vendors.models import FabricationNode
from apps.vendors.services import device_credential_issue, node_config_save, node_transition
from tests.fixtures.fleet import Fleet, approved_node


@pytest.fixture
def nodes(fleet: Fleet) -> list[tuple[FabricationNode, str]]:
    out: list[tuple[FabricationNode, str]] = []
    for name in ("Mqtt-A", "Mqtt-B"):
        node = approved_node(fleet, name=name)
        node_config_save(node=node, by=fleet.vendor, config={"a": 1})
        node_transition(node=node, to=FabricationNode.Status.IDLE, by=fleet.vendor, reason="up")
        _, token = device_credential_issue(node=node, by=fleet.vendor)
        out.append((node, token))
    return out
