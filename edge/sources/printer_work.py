"""A printer node's work agent: takes the parts the platform assigns to the node (the node work
API, `/api/v1/work/parts/`, with the node's device token) and makes them on the printer through
its own server (OctoPrint, Moonraker, PrusaLink; edge/sources/printer.py).

For each ready part, in the plan's order, once the printer is free (idle, or showing the end of
its last job): fetch the part's G-code (`file/`, checked against the sha256 the queue gives),
upload it to the printer as `imewe-part-<id>.gcode`, report the start, start the print, then
follow the printer every `report_every_s`:

- progress goes to the platform as it moves (pauses and "attention" just hold it);
- the job's end (FINISHED) completes the part (quality 1.0: the printer ran the file to its end;
  it cannot judge the part itself);
- a cancel at the printer, or another file started there, fails the part with that reason;
- a printer error fails it as a machine fault, so the platform makes it on another node;
- the part cancelled or moved on the platform (the work API answers 404/409) cancels the print;
- after a part, a node with a bed-clear step waits until someone confirms the bed is clear
  (the queue says why its parts are not ready); `auto_bed_clear` confirms it at once, for
  printers that clear their own bed;
- an unreachable or disconnected printer is waited for: the print goes on without the gateway,
  and the agent picks it up again by its file name, also after a gateway restart.

A part without G-code (a model file, or dimensions only) cannot be printed as it is: the agent
fails it with that reason rather than guessing slicer settings.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from typing import Any

from edge.sources.printer import Printer, PrinterApiError, PrinterState, PrinterStatus

logger = logging.getLogger(__name__)
FREE = (PrinterState.IDLE, PrinterState.FINISHED, PrinterState.CANCELLED)


class WorkApiError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(f"HTTP {status}: {message}")
        self.status = status


class WorkApi:
    """The node work API with the node's device token."""

    def __init__(self, base_url: str, token: str, *, timeout: float = 30.0) -> None:
        self.base = base_url.rstrip("/") + "/api/v1/work/"
        self.token = token
        self.timeout = timeout

    def _call(self, method: str, path: str, body: dict[str, Any] | None) -> bytes:
        data = json.dumps(body).encode() if body is not None else None
        # paths are relative to the work API: "parts/...", "bed-clear/"
        request = urllib.request.Request(self.base + path, data=data, method=method)
        request.add_header("Authorization", f"Device {self.token}")
        if data is not None:
            request.add_header("Content-Type", "application/json")
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                return bytes(response.read())
        except urllib.error.HTTPError as exc:
            raise WorkApiError(exc.code, exc.read()[:300].decode("utf-8", "replace")) from None

    async def json(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        return json.loads(await asyncio.to_thread(self._call, method, path, body))

    async def download(self, part_id: int) -> bytes:
        return await asyncio.to_thread(self._call, "GET", f"parts/{part_id}/file/", None)


def file_name(part_id: int) -> str:
    return f"imewe-part-{part_id}.gcode"


@dataclass
class PrinterWorkAgent:
    base_url: str
    token: str
    printer: Printer
    poll_every_s: float = 3.0
    report_every_s: float = 2.0
    # the printer clears its own bed (a part ejector, a belt printer): confirm it after each
    # part, for a node whose vendor asks for a bed-clear step
    auto_bed_clear: bool = False
    waiting_for: str = ""  # why the first queued part waits, as the platform says (logged once)
    completed: list[int] = field(default_factory=list)
    failed: list[int] = field(default_factory=list)
    api: WorkApi = field(init=False)

    def __post_init__(self) -> None:
        self.api = WorkApi(self.base_url, self.token)

    async def run(self) -> None:
        logger.info("printer work agent: taking this node's parts")
        while True:
            try:
                if await self.step():
                    continue
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # the platform or the printer is away: try again later
                logger.warning("printer work agent: %s", exc)
            await asyncio.sleep(self.poll_every_s)

    async def step(self) -> bool:
        """Takes and makes the next part if there is one and the printer is free; True when a
        part was handled (look again at once)."""
        queue = (await self.api.json("GET", "parts/"))["results"]
        ready = [part for part in queue if part.get("ready", True)]
        if not ready:
            why = str(queue[0].get("waits_for") or "") if queue else ""
            if why and why != self.waiting_for:
                logger.info("part %s waits for %s", queue[0]["id"], why)
            self.waiting_for = why
            return False
        self.waiting_for = ""
        part = ready[0]
        name = file_name(int(part["id"]))
        status = await self.printer.status()
        if part.get("status") == "in_progress" and status.file == name:
            logger.info("part %s: following its print, already on the printer", part["id"])
            await self.follow(part, before=None)
            return True
        if status.state not in FREE:
            logger.info(
                "part %s waits: the printer is %s%s",
                part["id"],
                status.state,
                f" ({status.message})" if status.message else "",
            )
            return False
        await self.make(part, before=status)
        return True

    async def make(self, part: dict[str, Any], *, before: PrinterStatus) -> None:
        part_id = int(part["id"])
        info = part.get("file") or {}
        if info.get("format") != "gcode":
            what = f"a {info['format'].upper()} model" if info else "no file"
            await self._fail(
                part_id, f"The part has {what}, no G-code: a printer needs the part sliced."
            )
            return
        data = await self.api.download(part_id)
        if hashlib.sha256(data).hexdigest() != info.get("sha256"):
            raise RuntimeError(f"part {part_id}: the downloaded file does not match its sha256")
        name = file_name(part_id)
        await self.printer.upload(name, data)
        if part.get("status") != "in_progress":
            await self.api.json("POST", f"parts/{part_id}/start/")
        try:
            await self.printer.start(name)
        except PrinterApiError as exc:
            await self._fail(part_id, f"The printer refused the job: {exc.message}", fault=True)
            return
        logger.info("part %s (%s): printing %s", part_id, part.get("name"), name)
        await self.follow(part, before=before)

    async def follow(self, part: dict[str, Any], *, before: PrinterStatus | None) -> None:
        part_id = int(part["id"])
        name = file_name(part_id)
        # a FINISHED left from an earlier run of the same file is not this run's end
        seen = before is None or before.file != name or before.state != PrinterState.FINISHED
        reported = float(part.get("progress_pct") or 0.0)
        while True:
            try:
                status = await self.printer.status()
            except (OSError, PrinterApiError) as exc:
                logger.warning("part %s: printer unreachable (%s); waiting", part_id, exc)
                await asyncio.sleep(self.report_every_s)
                continue
            mine = status.file == name
            if status.busy_with_job and not mine:
                await self._fail(
                    part_id, f"Another file ({status.file}) was started at the printer."
                )
                return
            if status.busy_with_job:
                seen = True
                progress = round(status.progress_pct or 0.0, 1)
                if progress > reported:
                    try:
                        await self.api.json(
                            "POST",
                            f"parts/{part_id}/progress/",
                            {"progress_pct": min(progress, 100.0)},
                        )
                        reported = progress
                    except WorkApiError as exc:
                        if exc.status in (404, 409):  # cancelled or moved on the platform
                            logger.info("part %s is no longer ours (%s): cancelling", part_id, exc)
                            await self.printer.cancel()
                            return
                        raise
            elif status.state == PrinterState.FINISHED and mine and seen:
                result = {"quality_score": 1.0}
                await self.api.json("POST", f"parts/{part_id}/complete/", result)
                self.completed.append(part_id)
                logger.info("part %s: printed", part_id)
                await self._bed_cleared()
                return
            elif status.state == PrinterState.ERROR:
                await self._fail(
                    part_id, f"Printer error: {status.message or 'unknown'}", fault=True
                )
                return
            elif status.state == PrinterState.CANCELLED and mine:
                await self._fail(part_id, "The print was cancelled at the printer.")
                return
            elif status.state == PrinterState.IDLE and seen:
                await self._fail(part_id, "The printer ended the job before it finished.")
                return
            await asyncio.sleep(self.report_every_s)

    async def _fail(self, part_id: int, reason: str, *, fault: bool = False) -> None:
        logger.warning("part %s failed: %s", part_id, reason)
        await self.api.json(
            "POST", f"parts/{part_id}/fail/", {"reason": reason[:500], "machine_fault": fault}
        )
        self.failed.append(part_id)
        await self._bed_cleared()

    async def _bed_cleared(self) -> None:
        if not self.auto_bed_clear:
            return
        try:
            await self.api.json("POST", "bed-clear/")
        except WorkApiError as exc:
            if exc.status != 409:  # 409: the node has no bed-clear step
                raise
