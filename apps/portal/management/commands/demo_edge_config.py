from pathlib import Path
from typing import Any

import yaml
from django.core.management.base import BaseCommand, CommandError, CommandParser

from apps.users.models import User
from apps.vendors.models import FabricationNode
from apps.vendors.services import device_credential_issue

# Demo node -> (OPC UA port of its simulator, signals it reports)
DEMO_DEVICES = {
    "Mill-01": (
        4841,
        ["spindle_rpm", "torque_nm", "power_kw", "temperature_c", "vibration_mm_s"],
    ),
    "Printer-01": (4842, ["power_kw", "temperature_c", "vibration_mm_s", "progress_pct"]),
}


class Command(BaseCommand):
    help = "Issue fresh device tokens for the demo nodes and write the edge gateway's config."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--output", default="var/edge.yaml")
        parser.add_argument("--base-url", default="http://127.0.0.1:8000")

    def handle(self, *args: Any, **options: Any) -> None:
        from edge.simulators.opcua import NODE_IDS

        vendor = User.objects.filter(email="vendor@imewe.test").first()
        if vendor is None:
            raise CommandError("Run seed_demo first.")
        devices = []
        for name, (port, signals) in DEMO_DEVICES.items():
            node = FabricationNode.objects.get(vendor__name="Forge Fabrication Co", name=name)
            _, token = device_credential_issue(node=node, by=vendor, label="make run gateway")
            devices.append(
                {
                    "node": node.pk,
                    "token": token,
                    "protocol": "opcua",
                    "url": f"opc.tcp://127.0.0.1:{port}/imewe/",
                    "interval_ms": 250,
                    "signals": {s: f"ns=2;s={NODE_IDS[s]}" for s in signals},
                }
            )
        config = {
            "upstream": {"url": options["base_url"], "batch_size": 1000},
            "buffer": {"path": "var/edge-buffer.sqlite3", "max_points": 1_000_000},
            "forward_every_s": 1.0,
            "devices": devices,
        }
        path = Path(options["output"])
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(yaml.safe_dump(config, sort_keys=False))
        path.chmod(0o600)  # holds device tokens
        self.stdout.write(f"edge config with {len(devices)} devices written to {path}")
