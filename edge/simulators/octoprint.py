"""An OctoPrint-style server in front of a simulated printer, for the demo fleet and tests that
need no real OctoPrint: `python -m edge.simulators.octoprint --port 5080 --api-key KEY`.

Answers what the gateway uses of OctoPrint's REST API (docs.octoprint.org, "REST API") the way
OctoPrint 1.11 does (tests/edge/test_octoprint.py runs the same source against the real one):

    GET  /api/version, /api/connection, /api/job, /api/printer (409 while not connected)
    POST /api/connection        {"command": "connect" | "disconnect"}
    POST /api/files/local       multipart "file" (201)
    POST /api/files/local/<n>   {"command": "select", "print": true} (204; 409 while printing)
    POST /api/job               {"command": "pause", "action": "pause"|"resume"}, "cancel"
                                (204; 409 when nothing prints)

As OctoPrint: an unknown API key gets 403 on reads and 400 "CSRF validation failed" on writes;
after a job the state is "Operational" with the file still selected, completion 100 when it
ran to its end and none after a cancel.
"""

from __future__ import annotations

import argparse
import json
import secrets
import threading
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import unquote, urlparse

from edge.simulators.http_util import parse_multipart, read_body, send_json
from edge.simulators.printers import PrinterServer, SimError, SimulatedPrinter

_TEXT = {
    "idle": "Operational",
    "printing": "Printing",
    "paused": "Paused",
    "attention": "Paused",
    "finished": "Operational",
    "cancelled": "Operational",
    "error": "Error",
}


class OctoPrintSimulator(PrinterServer):
    def __init__(
        self, printer: SimulatedPrinter, *, port: int = 0, api_key: str, connected: bool = True
    ) -> None:
        if not api_key:
            raise ValueError("OctoPrint always asks for an API key")
        self.printer = printer
        self.api_key = api_key
        self.connected = connected
        super().__init__(_handler(self), port)

    def state_text(self) -> str:
        if not self.connected:
            return "Closed"
        if self.printer.state == "error":
            return f"Error: {self.printer.message}"
        return _TEXT[self.printer.state]

    def job(self) -> dict[str, Any]:
        printer = self.printer
        with printer.lock:
            printer.advance()
            job = printer.job
            completion = printer.progress_pct()
            if printer.state == "cancelled":
                completion = None  # OctoPrint resets it after a cancel
            return {
                "job": {"file": {"name": job.file if job else None, "origin": "local"}},
                "progress": {"completion": completion, "printTime": None},
                "state": self.state_text(),
            }

    def printer_state(self) -> dict[str, Any]:
        printer = self.printer
        with printer.lock:
            printer.advance()
            flags = {
                "operational": printer.state != "error",
                "printing": printer.state == "printing",
                "paused": printer.state in ("paused", "attention"),
                "error": printer.state == "error",
                "ready": printer.state in ("idle", "finished", "cancelled"),
            }
            return {
                "state": {
                    "text": self.state_text(),
                    "flags": flags,
                    "error": printer.message if printer.state == "error" else "",
                },
                "temperature": {
                    "tool0": {"actual": printer.hotend_c, "target": printer.hotend_target_c},
                    "bed": {"actual": printer.bed_c, "target": printer.bed_target_c},
                },
            }


def _handler(sim: OctoPrintSimulator) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def _key_ok(self) -> bool:
            key = self.headers.get("X-Api-Key") or ""
            return secrets.compare_digest(key, sim.api_key)

        def _error(self, status: int, message: str) -> None:
            send_json(self, status, {"error": message})

        def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
            if not self._key_ok():
                return self._error(403, "You don't have the permission to access the resource.")
            path = urlparse(self.path).path
            if path == "/api/version":
                send_json(self, 200, {"api": "0.1", "server": "1.11.8", "text": "OctoPrint sim"})
            elif path == "/api/connection":
                state = "Operational" if sim.connected else "Closed"
                send_json(self, 200, {"current": {"state": state, "port": "SIM"}})
            elif path == "/api/job":
                send_json(self, 200, sim.job())
            elif path == "/api/printer":
                if not sim.connected:
                    return self._error(409, "Printer is not operational")
                send_json(self, 200, sim.printer_state())
            else:
                self._error(404, "Not found")

        def do_POST(self) -> None:  # noqa: N802
            try:
                body = read_body(self)
            except ValueError as exc:
                return self._error(413, str(exc))
            if not self._key_ok():
                return self._error(400, "CSRF validation failed")
            path = unquote(urlparse(self.path).path)
            try:
                if path == "/api/connection":
                    command = json.loads(body or b"{}").get("command")
                    if command not in ("connect", "disconnect"):
                        return self._error(400, f"Unknown command: {command}")
                    sim.connected = command == "connect"
                    return send_json(self, 204)
                if path == "/api/files/local":
                    _, files = parse_multipart(self.headers.get("Content-Type", ""), body)
                    if "file" not in files:
                        return self._error(400, "No file included")
                    name, data = files["file"]
                    sim.printer.upload(name, data)
                    return send_json(self, 201, {"done": True, "files": {"local": {"name": name}}})
                if not sim.connected:
                    return self._error(409, "Printer is not operational")
                command = json.loads(body or b"{}")
                if path.startswith("/api/files/local/"):
                    if command.get("command") != "select":
                        return self._error(400, "Unknown command")
                    name = path.removeprefix("/api/files/local/")
                    if name not in sim.printer.files:
                        return self._error(404, "File not found")
                    if command.get("print"):
                        sim.printer.start(name)
                    return send_json(self, 204)
                if path == "/api/job":
                    if command.get("command") == "cancel":
                        sim.printer.cancel()
                    elif command.get("command") == "pause":
                        action = command.get("action", "toggle")
                        paused = sim.printer.state in ("paused", "attention")
                        if action == "resume" or (action == "toggle" and paused):
                            sim.printer.resume()
                        else:
                            sim.printer.pause()
                    else:
                        return self._error(400, "Unknown command")
                    return send_json(self, 204)
            except SimError as exc:
                return self._error(409, exc.message)
            except ValueError as exc:
                return self._error(400, str(exc))
            self._error(404, "Not found")

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
            return

    return Handler


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, default=5080)
    parser.add_argument("--api-key", required=True)
    parser.add_argument("--seconds-per-line", type=float, default=0.05)
    args = parser.parse_args()
    printer = SimulatedPrinter(seconds_per_line=args.seconds_per_line)
    simulator = OctoPrintSimulator(printer, port=args.port, api_key=args.api_key).start()
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        simulator.stop()


if __name__ == "__main__":
    main()
