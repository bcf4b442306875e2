"""A node's work agent: takes the parts the platform assigned to its node and reports start,
progress and completion through the node work API (`/api/v1/work/parts/`) with the node's
device token. On a real machine the controller's job state drives the reports; with the
simulators, a part "runs" for its estimated hours divided by `speedup` (the demo's time scale,
DEMO_TIME_SCALE in `make run`), so `make run` shows jobs progressing by themselves. With a
`machine` (edge/simulators/control.py) the agent also tells the simulated machine when a part
starts and stops, and at what mean power (the part's estimated kWh over its estimated hours): the
machine draws load only while a part runs, so the energy measured from its telemetry is the
estimate divided by `speedup`.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from typing import Any

from edge.simulators.control import MachineControl

logger = logging.getLogger(__name__)


class WorkApiError(Exception):
    pass


@dataclass
class WorkAgent:
    base_url: str
    token: str
    speedup: float = 360.0  # an estimated hour takes 10 s
    report_every_s: float = 1.0
    poll_every_s: float = 3.0
    min_quality: float = 0.9
    machine: MachineControl | None = None  # a simulated machine to drive (None: a real one)
    completed: list[int] = field(default_factory=list)
    _rng: random.Random = field(default_factory=random.Random)

    def _call(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(
            self.base_url.rstrip("/") + "/api/v1/work/parts/" + path, data=data, method=method
        )
        request.add_header("Authorization", f"Device {self.token}")
        request.add_header("Content-Type", "application/json")
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                return json.loads(response.read())
        except urllib.error.HTTPError as exc:
            raise WorkApiError(f"HTTP {exc.code}: {exc.read()[:300]!r}") from None

    async def call(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        return await asyncio.to_thread(self._call, method, path, body)

    async def run_one(self, part: dict[str, Any]) -> None:
        estimates = part.get("estimates") or {}
        hours = float(estimates.get("duration_h") or 0.5)
        seconds = max(hours * 3600 / self.speedup, 2.0)
        energy_kwh = float(estimates.get("energy_kwh") or 0.0)
        load_kw = energy_kwh / hours if hours > 0 else 0.0
        await self.call("POST", f"{part['id']}/start/")
        logger.info(
            "part %s (%s): started, %.2f h estimated, runs %.0f s at time scale x%g",
            part["id"],
            part["name"],
            hours,
            seconds,
            self.speedup,
        )
        if self.machine is not None:
            await self.machine.part_start(load_kw=load_kw, seconds=seconds)
        try:
            await self._report_progress(part, seconds)
        finally:
            if self.machine is not None:
                await self.machine.part_stop()
        quality = round(self._rng.uniform(self.min_quality, 1.0), 3)
        await self.call("POST", f"{part['id']}/complete/", {"quality_score": quality})
        self.completed.append(int(part["id"]))
        logger.info("part %s: completed, quality %.3f", part["id"], quality)

    async def _report_progress(self, part: dict[str, Any], seconds: float) -> None:
        # by the clock, not by counting sleeps: the reports' round trips must not stretch the run
        loop = asyncio.get_running_loop()
        started = loop.time()
        elapsed = 0.0
        while elapsed < seconds:
            await asyncio.sleep(min(self.report_every_s, max(seconds - elapsed, 0.0)))
            elapsed = loop.time() - started
            progress = min(100.0, round(100 * elapsed / seconds, 1))
            await self.call("POST", f"{part['id']}/progress/", {"progress_pct": progress})

    async def run(self) -> None:
        logger.info(
            "work agent: time scale x%g (an estimated hour runs in %.0f s)%s",
            self.speedup,
            3600 / self.speedup,
            "; drives the simulated machine" if self.machine is not None else "",
        )
        while True:
            try:
                queue = (await self.call("GET", ""))["results"]
                # the queue is in the plan's order; a part the plan holds back (cheaper hours,
                # a site's power cap) or that waits for the one before it is not ready yet
                ready = [part for part in queue if part.get("ready", True)]
                if ready:
                    await self.run_one(ready[0])
                    continue
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # the platform is away or refused: try again later
                logger.warning("work agent: %s", exc)
            await asyncio.sleep(self.poll_every_s)
