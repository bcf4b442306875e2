"""Gateway software shipped by rollouts, end to end with real gateway processes and real wheels
built from this checkout's `edge/` (apps/vendors/edge_releases.py, edge/software.py): a release
whose stored file was tampered with is refused by its checksum before anything is installed and
the gateway is rolled back; a good release is installed, self-tested and takes over the same
process; a release that installs but cannot run is given up after its trial starts, and the
gateway runs its old software again."""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from apps.telemetry.models import TelemetryPoint
from apps.vendors.edge_releases import edge_release_register, edge_wheel_build
from apps.vendors.gateway_services import gateway_credential_issue, gateway_register
from apps.vendors.models import EdgeRelease, FabricationNode, Gateway, Rollout
from apps.vendors.rollouts import rollout_start
from apps.vendors.services import node_config_save, node_transition
from tests.edge.conftest import opcua_edge, wait_until
from tests.fixtures.fleet import Fleet, approved_node

ROOT = Path(__file__).resolve().parents[2]
CHECKOUT = "imewe-edge/0+checkout"


def release(
    fleet: Fleet, tmp_path: Path, version: str, *, source: Path | None = None
) -> EdgeRelease:
    wheel = edge_wheel_build(version=version, out_dir=tmp_path / "wheels", source=source)
    with open(wheel, "rb") as handle:
        return edge_release_register(by=fleet.admin, wheel=handle, filename=wheel.name)


def hall(fleet: Fleet, port: int, names: tuple[str, ...]) -> dict[str, tuple[Gateway, str]]:
    out = {}
    for name in names:
        node = approved_node(fleet, name=f"Mill {name}")
        node_config_save(node=node, by=fleet.vendor, config={"edge": opcua_edge(port)})
        node_transition(node=node, to=FabricationNode.Status.IDLE, by=fleet.vendor, reason="up")
        gateway = gateway_register(
            by=fleet.vendor,
            vendor=fleet.forge,
            name=name,
            site=fleet.site,
            tags=["canary"] if name == "gw-a" else ["hall"],
            forwarding={"poll_s": 1, "forward_every_s": 0.3},
            nodes=[node],
        )
        _, token = gateway_credential_issue(gateway=gateway, by=fleet.vendor)
        out[name] = (gateway, token)
    return out


def fresh(gateway: Gateway) -> Gateway:
    return Gateway.objects.get(pk=gateway.pk)


def streams(gateway: Gateway, tmp_path: Path) -> None:
    node = gateway.nodes.get()
    count = TelemetryPoint.objects.filter(node=node).count()
    wait_until(
        lambda: TelemetryPoint.objects.filter(node=node).count() > count + 3,
        within_s=30,
        what=f"{gateway.name} streaming",
        log=tmp_path,
    )


def settled(rollout: Rollout) -> Callable[[], bool]:
    def check() -> bool:
        current = Rollout.objects.get(pk=rollout.pk)
        return (
            current.status != Rollout.Status.RUNNING
            and not current.targets.filter(state__in=["queued", "downloading"]).exists()
        )

    return check


def test_a_tampered_release_is_refused_and_a_good_one_takes_over_the_running_gateways(
    live_server, fleet: Fleet, opcua_server, start_gateway, tmp_path
):
    # given two gateways running from this checkout (no release installed)
    gateways = hall(fleet, opcua_server, ("gw-a", "gw-b"))
    procs = {
        name: start_gateway(live_server.url, token, tmp_path / name)
        for name, (_, token) in gateways.items()
    }
    wait_until(
        lambda: all(fresh(g).applied_version == 1 for g, _ in gateways.values()),
        within_s=90,
        what="both run version 1",
        log=tmp_path,
    )
    assert {fresh(g).software_version for g, _ in gateways.values()} == {CHECKOUT}
    a = gateways["gw-a"][0]

    # when release 2.0.1's stored wheel is altered after it was registered (one byte: the size
    # is the same, the checksum is not) and a rollout ships it to the canary
    tampered = release(fleet, tmp_path, "2.0.1")
    with open(tampered.wheel.path, "r+b") as handle:
        handle.seek(100)
        byte = handle.read(1)
        handle.seek(100)
        handle.write(bytes([byte[0] ^ 0xFF]))
    canary = rollout_start(
        by=fleet.vendor,
        vendor=fleet.forge,
        name="Canary 2.0.1",
        forwarding={},
        release=tampered,
        wave_sizes=[1],
        success_threshold_pct=100,
        error_threshold_pct=0,
        tags=["canary"],
    )
    wait_until(settled(canary), within_s=60, what="the canary rollout settled", log=tmp_path)

    # then gw-a refused it by its checksum before installing anything, the rollout stopped and
    # rolled it back, and it runs its old software and configuration, streaming
    canary.refresh_from_db()
    target = canary.targets.get()
    assert canary.status == Rollout.Status.STOPPED and target.state == "rolled_back"
    assert "software 2.0.1: the download does not match the release" in target.error
    assert f"expected {tampered.sha256[:16]}" in target.error
    assert "nothing was installed" in target.error
    assert not (tmp_path / "gw-a" / "software" / "2.0.1").exists()
    wait_until(
        lambda: fresh(a).applied_version == 3 and fresh(a).apply_error == "",
        within_s=30,
        what="gw-a back on its old configuration",
        log=tmp_path,
    )
    assert "software" not in fresh(a).config_versions.get(version=3).document
    assert fresh(a).software_version == CHECKOUT and fresh(a).rollout_release is None
    streams(a, tmp_path)

    # when a good release 2.0.0 is rolled out to both, one wave each
    good = release(fleet, tmp_path, "2.0.0")
    pids = {name: proc.pid for name, proc in procs.items()}
    rollout = rollout_start(
        by=fleet.vendor,
        vendor=fleet.forge,
        name="Edge 2.0.0",
        forwarding={},
        release=good,
        wave_sizes=[1, 1],
        success_threshold_pct=100,
        error_threshold_pct=0,
    )
    wait_until(settled(rollout), within_s=120, what="the 2.0.0 rollout settled", log=tmp_path)

    # then each installed it, passed its self-test and switched to it in the same process;
    # the release is now theirs and their configurations name it
    rollout.refresh_from_db()
    assert rollout.status == Rollout.Status.COMPLETED, list(rollout.targets.values())
    assert set(rollout.targets.values_list("state", flat=True)) == {"applied"}
    for name, (gateway, _) in gateways.items():
        current = fresh(gateway)
        assert current.software_version == "imewe-edge/2.0.0"
        assert current.software_release == good and current.rollout_release is None
        assert procs[name].poll() is None and procs[name].pid == pids[name]
        state = json.loads((tmp_path / name / "software" / "state.json").read_text())
        assert state["current"] == "2.0.0" and state["trial"] is False  # confirmed by a poll
        installed = tmp_path / name / "software" / "2.0.0"
        assert (installed / "edge" / "software.py").exists()
        assert (installed / "imewe_edge-2.0.0.dist-info" / "METADATA").exists()
        saved = json.loads((tmp_path / name / "config.json").read_text())
        assert saved["software"]["version"] == "2.0.0"
        streams(current, tmp_path)  # the new software streams the machine


