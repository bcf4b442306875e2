"""The edge gateway: `python -m edge.gateway --config edge.yaml`.

Polls each device at its own interval over OPC UA, Modbus TCP, MTConnect or a 3D printer's server
(OctoPrint, Moonraker, PrusaLink), turns readings into
telemetry points, checks local safety thresholds, and forwards the points through the on-disk
buffer to the platform: the HTTPS batch API, or MQTT (QoS 1) through the platform's bridge.
Example edge.yaml:

    upstream: {url: "https://imewe.example", batch_size: 1000}
    # or: upstream: {mqtt: "mqtt://broker:1883", site: "lagos-1", batch_size: 1000}
    buffer: {path: "var/edge-buffer.sqlite3", max_points: 1000000}
    # points the platform never takes: var/edge-buffer.sqlite3.<node>.dead-letter.jsonl
    forward_every_s: 1.0
    devices:
      - {node: 1, token: "imw_...", protocol: opcua, url: "opc.tcp://10.0.0.5:4840/",
         interval_ms: 250, signals: {spindle_rpm: "ns=2;s=Machine1.Spindle.Speed"}}
      - {node: 2, token: "imw_...", protocol: modbus, url: "modbus://10.0.0.6:502", unit: 1,
         interval_ms: 250, registers: {temperature_c: {address: 3, type: int16, scale: 0.1}}}
      - {node: 3, token: "imw_...", protocol: mtconnect, url: "http://10.0.0.7:5000",
         interval_ms: 500, signals: {spindle_rpm: S1speed, power_kw: {id: S1power, scale: 0.001}},
         limits: {temperature_c: [60, 70]}}
      # 3D printers through their own servers (edge/sources/printer.py); no signal map
      - {node: 4, token: "imw_...", protocol: octoprint, url: "http://octopi.local",
         api_key: "...", interval_ms: 1000}
      - {node: 5, token: "imw_...", protocol: moonraker, url: "http://voron.local:7125"}
      - {node: 6, token: "imw_...", protocol: prusalink, url: "http://mk4.local",
         username: maker, password: "...", storage: usb}   # or api_key: "..."

Each device has its node's own token (a token writes for one node only) and its own buffer
file (`<buffer path>.<node>`), so one node's backlog never blocks another's.

A point worth showing is forwarded at once (edge/urgency.py): a signal moved beyond its deadband
since the value last sent, a new signal or the node's first point, a local safety alert, or
nothing sent for `max_silence_s` (0.1-3600, default 10). The rest waits for the periodic batch,
every `forward_every_s` (0.01-60, default 1.0): longer means fewer, larger uploads from a big
fleet (bench/ingest). With the defaults an OPC UA change reaches a browser within poll interval
+ 100 ms (bench/live_latency). Each send takes everything buffered for the node, so points read
together travel together, and a node sends at most once per `min_urgent_gap_s` (0.01-60, default
its poll interval): a noisy signal costs one request per gap, not one per point. Deadbands are
per signal, `{abs: A, rel: R}` (a change counts when larger than both A and R x the last sent
value; "*" for any other signal), set gateway-wide or per device over edge/urgency.py's
defaults:

    deadband: {temperature_c: {abs: 1.0}, "*": {rel: 0.1}}
    devices:
      - {node: 1, ..., deadband: {spindle_rpm: {abs: 10}}, min_urgent_gap_s: 0.5}

While the platform is unreachable urgent points wait in the buffer like the others, and the
next try comes `forward_every_s` after the failed one (store-and-forward, edge/forwarder.py).

`limits` overrides the local safety thresholds (warning, critical) per signal for that device.
`work: {speedup: 360}` runs the node's work agent (edge/work_agent.py): it takes the parts the
platform assigns to the node and reports start, progress and completion; `speedup` (1-100000) is
the time scale, how many machine seconds pass in a second (360: an estimated hour runs in 10 s).
`simulated: true` in `work` makes the agent drive the device's simulator
(edge/simulators/control.py): load only while a part runs. On a printer (octoprint, moonraker,
prusalink) `work: {}` runs the printer work agent instead (edge/sources/printer_work.py): the
part's G-code goes to the printer, which runs it; the printer's own state drives the reports.
`work: {auto_bed_clear: true}` confirms the bed clear after each part (a printer that ejects
its parts); otherwise a node with a bed-clear step waits for a person's confirmation.

One bad point never blocks a node (edge/forwarder.py): points the platform rejects, and points
that still fail alone after `upstream.max_attempts` (default 3) server errors in a row on their
batch and a split of that batch, are parked in `<buffer path>.<node>.dead-letter.jsonl` with
the reason and the time, logged at ERROR and raised as a local alert (signal "telemetry").
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import functools
import logging
import math
import os
import signal as signals
import time as clock
from collections.abc import Callable, Coroutine, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlparse

import yaml

from edge.buffer import SqliteBuffer, capacity_problem, file_size_limit
from edge.deadletter import DeadLetter
from edge.forwarder import Forwarder
from edge.publishers import (
    HttpsBatchPublisher,
    MqttLink,
    MqttPublisher,
    Publisher,
    UpstreamRefused,
)
from edge.safety import DEFAULT_LIMITS, LocalAlert, SafetyMonitor
from edge.simulators.control import control_for
from edge.sources.base import MappingError, Source, TimedSource
from edge.sources.printer import Printer, PrinterSource
from edge.sources.printer_work import PrinterWorkAgent
from edge.urgency import (
    DEFAULT_DEADBANDS,
    DEFAULT_MAX_SILENCE_S,
    Deadband,
    UrgencyFilter,
    deadbands_from,
)
from edge.work_agent import WorkAgent

logger = logging.getLogger("edge.gateway")
PRINTER_PROTOCOLS = ("octoprint", "moonraker", "prusalink")  # edge/sources/printer.py
PRINTER_SIGNALS = 8  # what a printer's point carries (temperatures, progress, state)
PROTOCOLS = ("opcua", "modbus", "mtconnect", *PRINTER_PROTOCOLS)
PRINTER_OPTIONS = ("api_key", "username", "password", "storage")
DEFAULT_FORWARD_EVERY_S = 1.0


@dataclass(frozen=True)
class DeviceConfig:
    node: int
    url: str
    interval_s: float
    protocol: str = "opcua"
    signals: Mapping[str, Any] = field(default_factory=dict)  # OPC UA node ids / MTConnect ids
    registers: Mapping[str, Any] = field(default_factory=dict)  # Modbus register map
    unit: int = 1  # Modbus unit (device) id
    device: str = ""  # MTConnect device name, when the agent serves several
    # a printer's server: api_key, username/password (PrusaLink digest), storage (PrusaLink)
    printer: Mapping[str, str] = field(default_factory=dict)
    limits: Mapping[str, tuple[float, float]] = field(default_factory=dict)
    # the node's work agent (takes assigned parts), e.g. {speedup: 360}; None: no agent
    work: Mapping[str, Any] | None = None
    deadbands: Mapping[str, Deadband] = field(default_factory=dict)  # over the gateway's
    min_urgent_gap_s: float | None = None  # None: the gateway's, else the poll interval


@dataclass
class SourceHealth:
    """How one device's source and uplink are doing, for the platform's gateway page."""

    reads: int = 0  # successful reads since the gateway started
    errors: int = 0  # failed connects or reads
    last_error: str = ""
    last_upload: datetime | None = None  # the last send the platform took


@dataclass
class ForwardLane:
    """When one node's buffer goes upstream: at once after an urgent point, but at most one
    send per `min_gap_s` (a noisy signal degrades to one batch per gap, not a request per
    point); otherwise every `forward_every_s`, right after the poll that makes it due, so that
    a batch and the next urgent point are never a few ms apart (the platform's live view shows
    a node at most every 250 ms: a second message right behind the first would be held).
    `fallback_s` sends anyway when no poll comes (an unreachable machine, a backlog from an
    outage). After a failed send nothing goes before `forward_every_s` has passed: while the
    platform is down, urgent points wait in the buffer like the others. Event loop only."""

    filter: UrgencyFilter
    forward_every_s: float
    min_gap_s: float
    fallback_s: float
    wake: asyncio.Event = field(default_factory=asyncio.Event)
    want_at: float = math.inf  # monotonic time a send is wanted (inf: none yet)
    last_attempt: float = -math.inf  # the last send (an empty buffer sends nothing)
    checked_at: float = -math.inf  # the last time the sender looked, sending or not
    retry_at: float = -math.inf  # after a failed send: the earliest next one
    urgent_waiting: bool = False  # an urgent point is buffered and not yet being sent
    urgent_sends: int = 0
    batch_sends: int = 0

    def recorded(self, now: float, *, urgent: bool) -> None:
        if urgent:
            self.urgent_waiting = True
            at = max(self.last_attempt + self.min_gap_s, self.retry_at)
        elif now - self.last_attempt >= self.forward_every_s:
            at = max(now, self.retry_at)
        else:
            return
        if at < self.want_at:
            self.want_at = at
            self.wake.set()

    def next_send_at(self) -> float:
        return min(self.want_at, self.checked_at + self.fallback_s)


class StampedAtRead:
    """Gives a polled source (OPC UA, Modbus) the timed interface: one point per read, stamped
    with the gateway's clock at the moment of the read."""

    def __init__(self, source: Source) -> None:
        self.source = source

    async def connect(self) -> None:
        await self.source.connect()

    async def disconnect(self) -> None:
        await self.source.disconnect()

    async def read_timed(self) -> list[tuple[datetime, dict[str, float]]]:
        values = await self.source.read()
        return [(datetime.now(UTC), values)]


