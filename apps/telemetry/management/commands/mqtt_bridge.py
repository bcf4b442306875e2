"""`manage.py mqtt_bridge`: one bridge, or with --processes N a supervisor of N bridge processes
that share the load through the broker's shared subscription (see apps/telemetry/mqtt_bridge.py).

Processes, not threads: a bridge spends its time in Python (parsing, validation, COPY rows) under
one GIL, so a second core needs a second process. The supervisor gives child i the client id
`<prefix>-<i>`, restarts a child that dies (its session, and the messages waiting in it, are
picked up again by the same id) and stops them all on SIGTERM or SIGINT. One command line per
machine suits honcho and compose alike.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from django.core.management.base import BaseCommand, CommandError, CommandParser

from apps.telemetry.mqtt_bridge import SHARE_GROUP, TOPIC_ROOT, MqttBridge, client_id_for

logger = logging.getLogger(__name__)
STOP_GRACE_S = 30  # a child finishes its flush and acknowledges within this


class Command(BaseCommand):
    help = (
        "Bridge MQTT telemetry (<root>/+/machine/+/telemetry, QoS 1, a shared subscription) into"
        " the telemetry store; --processes N runs N bridges."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        env = os.environ.get
        parser.add_argument("--url", default=env("MQTT_URL", "mqtt://127.0.0.1:1883"))
        parser.add_argument(
            "--client-id",
            default=env("MQTT_CLIENT_ID", ""),
            help="client id prefix; the id is <prefix>-<index> (default imewe-bridge-<hostname>)",
        )
        parser.add_argument(
            "--index", type=int, default=int(env("MQTT_BRIDGE_INDEX", "0")), help="this bridge's"
        )
        parser.add_argument(
            "--processes",
            type=int,
            default=int(env("BRIDGE_PROCESSES", "1")),
            help="bridge processes to run, indexes --index .. --index+N-1",
        )
        parser.add_argument(
            "--share-group",
            default=env("MQTT_SHARE_GROUP", SHARE_GROUP),
            help='shared subscription group ("" subscribes without sharing)',
        )
        parser.add_argument("--topic-root", default=env("MQTT_TOPIC_ROOT", TOPIC_ROOT))
        parser.add_argument("--flush-ms", type=int, default=200)
        parser.add_argument(
            "--metrics-port",
            type=int,
            default=int(env("MQTT_BRIDGE_METRICS_PORT", "0")),
            help="serve Prometheus metrics on this port (0: off); with --processes, bridge i "
            "serves on port + i",
        )
        parser.add_argument("--metrics-addr", default=env("MQTT_BRIDGE_METRICS_ADDR", "127.0.0.1"))
        parser.add_argument(
            "--retire",
            metavar="CLIENT_ID",
            help="store what this client id's session holds, then end the session and exit",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        if options["processes"] < 1:
            raise CommandError("--processes must be at least 1")
        if options["processes"] > 1:
            self.supervise(options)
            return
        url = urlparse(options["url"])
        bridge = MqttBridge(
            host=url.hostname or "127.0.0.1",
            port=url.port or 1883,
            client_id=options["retire"]
            or client_id_for(prefix=options["client_id"], index=options["index"]),
            flush_interval=options["flush_ms"] / 1000,
            topic_root=options["topic_root"],
            share_group=options["share_group"] or None,
        )
        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, lambda *_: bridge.stopping.set())
        if options["metrics_port"] and not options["retire"]:
            from prometheus_client import start_http_server

            start_http_server(options["metrics_port"], addr=options["metrics_addr"])
        if options["retire"]:
            if not bridge.retire():
                raise CommandError(f"{bridge.client_id} still received messages; run it again")
            self.stdout.write(f"{bridge.client_id} retired: {bridge.stats}")
            return
        self.stdout.write(
            f"MQTT bridge {bridge.client_id} on {url.hostname}:{url.port or 1883}"
            f" ({bridge.subscription}); Ctrl+C stops it."
        )
        bridge.run_forever()

    def supervise(self, options: dict[str, Any]) -> None:
        prefix = options["client_id"] or client_id_for(index=0).rpartition("-")[0]
        first, count = options["index"], options["processes"]
        common = [
            "--url",
            options["url"],
            "--client-id",
            prefix,
            "--processes",
            "1",
            "--share-group",
            options["share_group"],
            "--topic-root",
            options["topic_root"],
            "--flush-ms",
            str(options["flush_ms"]),
        ]
        stopping = threading.Event()
        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, lambda *_: stopping.set())
        children: dict[int, subprocess.Popen[bytes]] = {}
        started: dict[int, float] = {}
        failures: dict[int, int] = dict.fromkeys(range(first, first + count), 0)
        due: dict[int, float] = dict.fromkeys(failures, 0.0)  # when to (re)start each index
        self.stdout.write(f"Supervising {count} MQTT bridges {prefix}-{first}..{first + count - 1}")
        self.stdout.flush()
        while not stopping.is_set():
            now = time.monotonic()
            for index, child in list(children.items()):
                if child.poll() is None:
                    continue
                del children[index]
                lived = now - started[index]
                failures[index] = 0 if lived > 60 else failures[index] + 1
                due[index] = now + min(30, 2 ** failures[index]) if failures[index] else now
                logger.warning(
                    "MQTT bridge %s-%s exited (%s) after %.0f s; restarting",
                    prefix,
                    index,
                    child.returncode,
                    lived,
                )
            for index, at in due.items():
                if index not in children and at <= now:
                    children[index] = subprocess.Popen(
                        [
                            *manage_command(),
                            "mqtt_bridge",
                            "--skip-checks",
                            *common,
                            "--index",
                            str(index),
                            "--metrics-addr",
                            options["metrics_addr"],
                            "--metrics-port",
                            str(options["metrics_port"] + index - first)
                            if options["metrics_port"]
                            else "0",
                        ]
                    )
                    started[index] = now
            stopping.wait(0.5)
        for child in children.values():
            if child.poll() is None:
                child.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + STOP_GRACE_S
        for child in children.values():
            try:
                child.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                child.kill()  # its unacknowledged messages wait in its session
                child.wait()
        self.stdout.write("MQTT bridges stopped")


def manage_command() -> list[str]:
    """How this process was started, to start the children the same way."""
    script = Path(sys.argv[0])
    if script.name == "manage.py":
        return [sys.executable, str(script.resolve())]
    return [sys.executable, "-m", "django"]
