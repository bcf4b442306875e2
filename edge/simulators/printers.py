"""A simulated FDM printer, shared by the printer-server simulators (edge/simulators/moonraker.py,
edge/simulators/prusalink.py): files, one job at a time, heaters that approach their targets,
and a job whose progress follows the clock. A job runs `seconds_per_line` per G-code line
(comments and blank lines excluded), at least `min_job_s`; M104/M109 and M140/M190 in the file
set the heaters' targets (the last non-zero ones), which drop to 0 when the job ends.

`fault(message)` puts the printer in error (a thermal runaway, a crashed MCU): the job stops and
the printer refuses work until `clear_fault()`. `attention(message)` holds a running job for a
person (filament runout), `resume()` goes on.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Self

AMBIENT_C = 22.0
HEAT_RATE = 0.6  # share of the gap to the target closed per second
_TEMP = re.compile(r"^\s*(M104|M109|M140|M190)\b[^;]*?\bS(\d+(?:\.\d+)?)", re.IGNORECASE)


class SimError(Exception):
    """A request the printer refuses: HTTP status and the reason."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass
class Job:
    id: int
    file: str
    duration_s: float
    elapsed_s: float = 0.0
    resumed_at: float | None = None  # monotonic, while running


@dataclass
class SimulatedPrinter:
    seconds_per_line: float = 0.01
    min_job_s: float = 1.0
    clock: Callable[[], float] = time.monotonic
    # idle, printing, paused, attention, finished, cancelled, error
    state: str = "idle"
    message: str = ""
    files: dict[str, bytes] = field(default_factory=dict)
    job: Job | None = None
    jobs_started: int = 0
    hotend_c: float = AMBIENT_C
    bed_c: float = AMBIENT_C
    hotend_target_c: float = 0.0
    bed_target_c: float = 0.0
    lock: threading.RLock = field(default_factory=threading.RLock)
    _temps_at: float | None = None

    def advance(self) -> None:
        """Bring the clock-driven values up to now (called under the lock by every request)."""
        now = self.clock()
        if self._temps_at is not None:
            share = min(1.0, HEAT_RATE * (now - self._temps_at))
            for name in ("hotend", "bed"):
                target = getattr(self, f"{name}_target_c") or AMBIENT_C
                current = getattr(self, f"{name}_c")
                setattr(self, f"{name}_c", round(current + (target - current) * share, 2))
        self._temps_at = now
        job = self.job
        if self.state != "printing" or job is None or job.resumed_at is None:
            return
        if job.elapsed_s + now - job.resumed_at >= job.duration_s:
            job.elapsed_s, job.resumed_at = job.duration_s, None
            self._end("finished")

    def progress_pct(self) -> float | None:
        job = self.job
        if job is None:
            return None
        elapsed = job.elapsed_s
        if job.resumed_at is not None:
            elapsed += self.clock() - job.resumed_at
        return round(min(100.0, 100.0 * elapsed / job.duration_s), 2)

    def _end(self, state: str) -> None:
        self.state = state
        self.hotend_target_c = self.bed_target_c = 0.0

    def upload(self, name: str, data: bytes) -> None:
        with self.lock:
            self.advance()
            if not name or "/" in name or name.startswith("."):
                raise SimError(400, f"invalid file name {name!r}")
            if self.job and self.job.file == name and self.state in ("printing", "paused"):
                raise SimError(409, f"{name} is being printed")
            self.files[name] = data

    def start(self, name: str) -> Job:
        with self.lock:
            self.advance()
            if self.state == "error":
                raise SimError(409, f"printer in error: {self.message}")
            if self.state in ("printing", "paused", "attention"):
                raise SimError(409, "printer is busy with a job")
            data = self.files.get(name)
            if data is None:
                raise SimError(404, f"no such file {name}")
            lines = [
                line
                for line in data.decode("utf-8", "replace").splitlines()
                if line.split(";", 1)[0].strip()
            ]
            for line in lines:
                match = _TEMP.match(line)
                # the heating, not the cool-down a slicer writes at the end (S0): the job's
                # end turns the heaters off (`_end`)
                if match and float(match.group(2)) > 0:
                    target = float(match.group(2))
                    if match.group(1).upper() in ("M104", "M109"):
                        self.hotend_target_c = target
                    else:
                        self.bed_target_c = target
            self.jobs_started += 1
            self.job = Job(
                self.jobs_started,
                name,
                max(self.min_job_s, len(lines) * self.seconds_per_line),
                resumed_at=self.clock(),
            )
            self.state, self.message = "printing", ""
            return self.job

    def _stop_clock(self) -> None:
        job = self.job
        if job is not None and job.resumed_at is not None:
            job.elapsed_s += self.clock() - job.resumed_at
            job.resumed_at = None

    def pause(self) -> None:
        with self.lock:
            self.advance()
            if self.state != "printing":
                raise SimError(409, f"cannot pause: the printer is {self.state}")
            self._stop_clock()
            self.state = "paused"

    def attention(self, message: str) -> None:
        with self.lock:
            self.advance()
            self._stop_clock()
            self.state, self.message = "attention", message

    def resume(self) -> None:
        with self.lock:
            self.advance()
            if self.state not in ("paused", "attention") or self.job is None:
                raise SimError(409, f"cannot resume: the printer is {self.state}")
            self.job.resumed_at = self.clock()
            self.state, self.message = "printing", ""

    def cancel(self) -> None:
        with self.lock:
            self.advance()
            if self.state not in ("printing", "paused", "attention"):
                raise SimError(409, f"cannot cancel: the printer is {self.state}")
            self._stop_clock()
            self._end("cancelled")

    def fault(self, message: str) -> None:
        with self.lock:
            self.advance()
            self._stop_clock()
            self._end("error")
            self.message = message

    def clear_fault(self) -> None:
        with self.lock:
            self.state, self.message = "idle", ""


class PrinterServer:
    """A simulator's HTTP server on 127.0.0.1, in a thread, startable from tests."""

    def __init__(self, handler: type[BaseHTTPRequestHandler], port: int) -> None:
        self.server = ThreadingHTTPServer(("127.0.0.1", port), handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def start(self) -> Self:
        self._thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