def make_printer(device: DeviceConfig) -> Printer:
    options = device.printer
    if device.protocol == "octoprint":
        from edge.sources.octoprint import OctoPrintPrinter

        return OctoPrintPrinter(device.url, api_key=options.get("api_key", ""))
    if device.protocol == "moonraker":
        from edge.sources.moonraker import MoonrakerPrinter

        return MoonrakerPrinter(device.url, api_key=options.get("api_key", ""))
    from edge.sources.prusalink import PrusaLinkPrinter

    return PrusaLinkPrinter(
        device.url,
        api_key=options.get("api_key", ""),
        username=options.get("username", ""),
        password=options.get("password", ""),
        storage=options.get("storage", "usb"),
    )


def make_source(device: DeviceConfig) -> TimedSource:
    # Imported per protocol, so a gateway that speaks only one needs only that library.
    if device.protocol in PRINTER_PROTOCOLS:
        return StampedAtRead(PrinterSource(make_printer(device)))
    if device.protocol == "modbus":
        from edge.sources.modbus import ModbusSource

        url = urlparse(device.url if "://" in device.url else f"modbus://{device.url}")
        return StampedAtRead(
            ModbusSource(
                url.hostname or "127.0.0.1", url.port or 502, device.registers, unit=device.unit
            )
        )
    if device.protocol == "mtconnect":
        from edge.sources.mtconnect import MtConnectSource

        return MtConnectSource(device.url, device.signals, device=device.device)
    from edge.sources.opcua import OpcUaSource

    return StampedAtRead(OpcUaSource(device.url, device.signals))


