"""A PrusaLink printer (the v1 API of Prusa's MK4/MINI/XL firmware; the OpenAPI spec in
prusa3d/Prusa-Link-Web, spec/openapi.yaml): `python -m edge.simulators.prusalink --port 8080
--password PASS [--api-key KEY]`.

    GET    /api/version
    GET    /api/v1/status      printer: state (IDLE|BUSY|PRINTING|PAUSED|FINISHED|STOPPED|ERROR|
                               ATTENTION), temp_nozzle, target_nozzle, temp_bed, target_bed,
                               status_printer {ok, message}; job: id, progress, time_printing,
                               time_remaining (while there is a job)
    GET    /api/v1/job         the job with its file; 204 when there is none
    PUT    /api/v1/files/<storage>/<name>   upload (body = the file; 409 when it exists unless
                               `Overwrite: ?1`); 201
    POST   /api/v1/files/<storage>/<name>   print it; 204 (409 busy, 404 no such file)
    PUT    /api/v1/job/<id>/pause | resume   204 (409 in the wrong state, 404 another job)
    DELETE /api/v1/job/<id>    stop; 204

Authorisation as on the printers: HTTP digest (user "maker", realm "Printer API", qop auth,
MD5), or the `X-Api-Key` header when the simulator has a key. A wrong or missing credential gets
401 with the digest challenge.
"""

from __future__ import annotations

import argparse
import hashlib
import re
import secrets
import threading
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import unquote, urlparse

from edge.simulators.http_util import read_body, send_json
from edge.simulators.printers import PrinterServer, SimError, SimulatedPrinter

REALM = "Printer API"
STORAGE = "usb"
_STATES = {
    "idle": "IDLE",
    "printing": "PRINTING",
    "paused": "PAUSED",
    "attention": "ATTENTION",
    "finished": "FINISHED",
    "cancelled": "STOPPED",
    "error": "ERROR",
}
_PARAM = re.compile(r'(\w+)=(?:"([^"]*)"|([^,\s]*))')


def _md5(text: str) -> str:
    return hashlib.md5(text.encode(), usedforsecurity=False).hexdigest()


class PrusaLinkSimulator(PrinterServer):
    def __init__(
        self,
        printer: SimulatedPrinter,
        *,
        port: int = 0,
        username: str = "maker",
        password: str = "",
        api_key: str = "",
    ) -> None:
        if not password and not api_key:
            raise ValueError("a PrusaLink printer always asks for a password or an API key")
        self.printer = printer
        self.username = username
        self.password = password
        self.api_key = api_key
        self.nonces: set[str] = set()
        super().__init__(_handler(self), port)

    def digest_ok(self, method: str, header: str) -> bool:
        if not self.password or not header.startswith("Digest "):
            return False
        params = {m[0]: m[1] or m[2] for m in _PARAM.findall(header[len("Digest ") :])}
        if params.get("username") != self.username or params.get("nonce") not in self.nonces:
            return False
        ha1 = _md5(f"{self.username}:{REALM}:{self.password}")
        ha2 = _md5(f"{method}:{params.get('uri', '')}")
        if params.get("qop") == "auth":
            expected = _md5(
                f"{ha1}:{params['nonce']}:{params.get('nc', '')}:{params.get('cnonce', '')}"
                f":auth:{ha2}"
            )
        else:
            expected = _md5(f"{ha1}:{params['nonce']}:{ha2}")
        return secrets.compare_digest(expected, params.get("response", ""))

    def status(self) -> dict[str, Any]:
        printer = self.printer
        with printer.lock:
            printer.advance()
            state = _STATES[printer.state]
            answer: dict[str, Any] = {
                "storage": {"path": f"/{STORAGE}/", "name": STORAGE, "read_only": False},
                "printer": {
                    "state": state,
                    "temp_nozzle": printer.hotend_c,
                    "target_nozzle": printer.hotend_target_c,
                    "temp_bed": printer.bed_c,
                    "target_bed": printer.bed_target_c,
                    "status_printer": {"ok": state != "ERROR", "message": printer.message},
                },
            }
            if printer.job is not None:
                answer["job"] = self._job_summary()
            return answer

    def _job_summary(self) -> dict[str, Any]:
        job = self.printer.job
        assert job is not None
        progress = self.printer.progress_pct() or 0.0
        return {
            "id": job.id,
            "progress": progress,
            "time_printing": int(job.duration_s * progress / 100),
            "time_remaining": int(job.duration_s * (100 - progress) / 100),
        }

    def job(self) -> dict[str, Any] | None:
        printer = self.printer
        with printer.lock:
            printer.advance()
            if printer.job is None:
                return None
            name = printer.job.file
            return {
                **self._job_summary(),
                "state": _STATES[printer.state],
                "file": {
                    "name": name,
                    "display_name": name,
                    "path": f"/{STORAGE}",
                    "size": len(printer.files.get(name, b"")),
                },
            }


