"""What the gateway expects of a 3D printer's own interface (OctoPrint, Moonraker, PrusaLink):
its status for telemetry, and the work side (upload a file, start, pause, resume, cancel) for the
node's printer work agent (edge/printer_agent.py).

Each kind's state words differ; they all map onto PrinterState, so the agent decides an outcome
the same way for every kind. A printer's status becomes telemetry (PrinterSource):

    temperature_c           the hotend (tool 0), as measured
    progress_pct            the job's progress while there is a job
    extra.bed_temperature_c, extra.hotend_target_c, extra.bed_target_c
    extra.printing, extra.paused, extra.printer_error   1.0 or 0.0

`extra.*` signals travel in the point's `extra` object (the platform stores named signals in
columns and anything else there).
"""

from __future__ import annotations

import asyncio
import json
import secrets
import urllib.error
import urllib.request
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Protocol


class PrinterState(StrEnum):
    IDLE = "idle"  # ready for a job
    BUSY = "busy"  # connected but doing something that is not a job (homing, heating by hand)
    PRINTING = "printing"
    PAUSED = "paused"
    ATTENTION = "attention"  # the print waits for a person (filament runout, a crash check)
    FINISHED = "finished"  # the last job ran to its end
    CANCELLED = "cancelled"  # the last job was stopped before its end
    ERROR = "error"
    OFFLINE = "offline"  # the server answers but has no printer behind it


@dataclass(frozen=True)
class PrinterStatus:
    state: PrinterState
    progress_pct: float | None = None  # of the current (or last) job
    file: str = ""  # the current (or last) job's file name
    message: str = ""  # why, for ERROR / OFFLINE / ATTENTION
    hotend_c: float | None = None
    hotend_target_c: float | None = None
    bed_c: float | None = None
    bed_target_c: float | None = None

    @property
    def busy_with_job(self) -> bool:
        return self.state in (PrinterState.PRINTING, PrinterState.PAUSED, PrinterState.ATTENTION)


class PrinterApiError(Exception):
    """The printer's server refused a request (HTTP status and what it said). Connection
    failures are not this: they raise OSError (urllib.error.URLError)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(f"HTTP {status}: {message}")
        self.status = status
        self.message = message


class Printer(Protocol):
    async def status(self) -> PrinterStatus: ...

    async def upload(self, name: str, data: bytes) -> None: ...

    async def start(self, name: str) -> None: ...

    async def pause(self) -> None: ...

    async def resume(self) -> None: ...

    async def cancel(self) -> None: ...


def number(value: Any) -> float | None:
    """A JSON number, else None (servers send null, strings or nothing for absent sensors)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def status_signals(status: PrinterStatus) -> dict[str, float]:
    held = status.state in (PrinterState.PAUSED, PrinterState.ATTENTION)
    values: dict[str, float] = {
        "extra.printing": 1.0 if status.state == PrinterState.PRINTING else 0.0,
        "extra.paused": 1.0 if held else 0.0,
        "extra.printer_error": 1.0 if status.state == PrinterState.ERROR else 0.0,
    }
    optional = {
        "temperature_c": status.hotend_c,
        "extra.hotend_target_c": status.hotend_target_c,
        "extra.bed_temperature_c": status.bed_c,
        "extra.bed_target_c": status.bed_target_c,
    }
    values.update({signal: value for signal, value in optional.items() if value is not None})
    if status.progress_pct is not None and status.state not in (
        PrinterState.IDLE,
        PrinterState.OFFLINE,
    ):
        values["progress_pct"] = min(max(status.progress_pct, 0.0), 100.0)
    return values


class PrinterSource:
    """A printer as a polled telemetry source (the gateway stamps each read)."""

    def __init__(self, printer: Printer) -> None:
        self.printer = printer
        self.last: PrinterStatus | None = None

    async def connect(self) -> None:
        return None  # HTTP: nothing to hold open

    async def disconnect(self) -> None:
        return None

    async def read(self) -> dict[str, float]:
        self.last = await self.printer.status()
        return status_signals(self.last)


def multipart(fields: dict[str, str], file_field: str, name: str, data: bytes) -> tuple[bytes, str]:
    """A multipart/form-data body (OctoPrint's and Moonraker's uploads) and its content type."""
    boundary = "imewe" + secrets.token_hex(12)
    parts: list[bytes] = []
    for key, value in fields.items():
        head = f'--{boundary}\r\nContent-Disposition: form-data; name="{key}"\r\n\r\n'
        parts.append(f"{head}{value}\r\n".encode())
    safe_name = name.replace('"', "_").replace("\r", "_").replace("\n", "_")
    parts.append(
        (
            f'--{boundary}\r\nContent-Disposition: form-data; name="{file_field}"; '
            f'filename="{safe_name}"\r\nContent-Type: application/octet-stream\r\n\r\n'
        ).encode()
        + data
        + b"\r\n"
    )
    parts.append(f"--{boundary}--\r\n".encode())
    return b"".join(parts), f"multipart/form-data; boundary={boundary}"


class HttpClient:
    """Plain HTTP to a printer's server: an API key header or HTTP digest credentials."""

    def __init__(
        self,
        url: str,
        *,
        api_key: str = "",
        username: str = "",
        password: str = "",
        timeout: float = 10.0,
        key_header: str = "X-Api-Key",
    ) -> None:
        self.base = url.rstrip("/")
        self.headers = {key_header: api_key} if api_key else {}
        self.timeout = timeout
        handlers: list[urllib.request.BaseHandler] = []
        if username:
            passwords = urllib.request.HTTPPasswordMgrWithDefaultRealm()
            passwords.add_password(None, self.base, username, password)
            handlers.append(urllib.request.HTTPDigestAuthHandler(passwords))
        self.opener = urllib.request.build_opener(*handlers)

    def call(
        self,
        method: str,
        path: str,
        *,
        body: bytes | None = None,
        json_body: Any = None,
        headers: dict[str, str] | None = None,
    ) -> tuple[int, bytes]:
        """(status, body) of a 2xx answer; PrinterApiError for any other."""
        all_headers = {**self.headers, **(headers or {})}
        if json_body is not None:
            body = json.dumps(json_body).encode()
            all_headers["Content-Type"] = "application/json"
        request = urllib.request.Request(
            self.base + path, data=body, method=method, headers=all_headers
        )
        try:
            with self.opener.open(request, timeout=self.timeout) as response:
                return int(response.status), bytes(response.read())
        except urllib.error.HTTPError as exc:
            raise PrinterApiError(exc.code, _error_text(exc.read())) from None

    def json(self, method: str, path: str, **kwargs: Any) -> Any:
        status, body = self.call(method, path, **kwargs)
        if status == 204 or not body:
            return None
        return json.loads(body)

    async def ajson(self, method: str, path: str, **kwargs: Any) -> Any:
        return await asyncio.to_thread(self.json, method, path, **kwargs)


def _error_text(body: bytes) -> str:
    """What a server said in an error answer: OctoPrint {"error": "..."}, Moonraker
    {"error": {"message": ...}}, PrusaLink {"title": ..., "message": ...} or plain text."""
    text = body.decode("utf-8", "replace").strip()
    try:
        parsed = json.loads(text)
    except ValueError:
        return text[:300]
    if isinstance(parsed, dict):
        error = parsed.get("error")
        if isinstance(error, dict):
            return str(error.get("message", error))[:300]
        if error:
            return str(error)[:300]
        if parsed.get("message"):
            return str(parsed["message"])[:300]
    return text[:300]