@dataclass
class Gateway:
    devices: list[DeviceConfig]
    forwarders: dict[int, Forwarder]
    forward_every_s: float = DEFAULT_FORWARD_EVERY_S
    limits: dict[str, tuple[float, float]] = field(default_factory=lambda: dict(DEFAULT_LIMITS))
    on_alert: Callable[[LocalAlert], None] | None = None
    alerts: list[LocalAlert] = field(default_factory=list)
    mqtt: MqttLink | None = None
    monitors: dict[int, SafetyMonitor] = field(default_factory=dict)
    agents: list[WorkAgent | PrinterWorkAgent] = field(default_factory=list)
    # what is forwarded at once (edge/urgency.py): gateway-wide deadbands, per signal
    deadbands: dict[str, Deadband] = field(default_factory=lambda: dict(DEFAULT_DEADBANDS))
    max_silence_s: float = DEFAULT_MAX_SILENCE_S
    min_urgent_gap_s: float | None = None  # None: each device's poll interval
    lanes: dict[int, ForwardLane] = field(default_factory=dict)
    health: dict[int, SourceHealth] = field(default_factory=dict)

    def health_of(self, node: int) -> SourceHealth:
        return self.health.setdefault(node, SourceHealth())

    def lane(self, device: DeviceConfig) -> ForwardLane:
        lane = self.lanes.get(device.node)
        if lane is None:
            gap = device.min_urgent_gap_s or self.min_urgent_gap_s or device.interval_s
            lane = self.lanes[device.node] = ForwardLane(
                UrgencyFilter({**self.deadbands, **device.deadbands}, self.max_silence_s),
                forward_every_s=self.forward_every_s,
                min_gap_s=gap,
                fallback_s=self.forward_every_s + device.interval_s,
            )
        return lane

    def _record(self, device: DeviceConfig, time: datetime, values: dict[str, float]) -> None:
        point: dict[str, Any] = {"node": device.node, "time": time.isoformat()}
        for signal, value in values.items():
            # "extra.x" travels in the point's extra object (a signal with no column)
            if signal.startswith("extra."):
                point.setdefault("extra", {})[signal[len("extra.") :]] = value
            else:
                point[signal] = value
        self.forwarders[device.node].enqueue([point])
        monitor = self.monitors.get(device.node)
        if monitor is None:
            monitor = self.monitors[device.node] = SafetyMonitor(
                device.node, {**self.limits, **device.limits}
            )
        alerts = monitor.check(time, values)
        lane = self.lane(device)
        now = clock.monotonic()
        reason = lane.filter.check(now, values, alert=bool(alerts))
        if reason is not None:
            logger.debug("Node %s: forwarding at once (%s)", device.node, reason)
        lane.recorded(now, urgent=reason is not None)
        for alert in alerts:
            self.alerts.append(alert)
            log = logger.warning if alert.severity != "cleared" else logger.info
            log(
                "LOCAL ALERT node %s %s %s: %s",
                alert.node,
                alert.signal,
                alert.severity,
                alert.value,
            )
            if self.on_alert is not None:
                self.on_alert(alert)

    def dead_lettered(self, node: int, letters: list[DeadLetter]) -> None:
        """A local alert for points parked in the node's dead-letter file (called from the
        forwarding thread, or paho's for rejections reported over MQTT)."""
        forwarder = self.forwarders[node]
        message = (
            f"{len(letters)} point(s) parked in {forwarder.dead_letters.path or 'memory'} "
            f"({letters[0].reason}); {forwarder.stats.dead_lettered} so far"
        )
        alert = LocalAlert(
            node, "telemetry", "warning", float(len(letters)), datetime.now(UTC), message
        )
        self.alerts.append(alert)
        logger.error("LOCAL ALERT node %s telemetry: %s", node, message)
        if self.on_alert is not None:
            self.on_alert(alert)

    def mqtt_rejection(self, node: int, rejection: Mapping[str, Any]) -> None:
        """The bridge rejected points of `node` on its errors topic: park its report (the
        point itself stays with the message the broker delivered; its index is in details)."""
        forwarder = self.forwarders.get(node)
        if forwarder is None:
            return
        error = rejection.get("error")
        error = error if isinstance(error, dict) else {}
        details = error.get("details")
        letter = DeadLetter(
            {"topic": rejection.get("topic"), "details": details},
            f"rejected by the platform over MQTT: {error.get('message') or error.get('code')}",
            errors
            if isinstance(details, dict) and isinstance(errors := details.get("errors"), dict)
            else None,
        )
        forwarder.stats.dead_lettered += 1
        self.dead_lettered(node, forwarder.dead_letters.park([letter]))

    async def _poll(self, device: DeviceConfig) -> None:
        backoff = 1.0
        while True:
            source = make_source(device)
            try:
                await source.connect()
                backoff = 1.0
                while True:
                    for stamp, values in await source.read_timed():
                        self._record(device, stamp, values)
                    self.health_of(device.node).reads += 1
                    await asyncio.sleep(device.interval_s)
            except asyncio.CancelledError:
                raise
            except MappingError as exc:
                self._source_failed(device.node, f"the signal map is wrong: {exc}")
                logger.exception("Device %s: the signal map is wrong; fix the config", device.node)
                raise
            except Exception as exc:  # the machine is unreachable: retry with backoff
                self._source_failed(device.node, f"unreachable: {exc or type(exc).__name__}")
                logger.warning(
                    "Device %s unreachable (%s); retrying in %.0f s", device.node, exc, backoff
                )
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 30.0)
            finally:
                with contextlib.suppress(Exception):
                    await source.disconnect()

    def _source_failed(self, node: int, message: str) -> None:
        health = self.health_of(node)
        health.errors += 1
        health.last_error = message[:500]

    async def _forward(self, device: DeviceConfig) -> None:
        """Send the node's buffer whenever its lane says so; one send at a time per node."""
        lane = self.lane(device)
        forwarder = self.forwarders[device.node]
        while True:  # the first pass sends what a previous run left buffered
            delay = lane.next_send_at() - clock.monotonic()
            if delay > 0:
                lane.wake.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(lane.wake.wait(), delay)
                continue
            # Points read together were all recorded before this task ran (a source's read
            # is recorded in one go), and the send takes everything buffered: they coalesce.
            urgent, lane.urgent_waiting = lane.urgent_waiting, False
            lane.want_at = math.inf
            lane.checked_at = clock.monotonic()
            if forwarder.buffer.last_id() == 0:
                # nothing buffered (max(id) reads the index, not the table); not a send: the
                # next urgent point must not wait a gap for it
                continue
            lane.last_attempt = lane.checked_at
            lane.filter.sending(lane.last_attempt)
            if urgent:
                lane.urgent_sends += 1
            else:
                lane.batch_sends += 1
            delivered = await asyncio.to_thread(self._send, device.node)
            lane.retry_at = -math.inf if delivered else lane.last_attempt + self.forward_every_s

    def _send(self, node: int) -> bool:
        """What the node had buffered when the send began (later points wait for the next)."""
        forwarder = self.forwarders[node]
        try:
            delivered = forwarder.drain(up_to=forwarder.buffer.last_id())
            if delivered:
                self.health_of(node).last_upload = datetime.now(UTC)
            return delivered
        except UpstreamRefused:
            logger.error("Node %s: the platform refused its token; points stay buffered", node)
            return False

    async def run(self) -> None:
        tasks = [asyncio.create_task(self._poll(d)) for d in self.devices]
        tasks.extend(asyncio.create_task(self._forward(d)) for d in self.devices)
        tasks.extend(asyncio.create_task(agent.run()) for agent in self.agents)
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
        if self.mqtt is not None:
            self.mqtt.close()


