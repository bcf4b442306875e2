"""`manage.py demo_edge_config`: connect `make run`'s simulated machines to the platform, through
an edge gateway configured by a file (var/edge.yaml, fresh device tokens) or, with --managed,
through a managed gateway registered on the platform (the demo's default)."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from typing import Any

import yaml
from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from apps.users.models import User
from apps.vendors.edge_releases import edge_release_register, edge_wheel_build
from apps.vendors.gateway_services import (
    gateway_credential_issue,
    gateway_register,
    gateway_update,
)
from apps.vendors.models import EdgeRelease, FabricationNode, Gateway
from apps.vendors.services import device_credential_issue, node_config_save

MILL_SIGNALS = ["spindle_rpm", "torque_nm", "power_kw", "temperature_c", "vibration_mm_s"]
PRINTER_SIGNALS = ["power_kw", "temperature_c", "vibration_mm_s", "progress_pct"]
PRINTER_LIMITS = {"temperature_c": [240, 260]}  # a hot end at 210 C is normal
# The OctoPrint-style simulator's port and API key, as Procfile.dev starts it (development only)
DEMO_OCTOPRINT_PORT = 5080
DEMO_OCTOPRINT_API_KEY = "imewe-demo-octoprint-key"
DEMO_GATEWAY = "Hall A"
DEMO_RELEASE = "1.0.0"
# a point waits at most this long at the gateway: short for a live demo; a large fleet trades
# latency for fewer, larger uploads (bench/live_latency, bench/ingest)
FORWARDING = {"forward_every_s": 0.25, "poll_s": 5, "max_points": 1_000_000}


def demo_devices() -> dict[str, dict[str, Any]]:
    """Demo node -> how the gateway reaches its simulator (ports as in Procfile.dev): one
    machine per protocol the gateway speaks, and a printer behind an OctoPrint-style server."""
    from edge.simulators.modbus import REGISTER_MAP
    from edge.simulators.mtconnect import SIGNAL_MAP
    from edge.simulators.opcua import NODE_IDS

    return {
        "Mill-01": {
            "protocol": "opcua",
            "url": "opc.tcp://127.0.0.1:4841/imewe/",
            "signals": {s: f"ns=2;s={NODE_IDS[s]}" for s in MILL_SIGNALS},
            # what its operators may command from its page, through the gateway
            "commands": {
                "stop": {
                    "node_id": "ns=2;s=Machine1.Job.Running",
                    "type": "boolean",
                    "value": False,
                },
                "resume": {
                    "node_id": "ns=2;s=Machine1.Job.Running",
                    "type": "boolean",
                    "value": True,
                },
            },
            "setpoints": {
                "load_kw": {
                    "node_id": "ns=2;s=Machine1.Job.LoadKw",
                    "type": "double",
                    "low": 0,
                    "high": 7.5,
                }
            },
        },
        "Printer-01": {
            "protocol": "opcua",
            "url": "opc.tcp://127.0.0.1:4842/imewe/",
            "signals": {s: f"ns=2;s={NODE_IDS[s]}" for s in PRINTER_SIGNALS},
            "limits": PRINTER_LIMITS,
        },
        "Printer-02": {
            "protocol": "modbus",
            "url": "modbus://127.0.0.1:5021",
            "unit": 1,
            "registers": {s: REGISTER_MAP[s] for s in [*PRINTER_SIGNALS, "material_remaining"]},
            "limits": PRINTER_LIMITS,
        },
        # the printer's own server runs the parts: the printer work agent uploads each part's
        # G-code and starts it (`work: {}`), rather than the simulated machine's work agent
        "Printer-03": {
            "protocol": "octoprint",
            "url": f"http://127.0.0.1:{DEMO_OCTOPRINT_PORT}",
            "api_key": DEMO_OCTOPRINT_API_KEY,
            "interval_ms": 1000,
            "work": {},
        },
        "Mill-02": {
            "protocol": "mtconnect",
            "url": "http://127.0.0.1:5001",
            "interval_ms": 500,
            "signals": SIGNAL_MAP,
        },
    }


class Command(BaseCommand):
    help = (
        "Issue fresh device tokens for the demo nodes and write the edge gateway's config; "
        "with --managed, put the demo fleet under a managed gateway instead."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--output", default="var/edge.yaml")
        parser.add_argument("--base-url", default="http://127.0.0.1:8000")
        parser.add_argument(
            "--managed",
            action="store_true",
            help="register the demo gateway on the platform (the machines' connections in their "
            "configuration profiles), write its token to --token-file and start it afresh",
        )
        parser.add_argument("--token-file", default="var/gateway-token")
        parser.add_argument("--state-dir", default="var/edge-gateway")

    def handle(self, *args: Any, **options: Any) -> None:
        vendor = User.objects.filter(email="vendor@imewe.test").first()
        if vendor is None:
            raise CommandError("Run seed_demo first.")
        if options["managed"]:
            self.managed(vendor, options)
            return
        devices = []
        for name, device in demo_devices().items():
            node = _node(name)
            _, token = device_credential_issue(node=node, by=vendor, label="make run gateway")
            devices.append({"node": node.pk, "token": token, **_entry(device)})
        config = {
            "upstream": {"url": options["base_url"], "batch_size": 1000},
            "buffer": {"path": "var/edge-buffer.sqlite3", "max_points": 1_000_000},
            "forward_every_s": FORWARDING["forward_every_s"],
            "devices": devices,
        }
        path = Path(options["output"])
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(yaml.safe_dump(config, sort_keys=False))
        path.chmod(0o600)  # holds device tokens
        self.stdout.write(f"edge config with {len(devices)} devices written to {path}")

    def managed(self, vendor: User, options: dict[str, Any]) -> None:
        """The demo fleet behind one managed gateway, "Hall A": each machine's connection goes
        into its configuration profile (a new version only when it changed), the gateway gets
        a fresh token, and its state directory starts empty but for installed software, so it
        pulls everything from the platform as a new gateway would. A demo release of the
        gateway software is built once, so a software rollout can be tried."""
        nodes = []
        for name, device in demo_devices().items():
            node = _node(name)
            current = node.configs.order_by("-version").first()
            config = dict(current.config) if current is not None else {}
            wanted = {**config, "edge": _entry(device)}
            if wanted != config:
                node_config_save(
                    node=node, by=vendor, config=wanted, message="make run: managed gateway"
                )
            nodes.append(node)
        forge = nodes[0].vendor
        gateway = Gateway.objects.filter(vendor=forge, name=DEMO_GATEWAY).first()
        if gateway is None:
            gateway = gateway_register(
                by=vendor,
                vendor=forge,
                name=DEMO_GATEWAY,
                site=nodes[0].site,
                tags=["demo", "hall-a"],
                forwarding=FORWARDING,
                nodes=nodes,
            )
        else:
            gateway_update(gateway=gateway, by=vendor, nodes=nodes)
        _, token = gateway_credential_issue(gateway=gateway, by=vendor)
        token_file = Path(options["token_file"])
        token_file.parent.mkdir(parents=True, exist_ok=True)
        token_file.write_text(token)
        token_file.chmod(0o600)
        state = Path(options["state_dir"])
        if state.is_dir():  # everything but its installed software: it starts as a new gateway
            for path in state.iterdir():
                if path.is_dir() and path.name != "software":
                    shutil.rmtree(path)
                elif not path.is_dir():
                    path.unlink()
        if not EdgeRelease.objects.exists():
            admin = User.objects.filter(email="admin@imewe.test").first()
            if admin is not None:
                with tempfile.TemporaryDirectory() as scratch:
                    wheel = edge_wheel_build(version=DEMO_RELEASE, out_dir=Path(scratch))
                    with open(wheel, "rb") as handle:
                        edge_release_register(
                            by=admin,
                            wheel=handle,
                            filename=wheel.name,
                            notes="Built from this checkout by make run, to try a rollout.",
                        )
        self.stdout.write(
            f"gateway {gateway.name} serves {len(nodes)} machines; token in {token_file}"
        )


def _node(name: str) -> FabricationNode:
    return FabricationNode.objects.get(vendor__name="Forge Fabrication Co", name=name)


def _entry(device: dict[str, Any]) -> dict[str, Any]:
    """The device's edge section: every machine streams every 250 ms, and the simulated ones
    take their assigned parts DEMO_TIME_SCALE times faster than machine time (360: an hour in
    10 s), and run only then; a device may say otherwise (the OctoPrint printer's own server
    runs its parts)."""
    return {
        "interval_ms": 250,
        "work": {"speedup": settings.DEMO_TIME_SCALE, "simulated": True},
        **device,
    }
