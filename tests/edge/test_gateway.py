"""End to end on real protocols: OPC UA simulator -> edge gateway -> HTTPS batch API -> store."""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from typing import Any

import pytest

from apps.telemetry.models import TelemetryPoint
from apps.telemetry.mqtt_bridge import MqttBridge
from apps.vendors.models import FabricationNode
from apps.vendors.services import device_credential_issue, node_config_save, node_transition
from edge.gateway import Gateway, from_config
from edge.simulators.control import ModbusControl, MtConnectControl, OpcUaControl
from edge.simulators.machines import MachineModel
from edge.simulators.modbus import REGISTER_MAP
from edge.simulators.modbus import serve as modbus_serve
from edge.simulators.mtconnect import SIGNAL_MAP as MTCONNECT_SIGNALS
from edge.simulators.mtconnect import MtConnectSimulator
from edge.simulators.opcua import NODE_IDS, serve
from edge.work_agent import WorkAgent
from tests.conftest import free_port
from tests.fixtures.fleet import Fleet, approved_node


@pytest.fixture
def mill(fleet: Fleet):
    node = approved_node(fleet, name="Gateway-Mill")
    node_config_save(node=node, by=fleet.vendor, config={"a": 1})
    node_transition(node=node, to=FabricationNode.Status.IDLE, by=fleet.vendor, reason="up")
    _, token = device_credential_issue(node=node, by=fleet.vendor)
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
    sample = rows.latest("time")
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
    with pytest.raises(ValueError, match="forward_every_s"):
        from_config(
            {
                "upstream": {"url": "http://x"},
                "forward_every_s": 0,
                "devices": [{"node": 1, "url": "opc.tcp://x", "token": "t", "signals": {"a": "b"}}],
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


@pytest.fixture
def files_of_at_most_16_mb():
    """This process may write files of at most 16 MB (as under systemd's LimitFSIZE=16M)."""
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    resource.setrlimit(resource.RLIMIT_FSIZE, (16_000_000, hard))
    yield
    resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))


def test_a_buffer_cap_beyond_the_file_size_limit_is_refused(files_of_at_most_16_mb, tmp_path):
    def config(max_points: int) -> dict:
        return {
            "upstream": {"url": "http://x"},
            "buffer": {"path": str(tmp_path / "buffer.sqlite3"), "max_points": max_points},
            "devices": [
                {
                    "node": 7,
                    "url": "opc.tcp://x",
                    "token": "t",
                    "signals": {s: f"ns=2;s={s}" for s in "abcdef"},
                }
            ],
        }

    # six signals: about 256 bytes a point, so 62 500 points fill 16 MB
    with pytest.raises(ValueError, match=r"device 7: buffer.max_points 100000 .* at most 16 MB"):
        from_config(config(100_000))
    buffer = from_config(config(60_000)).forwarders[7].buffer
    assert buffer.max_points == 60_000
    buffer.close()


def _work_config(protocol: str, url: str, work: dict) -> dict:
    mapping: dict[str, Any] = {"registers": {"power_kw": {"address": 2, "type": "uint16"}}}
    if protocol != "modbus":
        mapping = {"signals": {"power_kw": "ns=2;s=Machine1.Drive.Power"}}
    return {
        "upstream": {"url": "http://x"},
        "buffer": {"path": ":memory:"},
        "devices": [
            {"node": 1, "token": "t", "protocol": protocol, "url": url, "work": work, **mapping}
        ],
    }


@pytest.mark.parametrize("speedup", [0, 0.5, -360, 1e9, float("nan")])
def test_a_work_agent_time_scale_out_of_range_is_refused(speedup):
    with pytest.raises(ValueError, match="speedup must be 1-100000"):
        from_config(_work_config("opcua", "opc.tcp://x", {"speedup": speedup}))


@pytest.mark.parametrize(
    ("protocol", "url", "control"),
    [
        ("opcua", "opc.tcp://127.0.0.1:4841/imewe/", OpcUaControl),
        ("modbus", "modbus://127.0.0.1:5021", ModbusControl),
        ("mtconnect", "http://127.0.0.1:5001", MtConnectControl),
    ],
)
def test_a_simulated_machine_is_driven_by_its_work_agent(protocol, url, control):
    gateway = from_config(_work_config(protocol, url, {"speedup": 360, "simulated": True}))
    agent = gateway.agents[0]
    assert isinstance(agent, WorkAgent)
    assert isinstance(agent.machine, control)
    assert agent.speedup == 360
    real = from_config(_work_config(protocol, url, {"speedup": 1}))
    real_agent = real.agents[0]
    assert isinstance(real_agent, WorkAgent)
    assert real_agent.machine is None  # a real machine runs its own program


def make_ready_node(fleet: Fleet, name: str):
    node = approved_node(fleet, name=name)
    node_config_save(node=node, by=fleet.vendor, config={"a": 1})
    node_transition(node=node, to=FabricationNode.Status.IDLE, by=fleet.vendor, reason="up")
    _, token = device_credential_issue(node=node, by=fleet.vendor)
    return node, token