def _handler(sim: PrusaLinkSimulator) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def _authorised(self) -> bool:
            key = self.headers.get("X-Api-Key")
            if sim.api_key and key is not None and secrets.compare_digest(key, sim.api_key):
                return True
            if sim.digest_ok(self.command, self.headers.get("Authorization", "")):
                return True
            read_body(self)  # an unread upload would be taken for the next request
            nonce = secrets.token_hex(16)
            sim.nonces.add(nonce)
            body = b'{"title": "Unauthorized", "message": "Unauthorized"}'
            self.send_response(401)
            self.send_header(
                "WWW-Authenticate",
                f'Digest realm="{REALM}", nonce="{nonce}", qop="auth", algorithm=MD5',
            )
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
            return False

        def _error(self, status: int, message: str) -> None:
            titles = {400: "Bad Request", 404: "Not Found", 409: "Conflict"}
            send_json(self, status, {"title": titles.get(status, "Error"), "message": message})

        def _route(self) -> tuple[str, str]:
            """(what, argument): files/<name>, job/<id>, job/<id>/pause, ..."""
            path = unquote(urlparse(self.path).path)
            prefix = f"/api/v1/files/{STORAGE}/"
            if path.startswith(prefix):
                return "files", path[len(prefix) :]
            match = re.fullmatch(r"/api/v1/job/(\d+)(/pause|/resume)?", path)
            if match:
                return f"job{match.group(2) or ''}", match.group(1)
            return path, ""

        def _check_job(self, job_id: str) -> None:
            job = sim.printer.job
            if job is None or str(job.id) != job_id:
                raise SimError(404, f"no job {job_id}")

        def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
            if not self._authorised():
                return
            what, _ = self._route()
            if what == "/api/version":
                send_json(self, 200, {"api": "2.0.0", "server": "sim", "text": "PrusaLink"})
            elif what == "/api/v1/status":
                send_json(self, 200, sim.status())
            elif what == "/api/v1/job":
                job = sim.job()
                send_json(self, 200, job) if job else send_json(self, 204)
            else:
                self._error(404, f"no such endpoint {what}")

        def do_PUT(self) -> None:  # noqa: N802
            if not self._authorised():
                return
            what, argument = self._route()
            try:
                if what == "files":
                    data = read_body(self)
                    if argument in sim.printer.files and self.headers.get("Overwrite") != "?1":
                        raise SimError(409, f"{argument} already exists")
                    sim.printer.upload(argument, data)
                    return send_json(self, 201)
                with sim.printer.lock:
                    if what in ("job/pause", "job/resume"):
                        self._check_job(argument)
                        (sim.printer.pause if what == "job/pause" else sim.printer.resume)()
                        return send_json(self, 204)
            except SimError as exc:
                return self._error(exc.status, exc.message)
            except ValueError as exc:
                return self._error(400, str(exc))
            self._error(404, f"no such endpoint {what}")

        def do_POST(self) -> None:  # noqa: N802
            if not self._authorised():
                return
            what, argument = self._route()
            read_body(self)
            if what != "files":
                return self._error(404, f"no such endpoint {what}")
            try:
                sim.printer.start(argument)
            except SimError as exc:
                return self._error(exc.status, exc.message)
            send_json(self, 204)

        def do_DELETE(self) -> None:  # noqa: N802
            if not self._authorised():
                return
            what, argument = self._route()
            if what != "job":
                return self._error(404, f"no such endpoint {what}")
            try:
                with sim.printer.lock:
                    self._check_job(argument)
                    sim.printer.cancel()
            except SimError as exc:
                return self._error(exc.status, exc.message)
            send_json(self, 204)

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
            return

    return Handler


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, default=8080)
    parser.add_argument("--password", default="")
    parser.add_argument("--api-key", default="")
    parser.add_argument("--seconds-per-line", type=float, default=0.01)
    args = parser.parse_args()
    printer = SimulatedPrinter(seconds_per_line=args.seconds_per_line)
    simulator = PrusaLinkSimulator(
        printer, port=args.port, password=args.password, api_key=args.api_key
    ).start()
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        simulator.stop()


if __name__ == "__main__":
    main()
