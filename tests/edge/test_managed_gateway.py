"""A gateway under management, end to end: a real gateway process pulls its configuration from
the live platform, streams a real OPC UA server's readings, refuses a configuration that cannot
run while it keeps running on the last good one (reporting why), and starts on that one from disk
when the platform is unreachable; a rollout in waves to three gateway processes stops when one
of them cannot apply it, and that one is rolled back."""

from __future__ import annotations

import asyncio
import json
import signal
import sqlite3
import subprocess
from pathlib import Path

import pytest
from django.utils import timezone

from apps.core.models import AuditLog
from apps.telemetry.models import TelemetryPoint
from apps.vendors.gateway_services import gateway_credential_issue, gateway_register
from apps.vendors.models import FabricationNode, Gateway, NodeCommand, Rollout, RolloutTarget
from apps.vendors.rollouts import rollout_start
from apps.vendors.services import node_config_save, node_transition
from edge.control import PlatformLink
from edge.managed import ManagedGateway
from tests.conftest import free_port, jwt_client
from tests.edge.conftest import opcua_edge, wait_until
from tests.fixtures.fleet import Fleet, approved_node

ROOT = Path(__file__).resolve().parents[2]


def managed_setup(fleet: Fleet, port: int) -> tuple[FabricationNode, Gateway, str]:
    node = approved_node(fleet, name="Managed-Mill")
    node_config_save(node=node, by=fleet.vendor, config={"edge": opcua_edge(port)})
    node_transition(node=node, to=FabricationNode.Status.IDLE, by=fleet.vendor, reason="up")
    gateway = gateway_register(
        by=fleet.vendor,
        vendor=fleet.forge,
        name="Hall-A",
        site=fleet.site,
        forwarding={"poll_s": 1, "forward_every_s": 0.3},
        nodes=[node],
    )
    _, token = gateway_credential_issue(gateway=gateway, by=fleet.vendor)
    return node, gateway, token


def test_a_managed_gateway_applies_the_platforms_configuration_and_keeps_the_last_good_one(
    live_server, fleet: Fleet, opcua_server, start_gateway, tmp_path
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
    node_config_save(node=node, by=fleet.vendor, config={"edge": bad})
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
    live_server, fleet: Fleet, tmp_path
):
    node, gateway, token = managed_setup(fleet, 4999)
    bad = {
        "protocol": "modbus",
        "url": "modbus://127.0.0.1:5039",
        "registers": {"temperature_c": {"address": 3, "type": "int99"}},
    }
    node_config_save(node=node, by=fleet.vendor, config={"edge": bad})
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
    live_server, fleet: Fleet, opcua_server, start_gateway, tmp_path
):
    # given a managed machine whose device map allows a load setpoint, stop and resume
    node, gateway, token = managed_setup(fleet, opcua_server)
    node_config_save(
        node=node, by=fleet.vendor, config={"edge": opcua_edge(opcua_server, **CONTROL_EDGE)}
    )
    operator = jwt_client(fleet.operator)  # the site's operator may command it
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
def test_a_state_dir_that_cannot_be_written_is_reported_not_fatal(
    live_server, fleet: Fleet, tmp_path
):
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


