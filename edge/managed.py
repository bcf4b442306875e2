"""A gateway under the platform's management:
`python -m edge.gateway --platform https://imewe.example --token imwgw_... [--state-dir DIR]`.

No edge.yaml: the gateway pulls its configuration from the platform (GET /api/v1/gateway/config/,
with If-None-Match so an unchanged one costs a 304), every `forwarding.poll_s` seconds (default
10). The document (apps/vendors/gateway_config.py) lists the devices with their signal maps,
limits and deadbands, and the forwarding settings; the gateway asks the platform for each node's
device token once and keeps it in `<state dir>/node-tokens.json` (mode 600).

A new version is applied atomically: it is validated and built in full (every device's source
with its map) before anything changes; then the running configuration is stopped (its buffers
drained as far as the platform takes them) and the new one started on probation: if it dies
within `probation_s` (a signal map the device refuses, say), the previous configuration is
started again. A version that failed is not tried again until the platform issues another;
either way the gateway keeps running on its last good configuration, which is kept on disk
(`<state dir>/config.json`) so a restart without the platform starts it too. After each poll
the gateway reports the applied version, why the last one failed, and per node its buffer
depth, last upload and source errors (POST /api/v1/gateway/status/). Before the report it takes
the machines' pending remote commands and applies them (edge/commands.py), acknowledging each
with its outcome; a command issued while the gateway was off waits on the platform until it
polls again (or expires). Points are buffered in
`<state dir>/buffer.sqlite3.<node>` across configurations.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import time as clock
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from edge.commands import COMMAND_TIMEOUT_S, CommandFailed, execute
from edge.control import PlatformLink, PlatformRefused, PlatformUnavailable
from edge.gateway import Gateway, from_config
from edge.software import SoftwareRefused, SoftwareStore, installed_version, release_from
from edge.software import software_version as running_software

logger = logging.getLogger("edge.managed")
SOFTWARE_VERSION = running_software()
DOCUMENT_FORMAT = 1
DEFAULT_POLL_S = 10.0
DEFAULT_PROBATION_S = 3.0
# keys of a device entry that are the platform's, not edge.yaml's
PLATFORM_KEYS = {"name", "setpoints", "commands"}
FORWARDING_KEYS = ("forward_every_s", "max_silence_s", "min_urgent_gap_s", "deadband")


class ConfigRefused(Exception):
    """This configuration cannot run here; the message says why."""


class SwitchSoftware(Exception):
    """A new software version is installed and on trial: leave the loop (buffers closed) and
    start it in place of this process (edge/software.py)."""

    def __init__(self, version: str) -> None:
        super().__init__(version)
        self.version = version


def check_document(document: Any) -> int:
    """The document's version; ConfigRefused when it is not a configuration this gateway
    understands."""
    if not isinstance(document, dict):
        raise ConfigRefused("the configuration is not a JSON object")
    if document.get("format") != DOCUMENT_FORMAT:
        raise ConfigRefused(f"format {document.get('format')!r} is not {DOCUMENT_FORMAT}")
    version = document.get("version")
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise ConfigRefused(f"version {version!r} is not a positive integer")
    if not isinstance(document.get("forwarding", {}), dict):
        raise ConfigRefused("forwarding is not an object")
    devices = document.get("devices")
    if not isinstance(devices, list):
        raise ConfigRefused("devices is not a list")
    for device in devices:
        if not isinstance(device, dict) or not isinstance(device.get("node"), int):
            raise ConfigRefused("every device needs its node id")
    return version


def gateway_config(
    document: Mapping[str, Any], *, platform_url: str, tokens: Mapping[int, str], buffer_path: str
) -> dict[str, Any]:
    """The edge.yaml equivalent of a platform document (from_config validates it)."""
    forwarding = dict(document.get("forwarding") or {})
    config: dict[str, Any] = {
        "upstream": {
            "url": platform_url,
            "batch_size": forwarding.get("batch_size", 1000),
            "max_attempts": forwarding.get("max_attempts", 3),
        },
        "buffer": {"path": buffer_path, "max_points": forwarding.get("max_points", 1_000_000)},
        "devices": [],
    }
    for key in FORWARDING_KEYS:
        if key in forwarding:
            config[key] = forwarding[key]
    for device in document["devices"]:
        node = device["node"]
        entry = {k: v for k, v in device.items() if k not in PLATFORM_KEYS}
        entry["token"] = tokens.get(node, "")
        config["devices"].append(entry)
    return config


def poll_seconds(document: Mapping[str, Any] | None) -> float:
    raw = (document or {}).get("forwarding", {}).get("poll_s", DEFAULT_POLL_S)
    try:
        seconds = float(raw)
    except (TypeError, ValueError):
        return DEFAULT_POLL_S
    return seconds if 1 <= seconds <= 3600 else DEFAULT_POLL_S  # NaN fails too


def _write_private(path: Path, data: Any) -> None:
    """Write `data` as JSON to `path` atomically (a crash leaves the old file or the new one),
    readable by this user only."""
    temporary = path.with_name(path.name + ".tmp")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        json.dump(data, handle)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(temporary, path)


class ManagedGateway:
    def __init__(
        self,
        link: PlatformLink,
        state_dir: str | Path,
        *,
        probation_s: float = DEFAULT_PROBATION_S,
        platform_url: str | None = None,
    ) -> None:
        self.link = link
        self.platform_url = platform_url or link.base_url.removesuffix("/api/v1/gateway/")
        self.state_dir = Path(state_dir)
        self.state_dir.mkdir(parents=True, exist_ok=True)
        self.config_path = self.state_dir / "config.json"
        self.tokens_path = self.state_dir / "node-tokens.json"
        self.probation_s = probation_s
        self.running: Gateway | None = None
        self.task: asyncio.Task[None] | None = None
        self.applied: dict[str, Any] | None = None
        self.applied_version: int | None = None
        self.apply_error = ""
        self.refused_version: int | None = None
        self.etag: str | None = None
        self.tokens: dict[int, str] = self._load_tokens()
        self.software = SoftwareStore(self.state_dir)

    # --- state on disk ---------------------------------------------------------------------

    def _load_tokens(self) -> dict[int, str]:
        try:
            raw = json.loads(self.tokens_path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return {}
        except ValueError:
            logger.error("%s is corrupt; asking the platform for new tokens", self.tokens_path)
            return {}
        return {int(k): str(v) for k, v in raw.items()} if isinstance(raw, dict) else {}

    def last_good(self) -> dict[str, Any] | None:
        try:
            document = json.loads(self.config_path.read_text(encoding="utf-8"))
            check_document(document)
        except FileNotFoundError:
            return None
        except (OSError, ValueError, ConfigRefused) as exc:
            logger.error("%s is unusable (%s); waiting for the platform", self.config_path, exc)
            return None
        assert isinstance(document, dict)
        return document

    # --- applying --------------------------------------------------------------------------

    async def _ensure_tokens(self, document: Mapping[str, Any]) -> None:
        missing = [d["node"] for d in document["devices"] if d["node"] not in self.tokens]
        for node in missing:
            try:
                self.tokens[node] = await asyncio.to_thread(self.link.node_token, node)
            except PlatformRefused as exc:
                raise ConfigRefused(f"node {node}: no device token ({exc.message})") from None
        if missing:
            try:
                _write_private(self.tokens_path, {str(k): v for k, v in self.tokens.items()})
            except OSError as exc:  # they work now; after a restart it asks for new ones
                logger.error("Node tokens not saved in %s: %s", self.tokens_path, exc)

    def build(self, document: Mapping[str, Any]) -> Gateway:
        config = gateway_config(
            document,
            platform_url=self.platform_url,
            tokens=self.tokens,
            buffer_path=str(self.state_dir / "buffer.sqlite3"),
        )
        try:
            return from_config(config)
        except (ValueError, TypeError, KeyError) as exc:
            raise ConfigRefused(str(exc) or type(exc).__name__) from None

    async def apply(self, document: dict[str, Any], *, save: bool = True) -> bool:
        """Run `document` instead of the current configuration, or keep the current one and say
        why not. PlatformUnavailable (a token could not be fetched) leaves all as it was. The
        last good one from disk (`save=False`) runs on whatever software launch() chose: the
        platform sees from the reported software version whether that is the one it names."""
        try:
            version = check_document(document)
            if save:
                await self._software(document)
            await self._ensure_tokens(document)
            gateway = self.build(document)
        except ConfigRefused as exc:
            self._refuse(document.get("version"), f"not applied: {exc}")
            return False
        previous = self.applied
        await self._stop()
        self._start(gateway)
        problem = await self._probation(gateway)
        if problem:
            await self._stop()
            self._refuse(version, f"stopped at start ({problem}); back on the last good one")
            if previous is not None:
                self._restart(previous)
            return False
        self.applied, self.applied_version = document, version
        self.apply_error, self.refused_version = "", None
        if save:
            try:
                _write_private(self.config_path, document)
            except OSError as exc:  # it runs; a restart without the platform would not have it
                self.apply_error = f"version {version}: applied but not saved as last good: {exc}"
                logger.error("Configuration %s", self.apply_error)
        logger.info("Configuration version %s applied (%d devices)", version, len(gateway.devices))
        return True

    async def _software(self, document: Mapping[str, Any]) -> None:
        """A document that names another software version is applied by that version: install
        it and raise SwitchSoftware, or ConfigRefused saying why it cannot run here."""
        if document.get("software") is None:
            return
        try:
            release = release_from(document["software"])
        except SoftwareRefused as exc:
            raise ConfigRefused(str(exc)) from None
        if release.version == installed_version():
            return
        given_up = self.software.refusal(release.version)
        if given_up:
            raise ConfigRefused(f"software {release.version} was given up here: {given_up}")
        try:
            await asyncio.to_thread(self.software.prepare, release, self.link)
        except SoftwareRefused as exc:
            raise ConfigRefused(f"software {release.version}: {exc}") from None
        except PlatformRefused as exc:
            raise ConfigRefused(f"software {release.version}: download refused: {exc}") from None
        raise SwitchSoftware(release.version)

    def _refuse(self, version: Any, reason: str) -> None:
        self.refused_version = version if isinstance(version, int) else None
        self.apply_error = f"version {version}: {reason}"
        logger.error("Configuration %s", self.apply_error)

    def _start(self, gateway: Gateway) -> None:
        self.running = gateway
        self.task = asyncio.create_task(gateway.run())

    async def _stop(self) -> None:
        task, gateway = self.task, self.running
        self.task = self.running = None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        if gateway is not None:
            for forwarder in gateway.forwarders.values():
                forwarder.buffer.close()

    async def _probation(self, gateway: Gateway) -> str:
        """Why the just-started configuration died within `probation_s`, or "". A device that
        is merely unreachable does not fail it (a machine may be off); a wrong map does."""
        deadline = clock.monotonic() + self.probation_s
        nodes = [d.node for d in gateway.devices]
        while clock.monotonic() < deadline:
            assert self.task is not None
            if self.task.done():
                return _death(self.task)
            if all(gateway.health_of(n).reads > 0 for n in nodes):
                return ""
            await asyncio.sleep(0.05)
        return ""

    # --- the loop --------------------------------------------------------------------------

    async def cycle(self) -> None:
        """One poll: a new configuration if there is one, the running one watched, a report."""
        try:
            answer = await asyncio.to_thread(self.link.config, self.etag)
            document = answer.document
            if document is not None:
                version = document.get("version")
                if version not in (self.applied_version, self.refused_version):
                    await self.apply(document)
                self.etag = answer.etag
        except PlatformUnavailable as exc:
            logger.warning("The platform is unreachable (%s); running on what I have", exc)
        except PlatformRefused as exc:
            logger.error("The platform refused the configuration pull: %s", exc)
        await self._supervise()
        await self._commands()
        try:
            await asyncio.to_thread(self.link.report, self.status())
        except (PlatformUnavailable, PlatformRefused):
            return
        if self.applied_version is not None:  # a version on trial has proved itself
            await asyncio.to_thread(self.software.confirm)

    async def _commands(self) -> None:
        """Apply the platform's pending commands, one at a time in the order given, each
        acknowledged with its outcome (edge/commands.py)."""
        try:
            commands = await asyncio.to_thread(self.link.take_commands)
        except (PlatformUnavailable, PlatformRefused) as exc:
            logger.warning("No commands this time: %s", exc)
            return
        devices = {d["node"]: d for d in (self.applied or {}).get("devices", [])}
        for command in commands:
            device = devices.get(command.get("node"))
            try:
                if device is None:
                    raise CommandFailed("the machine is not in the running configuration")
                outcome = await asyncio.wait_for(execute(device, command), COMMAND_TIMEOUT_S)
                ok = True
            except Exception as exc:  # the outcome goes back to the platform, whatever it is
                ok, outcome = False, f"{type(exc).__name__}: {exc}"
            log = logger.info if ok else logger.error
            log(
                "Command %s (%s) for node %s: %s",
                command.get("id"),
                command.get("kind"),
                command.get("node"),
                outcome,
            )
            try:
                await asyncio.to_thread(
                    self.link.acknowledge, int(command["id"]), ok=ok, outcome=outcome
                )
            except (PlatformUnavailable, PlatformRefused) as exc:
                logger.error(
                    "Command %s: the acknowledgement was not taken: %s", command.get("id"), exc
                )

    async def _supervise(self) -> None:
        """A running configuration that died (a device's map went wrong later) is reported and
        started again at the next poll, so one bad device does not stop the others for long."""
        if self.task is None or not self.task.done() or self.applied is None:
            return
        reason = _death(self.task)
        self.apply_error = f"version {self.applied_version} stopped ({reason}); restarted"
        logger.error("Configuration %s", self.apply_error)
        await self._stop()
        self._restart(self.applied)

    def _restart(self, document: Mapping[str, Any]) -> None:
        """Start `document` again (it ran before); should even that fail, run nothing rather
        than stop managing: the next version from the platform may fix it."""
        try:
            self._start(self.build(document))
        except ConfigRefused as exc:
            self.apply_error += f"; the last good one does not start either: {exc}"
            logger.error("The last good configuration does not start: %s", exc)

    def status(self) -> dict[str, Any]:
        nodes: dict[str, Any] = {}
        if self.running is not None:
            for node, forwarder in self.running.forwarders.items():
                health = self.running.health_of(node)
                nodes[str(node)] = {
                    "buffered": len(forwarder.buffer),
                    "last_upload": health.last_upload.isoformat() if health.last_upload else None,
                    "source_errors": health.errors,
                    "last_error": health.last_error,
                    "dead_lettered": forwarder.stats.dead_lettered,
                }
        return {
            "applied_version": self.applied_version,
            "error": self.apply_error[:2000],
            "software_version": SOFTWARE_VERSION,
            "nodes": nodes,
        }

    async def run(self) -> None:
        last = self.last_good()
        if last is not None:  # running at once, platform or not
            logger.info("Starting on the last good configuration (version %s)", last["version"])
            try:
                await self.apply(last, save=False)
            except PlatformUnavailable as exc:  # a token it never got: wait for the platform
                logger.error("Cannot start the last good configuration yet: %s", exc)
        try:
            while True:
                started = clock.monotonic()
                await self.cycle()
                wait = poll_seconds(self.applied) - (clock.monotonic() - started)
                await asyncio.sleep(max(wait, 0.0))
        finally:
            await self._stop()


def _death(task: asyncio.Task[None]) -> str:
    if task.cancelled():
        return "cancelled"
    exc = task.exception()
    return f"{type(exc).__name__}: {exc}" if exc is not None else "it ended"
