"""MTConnect agent for the simulated CNC mill: `python -m edge.simulators.mtconnect --port 5000`.

Answers `GET /probe`, `GET /current` and `GET /sample?from=<sequence>&count=<n>` with
MTConnectStreams XML, like the agents CNC controllers ship with. The machine model is sampled
every `period` seconds; each sample adds one observation per data item to a ring buffer of
`buffer_size` observations with increasing sequence numbers. Asking for a sequence that has
already left the buffer gets an OUT_OF_RANGE error, as from a real agent.

Like an agent with AllowPut, it also takes `PUT /control?running=1&load_kw=5.2&seconds=13` (the
node's work agent starting a part; `running=0` stops it) and `PUT /control?fault=bearing_wear`
(a fault injected at run time; edge/simulators/control.py sends them).
"""

from __future__ import annotations

import argparse
import logging
import threading
import time
from collections import deque
from dataclasses import dataclass
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlparse
from xml.etree import ElementTree as ET

from edge.simulators.machines import Fault, MachineModel, apply_control

STREAMS_NS = "urn:mtconnect.org:MTConnectStreams:2.0"
ERROR_NS = "urn:mtconnect.org:MTConnectError:2.0"
DEVICES_NS = "urn:mtconnect.org:MTConnectDevices:2.0"
DEVICE = "Mill01"
# signal -> (dataItemId, MTConnect type, units, factor from the model's unit)
DATA_ITEMS: dict[str, tuple[str, str, str, float]] = {
    "spindle_rpm": ("S1speed", "RotaryVelocity", "REVOLUTION/MINUTE", 1.0),
    "torque_nm": ("S1torque", "Torque", "NEWTON_METER", 1.0),
    "power_kw": ("S1power", "Wattage", "WATT", 1000.0),
    "temperature_c": ("S1temp", "Temperature", "CELSIUS", 1.0),
    "vibration_mm_s": ("S1vib", "VelocityVibration", "MILLIMETER/SECOND", 1.0),
}
# The gateway's signal map for this agent (power arrives in W, the platform stores kW).
SIGNAL_MAP: dict[str, Any] = {
    signal: ({"id": item, "scale": 1 / factor} if factor != 1.0 else item)
    for signal, (item, _, _, factor) in DATA_ITEMS.items()
}


@dataclass(frozen=True)
class Observation:
    sequence: int
    signal: str
    timestamp: datetime
    value: float


class Agent:
    def __init__(self, model: MachineModel, *, buffer_size: int = 4096) -> None:
        self.model = model
        self.instance_id = int(time.time())
        self.buffer: deque[Observation] = deque(maxlen=buffer_size)
        self.buffer_size = buffer_size
        self.next_sequence = 1
        self.lock = threading.Lock()
        self.started = time.monotonic()

    def tick(self) -> None:
        now = datetime.now(UTC)
        with self.lock:
            values = self.model.sample(time.monotonic() - self.started)
            for signal, (_, _, _, factor) in DATA_ITEMS.items():
                if signal in values:
                    self.buffer.append(
                        Observation(self.next_sequence, signal, now, values[signal] * factor)
                    )
                    self.next_sequence += 1

    def control(self, query: dict[str, list[str]]) -> tuple[int, bytes]:
        """A PUT to /control: start or stop a part, inject a fault."""
        known = {"running", "load_kw", "seconds", "fault"}
        if not query or set(query) - known:
            return 400, self.error("INVALID_REQUEST", f"control takes {', '.join(sorted(known))}")
        one = {key: values[-1] for key, values in query.items()}
        try:
            running = None
            if "running" in one:
                if one["running"] not in ("0", "1"):
                    raise ValueError("running must be 0 or 1")
                running = one["running"] == "1"
            with self.lock:
                apply_control(
                    self.model,
                    time.monotonic() - self.started,
                    running=running,
                    load_kw=float(one["load_kw"]) if "load_kw" in one else None,
                    seconds=float(one["seconds"]) if "seconds" in one else None,
                    fault=one.get("fault"),
                )
        except ValueError as exc:
            return 400, self.error("INVALID_REQUEST", str(exc))
        return 200, self.current()

    def _header(self, root: ET.Element) -> None:
        first = self.buffer[0].sequence if self.buffer else self.next_sequence
        ET.SubElement(
            root,
            "Header",
            creationTime=_iso(datetime.now(UTC)),
            sender="imewe-simulator",
            instanceId=str(self.instance_id),
            version="2.0",
            bufferSize=str(self.buffer_size),
            firstSequence=str(first),
            lastSequence=str(self.next_sequence - 1),
            nextSequence=str(self.next_sequence),
        )

    def streams(self, observations: list[Observation], next_sequence: int) -> bytes:
        root = ET.Element("MTConnectStreams", xmlns=STREAMS_NS)
        self._header(root)
        header = root.find("Header")
        assert header is not None
        header.set("nextSequence", str(next_sequence))
        device = ET.SubElement(ET.SubElement(root, "Streams"), "DeviceStream")
        device.set("name", DEVICE)
        device.set("uuid", f"imewe-{DEVICE.lower()}")
        component = ET.SubElement(device, "ComponentStream", component="Rotary", name="S1")
        samples = ET.SubElement(component, "Samples")
        for obs in observations:
            item, kind, _, _ = DATA_ITEMS[obs.signal]
            element = ET.SubElement(
                samples,
                kind,
                dataItemId=item,
                timestamp=_iso(obs.timestamp),
                sequence=str(obs.sequence),
            )
            element.text = f"{obs.value:.4f}"
        return bytes(ET.tostring(root, encoding="utf-8", xml_declaration=True))

    def current(self) -> bytes:
        with self.lock:
            latest: dict[str, Observation] = {}
            for obs in self.buffer:
                latest[obs.signal] = obs
            return self.streams(
                sorted(latest.values(), key=lambda o: o.sequence), self.next_sequence
            )

    def sample(self, start: int, count: int) -> tuple[int, bytes]:
        with self.lock:
            first = self.buffer[0].sequence if self.buffer else self.next_sequence
            if start < first or start > self.next_sequence:
                return 400, self.error(
                    "OUT_OF_RANGE",
                    f"'from' must be between {first} and {self.next_sequence}",
                )
            chosen = [o for o in self.buffer if o.sequence >= start][:count]
            next_sequence = chosen[-1].sequence + 1 if chosen else start
            return 200, self.streams(chosen, next_sequence)

    def probe(self) -> bytes:
        root = ET.Element("MTConnectDevices", xmlns=DEVICES_NS)
        self._header(root)
        device = ET.SubElement(ET.SubElement(root, "Devices"), "Device", name=DEVICE)
        items = ET.SubElement(device, "DataItems")
        for item, kind, units, _ in DATA_ITEMS.values():
            ET.SubElement(
                items, "DataItem", id=item, type=kind.upper(), category="SAMPLE", units=units
            )
        return bytes(ET.tostring(root, encoding="utf-8", xml_declaration=True))

    def error(self, code: str, message: str) -> bytes:
        root = ET.Element("MTConnectError", xmlns=ERROR_NS)
        self._header(root)
        error = ET.SubElement(ET.SubElement(root, "Errors"), "Error", errorCode=code)
        error.text = message
        return bytes(ET.tostring(root, encoding="utf-8", xml_declaration=True))


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


