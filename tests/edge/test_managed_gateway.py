"""A gateway under management, end to end: a real gateway process pulls its configuration from
the live platform, streams a real OPC UA server's readings, refuses a configuration that cannot
run while it keeps running on the last good one (reporting why), and starts on that one from disk
when the platform is unreachable."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from django.utils import timezone

from apps.core.models import AuditLog
from apps.telemetry.models import TelemetryPoint
from apps.vendors.gateway_services import gateway_credential_issue, gateway_register
from apps.vendors.models import FabricationNode, Gateway, NodeCommand
from apps.vendors.services import node_config_save, node_transition
from edge.control import PlatformLink
from edge.managed import ManagedGateway
from edge.simulators.opcua import NODE_IDS
from tests.conftest import free_port, jwt_client, wait_for_port
from tests.vendors.conftest import approved_node

ROOT = Path(__file__).resolve().parents[2]
OPCUA_PORTS = range(4850, 4860)  # this suite's share of the machine's ports


def opcua_edge(port: int, **extra: object) -> dict:
    return {
        "protocol": "opcua",
        "url": f"opc.tcp://127.0.0.1:{port}/imewe/",
        "interval_ms": 200,
        "signals": {s: f"ns=2;s={n}" for s, n in NODE_IDS.items()},
        **extra,
    }


def _port_in_range() -> int:
    import socket

    for port in OPCUA_PORTS:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) != 0:
                return port
    return free_port()


@pytest.fixture
def opcua_server() -> Iterator[int]:
    """The OPC UA machine simulator, a process of its own."""
    port = _port_in_range()
    proc = subprocess.Popen(
        [sys.executable, "-m", "edge.simulators.opcua", "--port", str(port)],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_for_port(port, proc, within_s=30)
        yield port
    finally:
        proc.terminate()
        proc.wait(10)


@pytest.fixture
def start_gateway(tmp_path: Path) -> Iterator[Callable[..., subprocess.Popen[bytes]]]:
    procs: list[subprocess.Popen[bytes]] = []

    def start(platform: str, token: str, state: Path) -> subprocess.Popen[bytes]:
        log = open(tmp_path / f"gateway-{len(procs)}.log", "wb")  # noqa: SIM115
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "edge.gateway",
                "--platform",
                platform,
                "--state-dir",
                str(state),
            ],
            cwd=ROOT,
            env={**os.environ, "IMEWE_GATEWAY_TOKEN": token},
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        procs.append(proc)
        return proc

    yield start
    for proc in procs:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def wait_until(check: Callable[[], object], *, within_s: float, what: str, log: Path) -> None:
    deadline = time.monotonic() + within_s
    while not check():
        if time.monotonic() > deadline:
            logs = "\n".join(p.read_text()[-3000:] for p in sorted(log.glob("gateway-*.log")))
            raise AssertionError(f"{what}: not within {within_s:g} s\n{logs}")
        time.sleep(0.2)


def managed_setup(fleet: dict, port: int) -> tuple[FabricationNode, Gateway, str]:
    node = approved_node(fleet, name="Managed-Mill")
    node_config_save(node=node, by=fleet["vendor"], config={"edge": opcua_edge(port)})
    node_transition(node=node, to=FabricationNode.Status.IDLE, by=fleet["vendor"], reason="up")
    gateway = gateway_register(
        by=fleet["vendor"],
        vendor=fleet["forge"],
        name="Hall-A",
        site=fleet["site"],
        forwarding={"poll_s": 1, "forward_every_s": 0.3},
        nodes=[node],
    )
    _, token = gateway_credential_issue(gateway=gateway, by=fleet["vendor"])
    return node, gateway, token


def test_a_managed_gateway_applies_the_platforms_configuration_and_keeps_the_last_good_one(
    live_server, fleet, opcua_server, start_gateway, tmp_path
):
    # given a gateway with one OPC UA machine, run from the platform alone (no edge.yaml)
    node, gateway, token = managed_setup(fleet, opcua_server)
    state = tmp_path / "state"
    proc = start_gateway(live_server.url, token, state)

    def reported() -> Gateway:
        return Gateway.objects.get(pk=gateway.pk)

    def uploading() -> bool:
        health = reported().health.get("nodes", {}).get(str(node.pk), {})
        return bool(health.get("last_upload"))

    # then it applies version 1, streams the machine and reports its health
    wait_until(uploading, within_s=60, what="applied and uploading", log=tmp_path)
    assert reported().applied_version == 1 and reported().apply_error == ""
    assert TelemetryPoint.objects.filter(node=node, spindle_rpm__isnull=False).exists()
    assert json.loads((state / "config.json").read_text())["version"] == 1
    assert (state / "node-tokens.json").stat().st_mode & 0o077 == 0  # its secrets are its own

    # when the platform issues a version the machine refuses (a node id it does not have)
    bad = opcua_edge(opcua_server, signals={"spindle_rpm": "ns=2;s=Machine1.Nope"})
    node_config_save(node=node, by=fleet["vendor"], config={"edge": bad})
    wait_until(
        lambda: "version 2" in reported().apply_error, within_s=60, what="v2 refused", log=tmp_path
    )
    # then it runs on version 1 still, says why, and the machine's data keeps coming
    assert reported().applied_version == 1
    assert "Machine1.Nope" in reported().apply_error
    assert json.loads((state / "config.json").read_text())["version"] == 1
    count = TelemetryPoint.objects.filter(node=node).count()
    wait_until(
        lambda: TelemetryPoint.objects.filter(node=node).count() > count + 3,
        within_s=30,
        what="streaming on the last good configuration",
        log=tmp_path,
    )
    assert proc.poll() is None

    # when it restarts while the platform is unreachable
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(20) == 0
    start_gateway(f"http://127.0.0.1:{free_port()}", token, state)

    # then it runs the last good configuration from disk: the machine's points pile up locally
    buffer = state / f"buffer.sqlite3.{node.pk}"

    def buffered() -> int:
        if not buffer.exists():
            return 0
        with sqlite3.connect(buffer) as db:
            return int(db.execute("SELECT count(*) FROM points").fetchone()[0])

    wait_until(lambda: buffered() >= 5, within_s=60, what="buffering offline", log=tmp_path)


@pytest.mark.django_db(transaction=True)
def test_a_configuration_that_cannot_be_built_is_not_applied_and_not_retried(
    live_server, fleet, tmp_path
):
    node, gateway, token = managed_setup(fleet, 4999)
    bad = {
        "protocol": "modbus",
        "url": "modbus://127.0.0.1:5039",
        "registers": {"temperature_c": {"address": 3, "type": "int99"}},
    }
    node_config_save(node=node, by=fleet["vendor"], config={"edge": bad})
    managed = ManagedGateway(PlatformLink(live_server.url, token), tmp_path, probation_s=0.5)

    async def two_polls() -> None:
        await managed.cycle()
        first_error = managed.apply_error
        await managed.cycle()  # 304: the refused version is not tried again
        assert managed.apply_error == first_error
        await managed._stop()

    asyncio.run(two_polls())
    assert managed.running is None and managed.applied_version is None
    assert "version 1" in managed.apply_error and "type must be one of" in managed.apply_error
    assert not (tmp_path / "config.json").exists()
    reported = Gateway.objects.get(pk=gateway.pk)  # and the platform was told
    assert reported.applied_version is None and reported.apply_error == managed.apply_error


CONTROL_EDGE = {
    "setpoints": {
        "load_kw": {"node_id": "ns=2;s=Machine1.Job.LoadKw", "type": "double", "low": 0, "high": 50}
    },
    "commands": {
        "stop": {"node_id": "ns=2;s=Machine1.Job.Running", "type": "boolean", "value": False},
        "resume": {"node_id": "ns=2;s=Machine1.Job.Running", "type": "boolean", "value": True},
    },
}


async def read_opcua(port: int, node_id: str) -> object:
    from asyncua.client.client import Client

    async with Client(url=f"opc.tcp://127.0.0.1:{port}/imewe/", timeout=4) as client:
        return await client.get_node(node_id).read_value()


def test_commands_wait_for_an_offline_gateway_and_reach_the_machine(
    live_server, fleet, opcua_server, start_gateway, tmp_path
):
    # given a managed machine whose device map allows a load setpoint, stop and resume
    node, gateway, token = managed_setup(fleet, opcua_server)
    node_config_save(
        node=node, by=fleet["vendor"], config={"edge": opcua_edge(opcua_server, **CONTROL_EDGE)}
    )
    operator = jwt_client(fleet["operator"])  # the site's operator may command it
    url = f"/api/v1/nodes/{node.pk}/commands/"

    # when commands are issued while its gateway is not running
    setpoint = operator.post(url, {"kind": "setpoint", "setpoint": "load_kw", "value": 12.5})
    assert setpoint.status_code == 201, setpoint.json()
    resume = operator.post(url, {"kind": "resume"}).json()
    stale = operator.post(url, {"kind": "setpoint", "setpoint": "load_kw", "value": 40}).json()
    NodeCommand.objects.filter(pk=stale["id"]).update(expires_at=timezone.now())  # its time ran out
    assert operator.get(url).json()[0]["status"] == "expired"
    assert asyncio.run(read_opcua(opcua_server, "ns=2;s=Machine1.Job.LoadKw")) == 0.0

    # then the gateway applies them once it starts, and acknowledges each
    start_gateway(live_server.url, token, tmp_path / "state")

    def finished() -> bool:
        return not NodeCommand.objects.filter(
            node=node, status__in=["pending", "delivered"]
        ).exists()

    wait_until(finished, within_s=60, what="commands acknowledged", log=tmp_path)
    shown = {c["id"]: c for c in operator.get(url).json()}
    assert shown[setpoint.json()["id"]]["status"] == "succeeded", shown
    assert "reads 12.5" in shown[setpoint.json()["id"]]["outcome"]
    assert shown[resume["id"]]["status"] == "succeeded"
    assert shown[stale["id"]]["status"] == "expired"  # never applied
    assert asyncio.run(read_opcua(opcua_server, "ns=2;s=Machine1.Job.LoadKw")) == 12.5
    assert asyncio.run(read_opcua(opcua_server, "ns=2;s=Machine1.Job.Running")) is True

    # and a command to the running gateway arrives within a poll or two
    stop = operator.post(url, {"kind": "stop"}).json()
    wait_until(finished, within_s=30, what="stop acknowledged", log=tmp_path)
    assert NodeCommand.objects.get(pk=stop["id"]).status == "succeeded"
    assert asyncio.run(read_opcua(opcua_server, "ns=2;s=Machine1.Job.Running")) is False
    issued = AuditLog.objects.filter(object_type="vendors.nodecommand", action="object.create")
    assert issued.count() == 4 and {e.actor_email for e in issued} == {"op@f.test"}


@pytest.mark.django_db(transaction=True)
def test_a_state_dir_that_cannot_be_written_is_reported_not_fatal(live_server, fleet, tmp_path):
    _, gateway, token = managed_setup(fleet, 4999)  # a machine that is off: not a failure
    (tmp_path / "config.json").mkdir()  # where the last good configuration should go
    managed = ManagedGateway(PlatformLink(live_server.url, token), tmp_path, probation_s=0.5)
    assert managed.last_good() is None

    async def one_poll() -> None:
        await managed.cycle()
        assert managed.running is not None  # it runs the configuration all the same
        await managed._stop()

    asyncio.run(one_poll())
    assert managed.applied_version == 1
    assert "applied but not saved as last good" in managed.apply_error
    assert Gateway.objects.get(pk=gateway.pk).apply_error == managed.apply_error