def _device(raw: Mapping[str, Any]) -> DeviceConfig:
    node = raw.get("node")
    if not isinstance(node, int) or node < 1:
        raise ValueError(f"device {node!r}: node must be the platform's node id (an integer)")
    protocol = str(raw.get("protocol", "opcua"))
    if protocol not in PROTOCOLS:
        raise ValueError(
            f"device {node}: protocol {protocol!r} is not supported ({', '.join(PROTOCOLS)})"
        )
    interval_ms = int(raw.get("interval_ms", 250))
    if not 100 <= interval_ms <= 60_000:
        raise ValueError(f"device {node}: interval_ms must be 100-60000")
    if not raw.get("token"):
        raise ValueError(f"device {node}: its node's device token is required")
    if not raw.get("url"):
        raise ValueError(f"device {node}: url is required")
    mapping_key = "registers" if protocol == "modbus" else "signals"
    if protocol not in PRINTER_PROTOCOLS and not raw.get(mapping_key):
        raise ValueError(f"device {node}: {mapping_key} must map at least one signal")
    limits: dict[str, tuple[float, float]] = {}
    for signal, pair in dict(raw.get("limits") or {}).items():
        warning, critical = (float(v) for v in pair)
        if warning > critical:
            raise ValueError(f"device {node}: limits.{signal}: warning above critical")
        limits[str(signal)] = (warning, critical)
    gap = _seconds(raw, "min_urgent_gap_s", 0.01, 60, f"device {node}")
    device = DeviceConfig(
        node=node,
        url=str(raw["url"]),
        interval_s=interval_ms / 1000,
        protocol=protocol,
        signals=dict(raw.get("signals") or {}),
        registers=dict(raw.get("registers") or {}),
        unit=int(raw.get("unit", 1)),
        device=str(raw.get("device", "")),
        printer={key: str(raw[key]) for key in PRINTER_OPTIONS if key in raw},
        limits=limits,
        work=dict(raw["work"]) if raw.get("work") is not None else None,
        deadbands=deadbands_from(raw.get("deadband"), f"device {node}"),
        min_urgent_gap_s=gap,
    )
    make_source(device)  # validates the protocol-specific map now, not at the first poll
    return device