BROKEN_RUN = """
    async def run(self) -> None:
        raise SystemExit("this release cannot start")

    async def _original_run(self) -> None:"""


def test_a_release_that_cannot_start_is_given_up_after_its_trial_starts(
    live_server, fleet: Fleet, opcua_server, start_gateway, tmp_path
):
    # given a gateway, supervised as a service manager would (started again when it exits),
    # and a release that installs and imports fine but exits as soon as it runs
    gateways = hall(fleet, opcua_server, ("gw-a",))
    gateway, token = gateways["gw-a"]
    state = tmp_path / "gw-a"
    procs: list[subprocess.Popen[bytes]] = [start_gateway(live_server.url, token, state)]
    wait_until(lambda: fresh(gateway).applied_version == 1, within_s=60, what="v1", log=tmp_path)
    source = tmp_path / "broken" / "edge"
    shutil.copytree(ROOT / "edge", source, ignore=shutil.ignore_patterns("__pycache__"))
    managed = source / "managed.py"
    text = managed.read_text()
    assert "    async def run(self) -> None:" in text
    managed.write_text(text.replace("\n    async def run(self) -> None:", BROKEN_RUN, 1))
    broken = release(fleet, tmp_path, "3.0.0", source=source)

    # when a rollout ships it
    rollout = rollout_start(
        by=fleet.vendor,
        vendor=fleet.forge,
        name="Edge 3.0.0",
        forwarding={},
        release=broken,
        wave_sizes=[1],
        success_threshold_pct=100,
        error_threshold_pct=0,
    )

    def supervised_and_settled() -> bool:
        if procs[-1].poll() is not None:  # Restart=always
            procs.append(start_gateway(live_server.url, token, state))
        return settled(rollout)()

    wait_until(supervised_and_settled, within_s=150, what="the rollout settled", log=tmp_path)

    # then the gateway switched to it, which exited at each of its trial starts; the next start
    # gave it up and ran the old software, which refused the configuration naming it: the
    # rollout stopped and rolled the gateway back
    rollout.refresh_from_db()
    target = rollout.targets.get()
    assert rollout.status == Rollout.Status.STOPPED and target.state == "rolled_back"
    assert "software 3.0.0 was given up here: it was started 3 times" in target.error
    assert len(procs) == 4  # the first process and three supervised starts
    software = json.loads((state / "software" / "state.json").read_text())
    assert software["current"] is None and "3.0.0" in software["refused"]
    wait_until(
        lambda: fresh(gateway).applied_version == 3 and fresh(gateway).apply_error == "",
        within_s=30,
        what="back on the old configuration",
        log=tmp_path,
    )
    assert fresh(gateway).software_version == CHECKOUT
    assert procs[-1].poll() is None
    streams(gateway, tmp_path)


@pytest.mark.django_db
def test_the_wheel_is_the_gateway_package_and_nothing_else(fleet: Fleet, tmp_path):
    wheel = edge_wheel_build(version="1.2.3", out_dir=tmp_path)
    assert wheel.name == "imewe_edge-1.2.3-py3-none-any.whl"
    import zipfile

    names = zipfile.ZipFile(wheel).namelist()
    assert all(n.startswith(("edge/", "imewe_edge-1.2.3.dist-info/")) for n in names)
    assert "edge/software.py" in names and "edge/sources/opcua.py" in names
    assert not any("__pycache__" in n or n.endswith(".pyc") for n in names)