def test_a_rollout_in_two_waves_stops_at_the_error_threshold_and_rolls_back_the_gateway_that_failed(
    live_server, fleet: Fleet, opcua_server, start_gateway, tmp_path
):
    # given three gateways in the hall, each serving a machine, their buffers capped at 50 000
    # points (about 13 MB for a six-signal machine); gw-c's service may write files of at most
    # 16 MB (its unit file's LimitFSIZE=)
    gateways: dict[str, Gateway] = {}
    procs: dict[str, subprocess.Popen[bytes]] = {}
    for name in ("gw-a", "gw-b", "gw-c"):
        node = approved_node(fleet, name=f"Mill {name}")
        node_config_save(node=node, by=fleet.vendor, config={"edge": opcua_edge(opcua_server)})
        node_transition(node=node, to=FabricationNode.Status.IDLE, by=fleet.vendor, reason="up")
        gateway = gateway_register(
            by=fleet.vendor,
            vendor=fleet.forge,
            name=name,
            site=fleet.site,
            tags=["hall"],
            forwarding={"poll_s": 1, "forward_every_s": 0.3, "max_points": 50_000},
            nodes=[node],
        )
        _, token = gateway_credential_issue(gateway=gateway, by=fleet.vendor)
        limit = 16_000_000 if name == "gw-c" else None
        procs[name] = start_gateway(live_server.url, token, tmp_path / name, file_size_limit=limit)
        gateways[name] = gateway

    def fresh(name: str) -> Gateway:
        return Gateway.objects.get(pk=gateways[name].pk)

    wait_until(
        lambda: all(fresh(n).applied_version == 1 for n in gateways),
        within_s=90,
        what="all three run version 1",
        log=tmp_path,
    )

    # when a rollout raises the buffers to 1 000 000 points (about a day offline) in waves of
    # one and two gateways: all of a wave must apply it to go on, more than 34 % failed stops it
    rollout = rollout_start(
        by=fleet.vendor,
        vendor=fleet.forge,
        name="Ride out a day offline",
        forwarding={"max_points": 1_000_000},
        wave_sizes=[1, 2],
        success_threshold_pct=100,
        error_threshold_pct=34,
        site=fleet.site,
        tags=["hall"],
    )

    def targets() -> dict[str, RolloutTarget]:
        return {t.gateway.name: t for t in rollout.targets.select_related("gateway")}

    assert {n: (t.wave, t.state) for n, t in targets().items()} == {
        "gw-a": (1, "queued"),
        "gw-b": (2, "queued"),
        "gw-c": (2, "queued"),
    }

    def settled() -> bool:
        return Rollout.objects.get(pk=rollout.pk).status != Rollout.Status.RUNNING and all(
            t.state not in ("queued", "downloading") for t in targets().values()
        )

    wait_until(settled, within_s=90, what="the rollout settled", log=tmp_path)

    # then the first wave applied it before the second was handed it; gw-c refused it, which
    # stopped the rollout and rolled gw-c back; gw-b, already under way, applied it
    rollout.refresh_from_db()
    assert rollout.status == Rollout.Status.STOPPED and rollout.current_wave == 2
    final = targets()
    assert {n: t.state for n, t in final.items()} == {
        "gw-a": "applied",
        "gw-b": "applied",
        "gw-c": "rolled_back",
    }
    second_wave_handed = gateways["gw-b"].config_versions.get(version=2).created_at
    assert final["gw-a"].updated_at <= second_wave_handed
    assert final["gw-c"].error.startswith("version 2: not applied: device ")
    assert "at most 16 MB (its file size limit" in final["gw-c"].error

    # and each gateway runs what its state says: gw-a and gw-b the new cap, saved as their last
    # good configuration and kept as their own settings
    for name in ("gw-a", "gw-b"):
        assert fresh(name).applied_version == 2 and fresh(name).apply_error == ""
        assert fresh(name).forwarding["max_points"] == 1_000_000
        assert fresh(name).rollout_overlay == {}
        saved = json.loads((tmp_path / name / "config.json").read_text())
        assert saved["version"] == 2 and saved["forwarding"]["max_points"] == 1_000_000

    # and gw-c is back on its old settings (version 3, the old document again), still running
    # and streaming its machine
    wait_until(
        lambda: fresh("gw-c").applied_version == 3,
        within_s=30,
        what="gw-c applied the rolled-back configuration",
        log=tmp_path,
    )
    c = fresh("gw-c")
    assert c.forwarding["max_points"] == 50_000 and c.rollout_overlay == {}
    assert c.config_versions.get(version=3).digest == c.config_versions.get(version=1).digest
    saved = json.loads((tmp_path / "gw-c" / "config.json").read_text())
    assert saved["version"] == 3 and saved["forwarding"]["max_points"] == 50_000
    c_node = c.nodes.get()
    count = TelemetryPoint.objects.filter(node=c_node).count()
    wait_until(
        lambda: TelemetryPoint.objects.filter(node=c_node).count() > count + 3,
        within_s=30,
        what="gw-c streaming on its old configuration",
        log=tmp_path,
    )
    assert all(proc.poll() is None for proc in procs.values())
