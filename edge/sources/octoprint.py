"""OctoPrint's REST API (docs.octoprint.org, "REST API"): the printer behind an OctoPrint server.

    GET  /api/printer        temperatures (tool0, bed) and state flags; 409 while no printer
                             is connected
    GET  /api/job            the job's state text, file and progress.completion (0-100)
    GET  /api/connection     the serial connection (state "Closed" when nothing is connected)
    POST /api/connection     {"command": "connect"}: connects with the saved port settings
    POST /api/files/local    multipart upload (form field "file")
    POST /api/files/local/<name>  {"command": "select", "print": true}: starts it
    POST /api/job            {"command": "pause", "action": "pause"|"resume"} and
                             {"command": "cancel"}

Every request carries the `X-Api-Key` header (a user's API key, OctoPrint settings > API or the
user's own settings). OctoPrint keeps no "finished" state: after a job it is "Operational" again
with the last job's file selected, completion 100 when it ran to its end and none after a
cancel. It answers a pause sent while a job is still "Starting" with 204 and ignores it.
"""

from __future__ import annotations

import urllib.parse
from typing import Any

from edge.sources.printer import (
    HttpClient,
    PrinterApiError,
    PrinterState,
    PrinterStatus,
    multipart,
    number,
)

# /api/job "state" texts (octoprint.printer.standard: get_state_string)
_STATES = {
    "Printing": PrinterState.PRINTING,
    "Printing from SD": PrinterState.PRINTING,
    "Sending file to SD": PrinterState.BUSY,
    "Starting": PrinterState.PRINTING,
    "Starting print from SD": PrinterState.PRINTING,
    "Finishing": PrinterState.PRINTING,
    "Cancelling": PrinterState.PRINTING,
    "Pausing": PrinterState.PRINTING,
    "Paused": PrinterState.PAUSED,
    "Resuming": PrinterState.PRINTING,
    "Operational": PrinterState.IDLE,
    "Offline": PrinterState.OFFLINE,
    "Opening serial connection": PrinterState.OFFLINE,
    "Detecting serial connection": PrinterState.OFFLINE,
    "Connecting": PrinterState.OFFLINE,
    "Closed": PrinterState.OFFLINE,
}


class OctoPrintPrinter:
    def __init__(self, url: str, *, api_key: str, timeout: float = 10.0) -> None:
        if not api_key:
            raise ValueError("OctoPrint needs api_key (a user's API key)")
        self.http = HttpClient(url, api_key=api_key, timeout=timeout)

    async def status(self) -> PrinterStatus:
        job = await self.http.ajson("GET", "/api/job")
        text = str(job.get("state") or "")
        error = ""
        if text.startswith(("Offline after error", "Error")):
            state, error = PrinterState.ERROR, text
        else:
            state = _STATES.get(text, PrinterState.BUSY)
        progress = number((job.get("progress") or {}).get("completion"))
        file = str(((job.get("job") or {}).get("file") or {}).get("name") or "")
        if state == PrinterState.IDLE and file:
            # the last job's file stays selected: completion 100 after its end, none (reset)
            # after a cancel; the gateway uploads without selecting, so a selected file that
            # did not finish was stopped
            finished = progress is not None and progress >= 100.0
            state = PrinterState.FINISHED if finished else PrinterState.CANCELLED
        temperatures: dict[str, Any] = {}
        if state not in (PrinterState.OFFLINE, PrinterState.ERROR):
            try:
                printer = await self.http.ajson("GET", "/api/printer?exclude=sd")
                temperatures = printer.get("temperature") or {}
                error = str((printer.get("state") or {}).get("error") or error)
            except PrinterApiError as exc:
                if exc.status != 409:  # 409: disconnected between the two requests
                    raise
        tool = temperatures.get("tool0") or {}
        bed = temperatures.get("bed") or {}
        return PrinterStatus(
            state=state,
            progress_pct=progress,
            file=file,
            message=error or ("no printer connected to OctoPrint" if state == "offline" else ""),
            hotend_c=number(tool.get("actual")),
            hotend_target_c=number(tool.get("target")),
            bed_c=number(bed.get("actual")),
            bed_target_c=number(bed.get("target")),
        )

    async def connect_printer(self) -> None:
        """Connect OctoPrint to its printer with the port settings saved in OctoPrint."""
        await self.http.ajson("POST", "/api/connection", json_body={"command": "connect"})

    async def upload(self, name: str, data: bytes) -> None:
        body, content_type = multipart({"select": "false"}, "file", name, data)
        await self.http.ajson(
            "POST", "/api/files/local", body=body, headers={"Content-Type": content_type}
        )

    async def start(self, name: str) -> None:
        await self.http.ajson(
            "POST",
            "/api/files/local/" + urllib.parse.quote(name),
            json_body={"command": "select", "print": True},
        )

    async def pause(self) -> None:
        await self.http.ajson("POST", "/api/job", json_body={"command": "pause", "action": "pause"})

    async def resume(self) -> None:
        await self.http.ajson(
            "POST", "/api/job", json_body={"command": "pause", "action": "resume"}
        )

    async def cancel(self) -> None:
        await self.http.ajson("POST", "/api/job", json_body={"command": "cancel"})
