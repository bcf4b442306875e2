"""PrusaLink's v1 API (the OpenAPI spec in prusa3d/Prusa-Link-Web, spec/openapi.yaml; Prusa
MK4/MK3.9/MINI/XL/CORE One firmware and Prusa-Link on a Raspberry Pi):

    GET    /api/v1/status      {"printer": {"state", "temp_nozzle", "target_nozzle", "temp_bed",
                               "target_bed", ...}, "job": {"id", "progress", "time_remaining"}}
                               state: IDLE, BUSY, PRINTING, PAUSED, FINISHED, STOPPED, ERROR,
                               ATTENTION, READY
    GET    /api/v1/job         the current job ({"id", "state", "progress", "file":
                               {"name", "display_name", ...}}), 204 when there is none
    PUT    /api/v1/files/<storage>/<name>   the file as the body (Overwrite: ?1)
    POST   /api/v1/files/<storage>/<name>   starts printing it (204)
    PUT    /api/v1/job/<id>/pause | /api/v1/job/<id>/resume   (204; 409 in the wrong state)
    DELETE /api/v1/job/<id>    stops the job

Authorisation is HTTP digest (user "maker" and the password on the printer's screen), or an
`X-Api-Key` header on firmware that has one. `storage` is "usb" on the printers ("local" on
Prusa-Link for the MK3).
"""

from __future__ import annotations

import urllib.parse

from edge.sources.printer import (
    HttpClient,
    PrinterApiError,
    PrinterState,
    PrinterStatus,
    number,
)

_STATES = {
    "IDLE": PrinterState.IDLE,
    "READY": PrinterState.IDLE,
    "BUSY": PrinterState.BUSY,
    "PRINTING": PrinterState.PRINTING,
    "PAUSED": PrinterState.PAUSED,
    "ATTENTION": PrinterState.ATTENTION,
    "FINISHED": PrinterState.FINISHED,
    "STOPPED": PrinterState.CANCELLED,
    "ERROR": PrinterState.ERROR,
}


class PrusaLinkPrinter:
    def __init__(
        self,
        url: str,
        *,
        api_key: str = "",
        username: str = "",
        password: str = "",
        storage: str = "usb",
        timeout: float = 10.0,
    ) -> None:
        if not api_key and not (username and password):
            raise ValueError("PrusaLink needs username and password (digest) or api_key")
        self.http = HttpClient(
            url, api_key=api_key, username=username, password=password, timeout=timeout
        )
        self.storage = storage
        self.job_id: int | None = None

    async def status(self) -> PrinterStatus:
        answer = await self.http.ajson("GET", "/api/v1/status")
        printer = answer.get("printer") or {}
        job = answer.get("job") or {}
        state = _STATES.get(str(printer.get("state") or ""), PrinterState.BUSY)
        job_id = job.get("id")
        self.job_id = job_id if isinstance(job_id, int) and not isinstance(job_id, bool) else None
        file = ""
        message = str((printer.get("status_printer") or {}).get("message") or "")
        if self.job_id is not None:
            details = await self.http.ajson("GET", "/api/v1/job")
            if details:
                info = details.get("file") or {}
                file = str(info.get("name") or info.get("display_name") or "")
        return PrinterStatus(
            state=state,
            progress_pct=number(job.get("progress")),
            file=file,
            message=message if state in (PrinterState.ERROR, PrinterState.ATTENTION) else "",
            hotend_c=number(printer.get("temp_nozzle")),
            hotend_target_c=number(printer.get("target_nozzle")),
            bed_c=number(printer.get("temp_bed")),
            bed_target_c=number(printer.get("target_bed")),
        )

    def _path(self, name: str) -> str:
        return f"/api/v1/files/{self.storage}/" + urllib.parse.quote(name)

    async def upload(self, name: str, data: bytes) -> None:
        await self.http.ajson(
            "PUT",
            self._path(name),
            body=data,
            headers={"Content-Type": "application/octet-stream", "Overwrite": "?1"},
        )

    async def start(self, name: str) -> None:
        await self.http.ajson("POST", self._path(name))

    async def _job_id(self) -> int:
        await self.status()
        if self.job_id is None:
            raise PrinterApiError(409, "the printer has no job")
        return self.job_id

    async def pause(self) -> None:
        await self.http.ajson("PUT", f"/api/v1/job/{await self._job_id()}/pause")

    async def resume(self) -> None:
        await self.http.ajson("PUT", f"/api/v1/job/{await self._job_id()}/resume")

    async def cancel(self) -> None:
        await self.http.ajson("DELETE", f"/api/v1/job/{await self._job_id()}")
