"""End to end on real protocols: OPC UA simulator -> edge gateway -> HTTPS batch API -> store."""

from __future__ import annotations

import asyncio
import contextlib

import pytest

from apps.telemetry.models import TelemetryPoint
from apps.vendors.models import FabricationNode
from apps.vendors.services import device_credential_issue, node_config_save, node_transition
from edge.gateway import from_config
from edge.simulators.machines import MachineModel
from edge.simulators.opcua import NODE_IDS, serve
from tests.conftest import free_port
from tests.vendors.conftest import approved_node


@pytest.fixture
def mill(fleet):
    node = approved_node(fleet, name="Gateway-Mill")
    node_config_save(node=node, by=fleet["vendor"], config={"a": 1})
    node_transition(node=node, to=FabricationNode.Status.IDLE, by=fleet["vendor"], reason="up")
    _, token = device_credential_issue(node=node, by=fleet["vendor"])
    return node, token


async def run_for(seconds: float, config: dict, port: int):
    ready = asyncio.Event()
    model = MachineModel(kind="cnc_mill", rated_power_kw=7.5, seed=5)
    server = asyncio.create_task(serve(port=port, model=model, period=0.05, ready=ready))
    await asyncio.wait_for(ready.wait(), 15)
    gateway = from_config(config)
    gateway.limits = {"temperature_c": (10.0, 20.0)}  # every reading is "too hot": alerts
    task = asyncio.create_task(gateway.run())
    await asyncio.sleep(seconds)
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    server.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await server
    return gateway


def test_simulated_mill_streams_through_the_gateway(live_server, mill, tmp_path):
    node, token = mill
    port = free_port()
    config = {
        "upstream": {"url": live_server.url, "batch_size": 500},
        "buffer": {"path": str(tmp_path / "edge.sqlite3")},
        "forward_every_s": 0.3,
        "devices": [
            {
                "node": node.pk,
                "token": token,
                "protocol": "opcua",
                "url": f"opc.tcp://127.0.0.1:{port}/imewe/",
                "interval_ms": 100,
                "signals": {s: f"ns=2;s={n}" for s, n in NODE_IDS.items()},
            }
        ],
    }
    gateway = asyncio.run(run_for(2.5, config, port))
    rows = TelemetryPoint.objects.filter(node=node)
    # ~10 polls a second for ~2 s once connected, all delivered (the last drain runs at stop)
    assert rows.count() >= 8
    forwarder = gateway.forwarders[node.pk]
    assert rows.count() == forwarder.stats.accepted
    assert len(forwarder.buffer) == 0
    sample = rows.order_by("-time").first()
    assert sample.spindle_rpm is not None and sample.torque_nm is not None
    assert gateway.alerts and all(a.severity == "critical" for a in gateway.alerts)


def test_config_is_validated():
    with pytest.raises(ValueError, match="interval_ms"):
        from_config(
            {
                "upstream": {"url": "http://x", "token": "t"},
                "buffer": {"path": ":memory:"},
                "devices": [
                    {"node": 1, "url": "opc.tcp://x", "token": "t", "interval_ms": 5, "signals": {}}
                ],
            }
        )
    with pytest.raises(ValueError, match="not supported"):
        from_config(
            {
                "upstream": {"url": "http://x", "token": "t"},
                "buffer": {"path": ":memory:"},
                "devices": [
                    {
                        "node": 1,
                        "token": "t",
                        "protocol": "carrier-pigeon",
                        "url": "x",
                        "signals": {},
                    }
                ],
            }
        )
    with pytest.raises(ValueError, match="token is required"):
        from_config(
            {
                "upstream": {"url": "http://x"},
                "buffer": {"path": ":memory:"},
                "devices": [{"node": 1, "url": "opc.tcp://x", "signals": {}}],
            }
        )
