import asyncio
import logging
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from apps.portal.management.commands.demo_edge_config import demo_devices as all_devices

# the simulators with a fault to inject (the OctoPrint-style printer has none)
FAULTABLE = ("opcua", "modbus", "mtconnect")


def demo_devices() -> dict[str, dict[str, Any]]:
    return {name: d for name, d in all_devices().items() if d["protocol"] in FAULTABLE}


class Command(BaseCommand):
    help = (
        "Inject a fault into one of `make run`'s simulated machines (none repairs it): "
        "bearing_wear ramps its vibration, overheat its temperature, power_spike bursts above "
        "its rated power. The platform's threshold rules then open one ticket."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        from edge.simulators.machines import Fault

        parser.add_argument("node", help=f"one of {', '.join(demo_devices())}")
        parser.add_argument("fault", choices=[f.value for f in Fault])

    def handle(self, *args: Any, **options: Any) -> None:
        from edge.simulators.control import ControlError, control_for
        from edge.simulators.machines import Fault

        devices = demo_devices()
        device = devices.get(options["node"])
        if device is None:
            raise CommandError(f"No simulated machine {options['node']!r}: {', '.join(devices)}.")
        logging.getLogger("asyncua").setLevel(logging.WARNING)  # it logs each connection
        control = control_for(device["protocol"], device["url"], unit=device.get("unit", 1))
        try:
            asyncio.run(control.inject(Fault(options["fault"])))
        except ControlError as exc:
            raise CommandError(f"{exc} (is `make run` running?)") from exc
        self.stdout.write(f"{options['node']}: fault {options['fault']} injected")