def _seconds(raw: Mapping[str, Any], key: str, low: float, high: float, where: str) -> float | None:
    """`raw[key]` as seconds in [low, high]; None when absent. ValueError says what is wrong."""
    value = raw.get(key)
    if value is None:
        return None
    try:
        seconds = float(value)
    except (TypeError, ValueError):
        seconds = math.nan
    if not low <= seconds <= high:  # NaN fails too
        raise ValueError(f"{where}: {key} must be {low:g}-{high:g} (seconds)")
    return seconds


def from_config(config: Mapping[str, Any]) -> Gateway:
    forward_every_s = float(config.get("forward_every_s", DEFAULT_FORWARD_EVERY_S))
    if not 0.01 <= forward_every_s <= 60:
        # the forward interval trades latency (a point waits up to it) against request rate
        raise ValueError("forward_every_s must be 0.01-60 (seconds between uploads)")
    # at most one urgent send per node per gap (default: the device's poll interval)
    min_urgent_gap_s = _seconds(config, "min_urgent_gap_s", 0.01, 60, "gateway")
    max_silence_s = _seconds(config, "max_silence_s", 0.1, 3600, "gateway")
    deadbands = {**DEFAULT_DEADBANDS, **deadbands_from(config.get("deadband"), "gateway")}
    upstream = dict(config["upstream"])
    buffer_cfg = config.get("buffer", {})
    buffer_path = str(buffer_cfg.get("path", "edge-buffer.sqlite3"))
    mqtt = None
    if upstream.get("mqtt"):
        mqtt = MqttLink(str(upstream["mqtt"]), site=str(upstream.get("site", "site")))
    elif not upstream.get("url"):
        raise ValueError("upstream needs url (HTTPS batch API) or mqtt (broker URL)")
    max_points = int(buffer_cfg.get("max_points", 1_000_000))
    if max_points < 1:
        raise ValueError("buffer.max_points must be at least 1")
    size_limit = file_size_limit() if buffer_path != ":memory:" else None
    devices = []
    forwarders = {}
    agents: list[WorkAgent | PrinterWorkAgent] = []
    for raw in config["devices"]:
        device = _device(raw)
        if device.node in forwarders:
            raise ValueError(f"device {device.node}: listed twice")
        signals = len(device.signals or device.registers) or PRINTER_SIGNALS
        problem = capacity_problem(max_points, signals=signals, limit=size_limit)
        if problem:
            raise ValueError(f"device {device.node}: {problem}")
        devices.append(device)
        publisher: Publisher
        if mqtt is not None:
            publisher = MqttPublisher(mqtt, device.node, raw["token"])
        else:
            publisher = HttpsBatchPublisher(upstream["url"], raw["token"])
        if device.work is not None:
            work_url = str(device.work.get("url") or upstream.get("url") or "")
            if not work_url:
                raise ValueError(f"device {device.node}: work.url is needed with an MQTT upstream")
            if device.protocol in PRINTER_PROTOCOLS:
                # the printer's own server runs the job (edge/sources/printer_work.py)
                agents.append(
                    PrinterWorkAgent(
                        work_url,
                        raw["token"],
                        make_printer(device),
                        auto_bed_clear=bool(device.work.get("auto_bed_clear", False)),
                    )
                )
            else:
                speedup = float(device.work.get("speedup", 360.0))
                if not 1 <= speedup <= 100_000:  # NaN fails too
                    raise ValueError(f"device {device.node}: work.speedup must be 1-100000")
                machine = None
                if device.work.get("simulated"):
                    machine = control_for(device.protocol, device.url, unit=device.unit)
                agents.append(WorkAgent(work_url, raw["token"], speedup=speedup, machine=machine))
        path = buffer_path if buffer_path == ":memory:" else f"{buffer_path}.{device.node}"
        forwarders[device.node] = Forwarder(
            SqliteBuffer(path, max_points=max_points),
            publisher,
            batch_size=int(upstream.get("batch_size", 1000)),
            max_attempts=int(upstream.get("max_attempts", 3)),
        )
    gateway = Gateway(
        devices=devices,
        forwarders=forwarders,
        forward_every_s=forward_every_s,
        mqtt=mqtt,
        agents=agents,
        deadbands=deadbands,
        max_silence_s=max_silence_s or DEFAULT_MAX_SILENCE_S,
        min_urgent_gap_s=min_urgent_gap_s,
    )
    for node, forwarder in forwarders.items():
        forwarder.on_dead_letter = functools.partial(gateway.dead_lettered, node)
    if mqtt is not None:
        mqtt.on_rejection = gateway.mqtt_rejection
    return gateway