def make_server(agent: Agent, port: int) -> ThreadingHTTPServer:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
            url = urlparse(self.path)
            path = url.path.rstrip("/").removeprefix(f"/{DEVICE}") or "/"
            query = parse_qs(url.query)
            status, body = 200, b""
            if path == "/probe":
                body = agent.probe()
            elif path == "/current":
                body = agent.current()
            elif path == "/sample":
                try:
                    start = int(query.get("from", ["0"])[0] or 0)
                    count = min(int(query.get("count", ["100"])[0]), 10_000)
                except ValueError:
                    status, body = 400, agent.error("INVALID_REQUEST", "from/count: integers")
                else:
                    if start == 0:
                        with agent.lock:
                            start = agent.buffer[0].sequence if agent.buffer else 1
                    status, body = agent.sample(start, count)
            else:
                status, body = 404, agent.error("UNSUPPORTED", f"no such request {url.path}")
            self.send_response(status)
            self.send_header("Content-Type", "application/xml")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_PUT(self) -> None:  # noqa: N802
            url = urlparse(self.path)
            if url.path.rstrip("/").removeprefix(f"/{DEVICE}") != "/control":
                status, body = 404, agent.error("UNSUPPORTED", f"no such request {url.path}")
            else:
                status, body = agent.control(parse_qs(url.query, keep_blank_values=True))
            self.send_response(status)
            self.send_header("Content-Type", "application/xml")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
            return  # quiet: a poll every 100 ms would flood the console

    return ThreadingHTTPServer(("127.0.0.1", port), Handler)


class MtConnectSimulator:
    """The agent plus its sampling thread and HTTP server, startable from tests."""

    def __init__(
        self, model: MachineModel, *, port: int, period: float = 0.1, buffer_size: int = 4096
    ) -> None:
        self.agent = Agent(model, buffer_size=buffer_size)
        self.period = period
        self.server = make_server(self.agent, port)
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self.url = f"http://127.0.0.1:{port}"

    def start(self) -> MtConnectSimulator:
        self.agent.tick()
        self._threads = [
            threading.Thread(target=self._sample, daemon=True),
            threading.Thread(target=self.server.serve_forever, daemon=True),
        ]
        for thread in self._threads:
            thread.start()
        return self

    def _sample(self) -> None:
        while not self._stop.wait(self.period):
            self.agent.tick()

    def stop(self) -> None:
        self._stop.set()
        self.server.shutdown()
        self.server.server_close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, default=5000)
    parser.add_argument("--rated-power-kw", type=float, default=7.5)
    parser.add_argument("--fault", choices=[f.value for f in Fault], default="none")
    parser.add_argument("--period", type=float, default=0.1)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    model = MachineModel(
        kind="cnc_mill", rated_power_kw=args.rated_power_kw, fault=Fault(args.fault)
    )
    simulator = MtConnectSimulator(model, port=args.port, period=args.period).start()
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        simulator.stop()


if __name__ == "__main__":
    main()
