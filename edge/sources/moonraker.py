"""Moonraker's HTTP API (moonraker.readthedocs.io, "Printer Administration", "File Management"):
a Klipper printer behind Moonraker.

    GET  /printer/objects/query?heater_bed&extruder&print_stats&virtual_sdcard
         {"result": {"eventtime": ..., "status": {"extruder": {"temperature", "target"},
          "heater_bed": {...}, "print_stats": {"state", "filename", "message"},
          "virtual_sdcard": {"progress": 0.0-1.0, "is_active"}}}}
         print_stats.state: standby, printing, paused, complete, cancelled, error
    POST /server/files/upload      multipart, form fields "file" and "root" ("gcodes")
    POST /printer/print/start?filename=<name>
    POST /printer/print/pause | /printer/print/resume | /printer/print/cancel

Errors come as {"error": {"code": ..., "message": ...}}; while Klippy is not connected the
query answers an error (503 in current releases), which is OFFLINE here, not unreachable. With
Moonraker's API key authorisation enabled, requests carry `X-Api-Key`.
"""

from __future__ import annotations

import urllib.parse

from edge.sources.printer import (
    HttpClient,
    PrinterApiError,
    PrinterState,
    PrinterStatus,
    multipart,
    number,
)

QUERY = "/printer/objects/query?heater_bed&extruder&print_stats&virtual_sdcard"
_STATES = {
    "standby": PrinterState.IDLE,
    "printing": PrinterState.PRINTING,
    "paused": PrinterState.PAUSED,
    "complete": PrinterState.FINISHED,
    "cancelled": PrinterState.CANCELLED,
    "error": PrinterState.ERROR,
}


class MoonrakerPrinter:
    def __init__(self, url: str, *, api_key: str = "", timeout: float = 10.0) -> None:
        self.http = HttpClient(url, api_key=api_key, timeout=timeout)

    async def status(self) -> PrinterStatus:
        try:
            answer = await self.http.ajson("GET", QUERY)
        except PrinterApiError as exc:
            if exc.status in (401, 403):
                raise
            return PrinterStatus(PrinterState.OFFLINE, message=exc.message)
        status = answer["result"]["status"]
        stats = status.get("print_stats") or {}
        raw_state = str(stats.get("state") or "")
        state = _STATES.get(raw_state, PrinterState.BUSY)
        sdcard = status.get("virtual_sdcard") or {}
        progress = number(sdcard.get("progress"))
        extruder = status.get("extruder") or {}
        bed = status.get("heater_bed") or {}
        return PrinterStatus(
            state=state,
            progress_pct=None if progress is None else progress * 100.0,
            file=str(stats.get("filename") or ""),
            message=str(stats.get("message") or ""),
            hotend_c=number(extruder.get("temperature")),
            hotend_target_c=number(extruder.get("target")),
            bed_c=number(bed.get("temperature")),
            bed_target_c=number(bed.get("target")),
        )

    async def upload(self, name: str, data: bytes) -> None:
        body, content_type = multipart({"root": "gcodes"}, "file", name, data)
        await self.http.ajson(
            "POST", "/server/files/upload", body=body, headers={"Content-Type": content_type}
        )

    async def start(self, name: str) -> None:
        query = urllib.parse.urlencode({"filename": name})
        await self.http.ajson("POST", f"/printer/print/start?{query}")

    async def pause(self) -> None:
        await self.http.ajson("POST", "/printer/print/pause")

    async def resume(self) -> None:
        await self.http.ajson("POST", "/printer/print/resume")

    async def cancel(self) -> None:
        await self.http.ajson("POST", "/printer/print/cancel")