def main() -> None:
    parser = argparse.ArgumentParser(
        description="Imewe edge gateway: from edge.yaml (--config), or managed by the platform "
        "(--platform URL --token T; see edge/managed.py)"
    )
    parser.add_argument("--config", help="path to edge.yaml")
    parser.add_argument("--platform", help="the platform's base URL (managed mode)")
    parser.add_argument(
        "--token",
        default=os.environ.get("IMEWE_GATEWAY_TOKEN", ""),
        help="the gateway's token (default: $IMEWE_GATEWAY_TOKEN, kept out of the process list)",
    )
    parser.add_argument(
        "--state-dir",
        default=os.environ.get("IMEWE_GATEWAY_STATE", "var/edge-gateway"),
        help="managed mode: last good configuration, node tokens and buffers",
    )
    args = parser.parse_args()
    if bool(args.config) == bool(args.platform):
        parser.error("give either --config edge.yaml or --platform URL (with --token)")
    if args.platform and not args.token:
        parser.error("--platform needs the gateway's token (--token or IMEWE_GATEWAY_TOKEN)")
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    logging.getLogger("asyncua").setLevel(logging.WARNING)  # it logs every read at INFO
    if args.platform:
        from edge import software
        from edge.control import PlatformLink
        from edge.managed import ManagedGateway, SwitchSoftware

        software.launch(args.state_dir)  # on to the current software version, if not this one
        runner = ManagedGateway(PlatformLink(args.platform, args.token), args.state_dir)
        try:
            with contextlib.suppress(KeyboardInterrupt):
                asyncio.run(_until_terminated(runner.run()))
        except SwitchSoftware:  # installed and self-tested: its first trial start
            software.launch(args.state_dir)
        return
    with open(args.config, encoding="utf-8") as handle:
        gateway = from_config(yaml.safe_load(handle))
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_until_terminated(gateway.run()))


async def _until_terminated(main: Coroutine[Any, Any, None]) -> None:
    """Run `main`; SIGTERM (a service manager stopping us) cancels it like Ctrl-C, so buffers
    are drained and closed on the way out."""
    task = asyncio.create_task(main)
    with contextlib.suppress(NotImplementedError):  # no signal handlers on Windows
        asyncio.get_running_loop().add_signal_handler(signals.SIGTERM, task.cancel)
    with contextlib.suppress(asyncio.CancelledError):
        await task


if __name__ == "__main__":
    main()
