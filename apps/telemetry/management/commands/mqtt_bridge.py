import os
import signal
from typing import Any
from urllib.parse import urlparse

from django.core.management.base import BaseCommand, CommandParser

from apps.telemetry.mqtt_bridge import MqttBridge


class Command(BaseCommand):
    help = "Bridge MQTT telemetry (factory/+/machine/+/telemetry, QoS 1) into the telemetry store."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--url", default=os.environ.get("MQTT_URL", "mqtt://127.0.0.1:1883"))
        parser.add_argument("--client-id", default=os.environ.get("MQTT_CLIENT_ID", "imewe-bridge"))
        parser.add_argument("--flush-ms", type=int, default=200)

    def handle(self, *args: Any, **options: Any) -> None:
        url = urlparse(options["url"])
        bridge = MqttBridge(
            host=url.hostname or "127.0.0.1",
            port=url.port or 1883,
            client_id=options["client_id"],
            flush_interval=options["flush_ms"] / 1000,
        )
        signal.signal(signal.SIGTERM, lambda *_: bridge.stopping.set())
        self.stdout.write(f"MQTT bridge on {url.hostname}:{url.port or 1883}; Ctrl+C stops it.")
        try:
            bridge.run_forever()
        except KeyboardInterrupt:
            bridge.stopping.set()
