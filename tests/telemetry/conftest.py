import pytest

from apps.vendors.models import FabricationNode
from apps.vendors.services import device_credential_issue, node_config_save, node_transition
from tests.vendors.conftest import (
    approved_node,
    fleet,  # noqa: F401  (the fleet fixture, shared)
)


@pytest.fixture
def live(fleet):  # noqa: F811  (fleet is the shared fixture imported above)
    """Two approved, idle nodes of one vendor, each with its own device token."""
    nodes, tokens = [], []
    for name in ("Mill-A", "Mill-B"):
        node = approved_node(fleet, name=name)
        node_config_save(node=node, by=fleet["vendor"], config={"v": 1})
        node_transition(node=node, to=FabricationNode.Status.IDLE, by=fleet["vendor"], reason="up")
        credential, token = device_credential_issue(node=node, by=fleet["vendor"])
        nodes.append(node)
        tokens.append(token)
    return {"nodes": nodes, "tokens": tokens, "credential_vendor": fleet["vendor"]}