async def run_mixed_fleet(seconds: float, config: dict, modbus_port: int) -> Gateway:
    ready = asyncio.Event()
    printer = MachineModel(kind="fdm_printer", rated_power_kw=0.35, seed=6)
    server = asyncio.create_task(modbus_serve(port=modbus_port, model=printer, ready=ready))
    await asyncio.wait_for(ready.wait(), 15)
    gateway = from_config(config)
    task = asyncio.create_task(gateway.run())
    await asyncio.sleep(seconds)
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    server.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await server
    return gateway


def test_modbus_printer_and_mtconnect_mill_stream_through_the_gateway(
    live_server, fleet: Fleet, tmp_path
):
    printer, printer_token = make_ready_node(fleet, "Modbus-Printer")
    mill, mill_token = make_ready_node(fleet, "MTConnect-Mill")
    modbus_port = free_port()
    agent = MtConnectSimulator(
        MachineModel(kind="cnc_mill", rated_power_kw=7.5, seed=8), port=free_port(), period=0.05
    ).start()
    printer_registers = {
        s: REGISTER_MAP[s]
        for s in ("temperature_c", "power_kw", "vibration_mm_s", "material_remaining")
    }
    config = {
        "upstream": {"url": live_server.url, "batch_size": 500},
        "buffer": {"path": str(tmp_path / "edge.sqlite3")},
        "forward_every_s": 0.3,
        "devices": [
            {
                "node": printer.pk,
                "token": printer_token,
                "protocol": "modbus",
                "url": f"modbus://127.0.0.1:{modbus_port}",
                "unit": 1,
                "interval_ms": 100,
                "registers": printer_registers,
                "limits": {"temperature_c": [240, 260]},  # a hot end is not an alarm
            },
            {
                "node": mill.pk,
                "token": mill_token,
                "protocol": "mtconnect",
                "url": agent.url,
                "interval_ms": 200,
                "signals": MTCONNECT_SIGNALS,
                "limits": {"temperature_c": [10, 20]},  # every reading is "too hot"
            },
        ],
    }
    try:
        gateway = asyncio.run(run_mixed_fleet(2.5, config, modbus_port))
    finally:
        agent.stop()
    printed = TelemetryPoint.objects.filter(node=printer)
    milled = TelemetryPoint.objects.filter(node=mill)
    assert printed.count() >= 8 and printed.count() == gateway.forwarders[printer.pk].stats.accepted
    # the agent sampled every 50 ms and the gateway fetched them all, with the agent's times
    assert milled.count() >= 25 and milled.count() == gateway.forwarders[mill.pk].stats.accepted
    row = printed.latest("time")
    assert row.material_remaining == pytest.approx(1000.0) and row.spindle_rpm is None
    row = milled.latest("time")
    assert row.spindle_rpm is not None and row.power_kw is not None and 0.5 < row.power_kw < 15
    alerts = [(a.node, a.signal, a.severity) for a in gateway.alerts]
    assert alerts == [(mill.pk, "temperature_c", "critical")]  # once, not at every poll


@pytest.mark.integration
@pytest.mark.django_db(transaction=True)
def test_gateway_publishes_over_mqtt_through_the_bridge(fleet: Fleet, tmp_path):
    node, token = make_ready_node(fleet, "Mqtt-Gateway")
    other, _ = make_ready_node(fleet, "Mqtt-Other")
    site = f"gw{uuid.uuid4().hex[:8]}"
    bridge = MqttBridge(client_id=f"bridge-{uuid.uuid4().hex[:6]}", flush_interval=0.05)
    bridge.start()
    assert bridge.connected.wait(10), "Mosquitto on 127.0.0.1:1883 is required"
    port = free_port()
    device = {
        "token": token,
        "protocol": "opcua",
        "url": f"opc.tcp://127.0.0.1:{port}/imewe/",
        "interval_ms": 100,
        "signals": {s: f"ns=2;s={n}" for s, n in NODE_IDS.items()},
    }
    config = {
        "upstream": {"mqtt": "mqtt://127.0.0.1:1883", "site": site, "batch_size": 200},
        "buffer": {"path": str(tmp_path / "edge.sqlite3")},
        "forward_every_s": 0.3,
        # node A's token used for node B too: the platform refuses those points
        "devices": [{"node": node.pk, **device}, {"node": other.pk, **device}],
    }
    try:
        gateway = asyncio.run(run_for(2.0, config, port))
        stored = TelemetryPoint.objects.filter(node=node)
        sent = gateway.forwarders[node.pk].stats.sent
        deadline = time.monotonic() + 10
        while stored.count() < sent and time.monotonic() < deadline:
            time.sleep(0.1)
    finally:
        bridge.stop()
    assert sent >= 8 and stored.count() == sent  # every point handed to the broker was stored
    assert not TelemetryPoint.objects.filter(node=other).exists()
    assert gateway.mqtt is not None
    refused = [r for r in gateway.mqtt.rejections if f"/machine/{other.pk}/" in r["topic"]]
    assert refused and refused[0]["error"]["code"] == "forbidden"
