"""A Moonraker server in front of a simulated Klipper printer:
`python -m edge.simulators.moonraker --port 7125 [--api-key KEY]`.

Answers the parts of Moonraker's HTTP API (moonraker.readthedocs.io) that the gateway uses, with
Moonraker's shapes: every answer is {"result": ...} or {"error": {"code", "message"}}.

    GET  /server/info                      klippy_connected, klippy_state
    GET  /printer/objects/query?<objects>  the requested objects among extruder, heater_bed,
                                           print_stats (state standby|printing|paused|complete|
                                           cancelled|error, filename, message) and
                                           virtual_sdcard (progress 0-1, is_active)
    POST /server/files/upload              multipart: "file", "root" (gcodes)
    POST /printer/print/start?filename=    /printer/print/pause|resume|cancel

While `klippy_ready` is false (Klipper stopped, an MCU unplugged) the query answers 503
"Klippy Host not connected". With an API key every request needs `X-Api-Key` (else 401).
"""

from __future__ import annotations

import argparse
import threading
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import parse_qs, urlparse

from edge.simulators.http_util import parse_multipart, read_body, send_json
from edge.simulators.printers import PrinterServer, SimError, SimulatedPrinter

_STATES = {
    "idle": "standby",
    "printing": "printing",
    "paused": "paused",
    "attention": "paused",
    "finished": "complete",
    "cancelled": "cancelled",
    "error": "error",
}


class MoonrakerSimulator(PrinterServer):
    def __init__(self, printer: SimulatedPrinter, *, port: int = 0, api_key: str = "") -> None:
        self.printer = printer
        self.api_key = api_key
        self.klippy_ready = True
        super().__init__(_handler(self), port)

    def objects(self, names: list[str]) -> dict[str, Any]:
        printer = self.printer
        with printer.lock:
            printer.advance()
            progress = printer.progress_pct()
            job = printer.job
            known: dict[str, dict[str, Any]] = {
                "extruder": {"temperature": printer.hotend_c, "target": printer.hotend_target_c},
                "heater_bed": {"temperature": printer.bed_c, "target": printer.bed_target_c},
                "print_stats": {
                    "state": _STATES[printer.state],
                    "filename": job.file if job else "",
                    "message": printer.message,
                },
                "virtual_sdcard": {
                    "progress": (progress or 0.0) / 100.0,
                    "is_active": printer.state == "printing",
                },
            }
        return {name: known[name] for name in names if name in known}


def _handler(sim: MoonrakerSimulator) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def _authorised(self) -> bool:
            if sim.api_key and self.headers.get("X-Api-Key") != sim.api_key:
                send_json(self, 401, {"error": {"code": 401, "message": "Unauthorized"}})
                return False
            return True

        def _error(self, status: int, message: str) -> None:
            send_json(self, status, {"error": {"code": status, "message": message}})

        def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
            if not self._authorised():
                return
            url = urlparse(self.path)
            if url.path == "/server/info":
                state = "ready" if sim.klippy_ready else "disconnected"
                result = {"klippy_connected": sim.klippy_ready, "klippy_state": state}
                send_json(self, 200, {"result": result})
            elif url.path == "/printer/objects/query":
                if not sim.klippy_ready:
                    return self._error(503, "Klippy Host not connected")
                names = list(parse_qs(url.query, keep_blank_values=True))
                result = {"eventtime": 0.0, "status": sim.objects(names)}
                send_json(self, 200, {"result": result})
            else:
                self._error(404, f"Not Found: {url.path}")

        def do_POST(self) -> None:  # noqa: N802
            if not self._authorised():
                return
            url = urlparse(self.path)
            try:
                body = read_body(self)
                if url.path == "/server/files/upload":
                    fields, files = parse_multipart(self.headers.get("Content-Type", ""), body)
                    if "file" not in files:
                        return self._error(400, "No file found in the request")
                    if fields.get("root", "gcodes") != "gcodes":
                        return self._error(400, f"Invalid root request: {fields['root']}")
                    name, data = files["file"]
                    sim.printer.upload(name, data)
                    item = {"path": name, "root": "gcodes", "size": len(data)}
                    result = {"item": item, "print_started": False, "action": "create_file"}
                    return send_json(self, 201, {"result": result})
                if not sim.klippy_ready:
                    return self._error(503, "Klippy Host not connected")
                if url.path == "/printer/print/start":
                    filename = parse_qs(url.query).get("filename", [""])[0]
                    if not filename:
                        return self._error(400, "No data for argument: filename")
                    sim.printer.start(filename)
                elif url.path == "/printer/print/pause":
                    sim.printer.pause()
                elif url.path == "/printer/print/resume":
                    sim.printer.resume()
                elif url.path == "/printer/print/cancel":
                    sim.printer.cancel()
                else:
                    return self._error(404, f"Not Found: {url.path}")
            except SimError as exc:
                # Klippy's refusals reach HTTP as 400 with its message
                return self._error(400 if exc.status == 409 else exc.status, exc.message)
            except ValueError as exc:
                return self._error(400, str(exc))
            send_json(self, 200, {"result": "ok"})

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
            return

    return Handler


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, default=7125)
    parser.add_argument("--api-key", default="")
    parser.add_argument("--seconds-per-line", type=float, default=0.01)
    args = parser.parse_args()
    printer = SimulatedPrinter(seconds_per_line=args.seconds_per_line)
    simulator = MoonrakerSimulator(printer, port=args.port, api_key=args.api_key).start()
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        simulator.stop()


if __name__ == "__main__":
    main()
