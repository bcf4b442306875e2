from pathlib import Path
from typing import Any

import yaml
from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from apps.users.models import User
from apps.vendors.models import FabricationNode
from apps.vendors.services import device_credential_issue

MILL_SIGNALS = ["spindle_rpm", "torque_nm", "power_kw", "temperature_c", "vibration_mm_s"]
PRINTER_SIGNALS = ["power_kw", "temperature_c", "vibration_mm_s", "progress_pct"]
PRINTER_LIMITS = {"temperature_c": [240, 260]}  # a hot end at 210 C is normal
# The OctoPrint-style simulator's port and API key, as Procfile.dev starts it (development only)
DEMO_OCTOPRINT_PORT = 5080
DEMO_OCTOPRINT_API_KEY = "imewe-demo-octoprint-key"


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
    help = "Issue fresh device tokens for the demo nodes and write the edge gateway's config."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--output", default="var/edge.yaml")
        parser.add_argument("--base-url", default="http://127.0.0.1:8000")

    def handle(self, *args: Any, **options: Any) -> None:
        vendor = User.objects.filter(email="vendor@imewe.test").first()
        if vendor is None:
            raise CommandError("Run seed_demo first.")
        devices = []
        for name, device in demo_devices().items():
            node = FabricationNode.objects.get(vendor__name="Forge Fabrication Co", name=name)
            _, token = device_credential_issue(node=node, by=vendor, label="make run gateway")
            devices.append(
                {
                    "node": node.pk,
                    "token": token,
                    "interval_ms": 250,
                    # the simulated machine takes its assigned parts, DEMO_TIME_SCALE times
                    # faster than machine time (360: an hour in 10 s), and runs only then
                    "work": {"speedup": settings.DEMO_TIME_SCALE, "simulated": True},
                    **device,
                }
            )
        config = {
            "upstream": {"url": options["base_url"], "batch_size": 1000},
            "buffer": {"path": "var/edge-buffer.sqlite3", "max_points": 1_000_000},
            # a point waits at most this long at the gateway: short for a live demo; a large
            # fleet trades latency for fewer, larger uploads (bench/live_latency, bench/ingest)
            "forward_every_s": 0.25,
            "devices": devices,
        }
        path = Path(options["output"])
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(yaml.safe_dump(config, sort_keys=False))
        path.chmod(0o600)  # holds device tokens
        self.stdout.write(f"edge config with {len(devices)} devices written to {path}")
