"""The edge gateway: `python -m edge.gateway --config edge.yaml`.

Polls each device (OPC UA for now) at its own interval, turns readings into telemetry points,
checks local safety thresholds, and forwards the points through the on-disk buffer to the
platform's HTTPS batch API with the node's device token. Example edge.yaml:

    upstream: {url: "http://127.0.0.1:8000", batch_size: 1000}
    buffer: {path: "var/edge-buffer.sqlite3", max_points: 1000000}
    forward_every_s: 1.0
    devices:
      - {node: 1, token: "imw_...", protocol: opcua, url: "opc.tcp://127.0.0.1:4840/imewe/",
         interval_ms: 250, signals: {spindle_rpm: "ns=2;s=Machine1.Spindle.Speed"}}

Each device has its node's own token (a token writes for one node only) and its own buffer
file (`<buffer path>.<node>`), so one node's backlog never blocks another's.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import yaml

from edge.buffer import SqliteBuffer
from edge.forwarder import Forwarder
from edge.publishers import HttpsBatchPublisher, UpstreamRefused
from edge.safety import DEFAULT_LIMITS, LocalAlert, check
from edge.sources.opcua import OpcUaReadError, OpcUaSource

logger = logging.getLogger("edge.gateway")


@dataclass(frozen=True)
class DeviceConfig:
    node: int
    url: str
    signals: dict[str, str]
    interval_s: float
    protocol: str = "opcua"


@dataclass
class Gateway:
    devices: list[DeviceConfig]
    forwarders: dict[int, Forwarder]
    forward_every_s: float = 1.0
    limits: dict[str, tuple[float, float]] = field(default_factory=lambda: dict(DEFAULT_LIMITS))
    on_alert: Callable[[LocalAlert], None] | None = None
    alerts: list[LocalAlert] = field(default_factory=list)

    async def _poll(self, device: DeviceConfig) -> None:
        backoff = 1.0
        while True:
            source = OpcUaSource(device.url, device.signals)
            try:
                await source.connect()
                backoff = 1.0
                while True:
                    values = await source.read()
                    now = datetime.now(UTC)
                    self.forwarders[device.node].enqueue(
                        [{"node": device.node, "time": now.isoformat(), **values}]
                    )
                    for alert in check(device.node, now, values, self.limits):
                        self.alerts.append(alert)
                        logger.warning("LOCAL ALERT %s", alert)
                        if self.on_alert is not None:
                            self.on_alert(alert)
                    await asyncio.sleep(device.interval_s)
            except asyncio.CancelledError:
                raise
            except OpcUaReadError:
                logger.exception("Device %s: the signal map is wrong; fix the config", device.node)
                raise
            except Exception as exc:  # the machine is unreachable: retry with backoff
                logger.warning(
                    "Device %s unreachable (%s); retrying in %.0f s", device.node, exc, backoff
                )
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 30.0)
            finally:
                with contextlib.suppress(Exception):
                    await source.disconnect()

    async def _forward(self) -> None:
        while True:
            await asyncio.sleep(self.forward_every_s)
            for node, forwarder in self.forwarders.items():
                try:
                    await asyncio.to_thread(forwarder.drain)
                except UpstreamRefused:
                    logger.error(
                        "Node %s: the platform refused its token; points stay buffered", node
                    )

    async def run(self) -> None:
        tasks = [asyncio.create_task(self._poll(d)) for d in self.devices]
        tasks.append(asyncio.create_task(self._forward()))
        try:
            await asyncio.gather(*tasks)
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.to_thread(self._final_drain)

    def _final_drain(self) -> None:
        for forwarder in self.forwarders.values():
            with contextlib.suppress(Exception):
                forwarder.drain()


def from_config(config: dict[str, Any]) -> Gateway:
    upstream = config["upstream"]
    buffer_cfg = config.get("buffer", {})
    buffer_path = str(buffer_cfg.get("path", "edge-buffer.sqlite3"))
    devices = []
    forwarders = {}
    for raw in config["devices"]:
        node = raw.get("node")
        interval_ms = int(raw.get("interval_ms", 250))
        if not 100 <= interval_ms <= 60_000:
            raise ValueError(f"device {node}: interval_ms must be 100-60000")
        if raw.get("protocol", "opcua") != "opcua":
            raise ValueError(
                f"device {node}: protocol {raw.get('protocol')!r} is not supported yet"
            )
        if not raw.get("token"):
            raise ValueError(f"device {node}: its node's device token is required")
        device = DeviceConfig(
            int(raw["node"]), raw["url"], dict(raw["signals"]), interval_ms / 1000
        )
        devices.append(device)
        path = buffer_path if buffer_path == ":memory:" else f"{buffer_path}.{device.node}"
        forwarders[device.node] = Forwarder(
            SqliteBuffer(path, max_points=int(buffer_cfg.get("max_points", 1_000_000))),
            HttpsBatchPublisher(upstream["url"], raw["token"]),
            batch_size=int(upstream.get("batch_size", 1000)),
        )
    return Gateway(
        devices=devices,
        forwarders=forwarders,
        forward_every_s=float(config.get("forward_every_s", 1.0)),
    )


def main() -> None:
    parser = argparse.ArgumentParser(description="Imewe edge gateway")
    parser.add_argument("--config", required=True, help="path to edge.yaml")
    args = parser.parse_args()
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    with open(args.config, encoding="utf-8") as handle:
        gateway = from_config(yaml.safe_load(handle))
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(gateway.run())


if __name__ == "__main__":
    main()
