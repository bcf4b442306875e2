"""Gateway software updates. A release is a wheel of this package (`edge/`), built and stored by
the platform (apps/vendors/edge_releases.py) and named by the gateway's configuration document:

    "software": {"version": "1.2.0", "sha256": "<64 hex>", "size": 183211,
                 "path": "software/7/"}

A gateway not running that version downloads it with its own token from its platform only (the
path is relative to the gateway API and checked), capped at `size` bytes, and checks its SHA-256
before anything is installed. pip installs it into `<state dir>/software/<version>/` (no
dependencies, no index: a release brings none of its own, and one that needs a new third-party
package fails the next step). The installed copy is started once as a self-test (it imports the
gateway and prints its version); only then does the gateway switch: the state file names the
new version *on trial* and the process replaces itself (exec) with the new software on the same
interpreter, so its process id and service stay the same.

The service manager always starts the gateway as installed (with Restart=always); `launch()` at
start sends it on to the current version. A version on trial confirms itself when it completes
a poll of the platform. One that was started MAX_TRIAL_STARTS times without confirming is given
up: the previous version runs again and remembers why, and the configuration that names the
version is refused with that reason, so the platform's rollout counts the gateway as failed and
rolls it back. Everything here blocks; the gateway runs it in a thread.
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any, Protocol

logger = logging.getLogger("edge.software")

DISTRIBUTION = "imewe-edge"
# the version of a checkout (no wheel installed it): never equal to a release's
CHECKOUT_VERSION = "0+checkout"
MAX_WHEEL_BYTES = 50 * 1024 * 1024
MAX_TRIAL_STARTS = 3
PIP_TIMEOUT_S = 180
SELF_TEST_TIMEOUT_S = 60
# the environment variable a switched process carries: the version it was started to run
SWITCHED_ENV = "IMEWE_EDGE_SOFTWARE"
_VERSION = re.compile(r"[0-9][0-9A-Za-z.+!-]{0,39}")
_PATH = re.compile(r"software/[0-9]{1,12}/")
_SHA256 = re.compile(r"[0-9a-f]{64}")


class SoftwareRefused(Exception):
    """This release cannot run here; the message says why."""


class Downloader(Protocol):
    def download(self, path: str, destination: Path, *, max_bytes: int) -> tuple[str, int]:
        """Write the answer to `path` into `destination`; its SHA-256 (hex) and size."""
        ...


@dataclass(frozen=True)
class Release:
    version: str
    sha256: str
    size: int
    path: str

    @property
    def wheel_name(self) -> str:
        return f"imewe_edge-{self.version}-py3-none-any.whl"


def installed_version() -> str:
    """The version of the wheel this very package was installed from (its dist-info lies next
    to it), or CHECKOUT_VERSION when it runs from a source checkout."""
    site = Path(__file__).resolve().parent.parent
    for info in sorted(site.glob("imewe_edge-*.dist-info")):
        return metadata.Distribution.at(info).version
    return CHECKOUT_VERSION


def software_version() -> str:
    """What the gateway reports to the platform."""
    return f"{DISTRIBUTION}/{installed_version()}"


def release_from(spec: Any) -> Release:
    """The release a configuration document names; SoftwareRefused when it is malformed."""
    if not isinstance(spec, dict):
        raise SoftwareRefused("software is not an object")
    version, sha256, size, path = (spec.get(k) for k in ("version", "sha256", "size", "path"))
    if not isinstance(version, str) or not _VERSION.fullmatch(version) or ".." in version:
        raise SoftwareRefused(f"software version {version!r} is not a release version")
    if not isinstance(sha256, str) or not _SHA256.fullmatch(sha256):
        raise SoftwareRefused("software sha256 is not 64 hex digits")
    if not isinstance(size, int) or isinstance(size, bool) or not 0 < size <= MAX_WHEEL_BYTES:
        raise SoftwareRefused(f"software size {size!r} is not 1-{MAX_WHEEL_BYTES} bytes")
    if not isinstance(path, str) or not _PATH.fullmatch(path):
        raise SoftwareRefused("software path is not one of the platform's releases")
    return Release(version=version, sha256=sha256, size=size, path=path)


class SoftwareStore:
    """`<state dir>/software/`: the installed versions and state.json, which says which one is
    current, which ran before it, whether the current one is on trial (and how often it was
    started so), and why versions were given up."""

    def __init__(self, state_dir: str | Path) -> None:
        # absolute: pip and the self-test run in this directory, and PYTHONPATH outlives exec
        self.root = Path(state_dir).resolve() / "software"
        self.state_path = self.root / "state.json"

    def state(self) -> dict[str, Any]:
        blank: dict[str, Any] = {
            "current": None,
            "previous": None,
            "trial": False,
            "starts": 0,
            "refused": {},
        }
        try:
            raw = json.loads(self.state_path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return blank
        except (OSError, ValueError) as exc:
            logger.error("%s is unusable (%s): running as installed", self.state_path, exc)
            return blank
        return {**blank, **raw} if isinstance(raw, dict) else blank

    def save(self, state: dict[str, Any]) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        temporary = self.state_path.with_name("state.json.tmp")
        with open(temporary, "w", encoding="utf-8") as handle:
            json.dump(state, handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, self.state_path)

    def directory(self, version: str) -> Path:
        return self.root / version

    def refusal(self, version: str) -> str:
        """Why `version` was given up here, or ""."""
        return str(self.state()["refused"].get(version, ""))

    # --- installing ------------------------------------------------------------------------

    def prepare(self, release: Release, link: Downloader) -> None:
        """Download, check, install and self-test `release`, then make it current on trial.
        SoftwareRefused says why not; the running software is untouched either way."""
        self.root.mkdir(parents=True, exist_ok=True)
        incoming = self.root / "incoming"
        shutil.rmtree(incoming, ignore_errors=True)
        incoming.mkdir()
        wheel = incoming / release.wheel_name
        # the link's errors go up: PlatformUnavailable to try again at the next poll
        digest, size = link.download(release.path, wheel, max_bytes=release.size)
        if size != release.size or digest != release.sha256:
            shutil.rmtree(incoming, ignore_errors=True)
            got = f"more than {release.size}" if size > release.size else str(size)
            raise SoftwareRefused(
                f"the download does not match the release: sha256 {digest[:16]}… "
                f"({got} bytes), expected {release.sha256[:16]}… ({release.size} bytes); "
                "nothing was installed"
            )
        target = incoming / "site"
        self._run(
            "pip install",
            [
                sys.executable,
                "-m",
                "pip",
                "install",
                "--no-deps",
                "--no-index",
                "--no-compile",
                "--disable-pip-version-check",
                "--no-warn-script-location",
                "--target",
                str(target),
                str(wheel),
            ],
            PIP_TIMEOUT_S,
        )
        reported = self._run(
            "self-test",
            [sys.executable, "-P", "-c", _SELF_TEST],
            SELF_TEST_TIMEOUT_S,
            pythonpath=target,
        ).strip()
        if reported != release.version:
            raise SoftwareRefused(
                f"self-test: the installed software says it is {reported!r}, "
                f"not {release.version!r}"
            )
        final = self.directory(release.version)
        shutil.rmtree(final, ignore_errors=True)
        os.replace(target, final)
        shutil.rmtree(incoming, ignore_errors=True)
        state = self.state()
        state["refused"].pop(release.version, None)
        running = installed_version()
        state.update(
            current=release.version,
            previous=running if running != CHECKOUT_VERSION else None,
            trial=True,
            starts=0,
        )
        self.save(state)
        logger.info("Software %s installed and self-tested; switching to it", release.version)

    def _run(
        self, what: str, argv: list[str], timeout: float, *, pythonpath: Path | None = None
    ) -> str:
        env = dict(os.environ)
        if pythonpath is not None:
            env["PYTHONPATH"] = os.pathsep.join(
                p for p in (str(pythonpath), env.get("PYTHONPATH", "")) if p
            )
        try:
            done = subprocess.run(
                argv,
                capture_output=True,
                text=True,
                timeout=timeout,
                env=env,
                cwd=self.root,
                check=False,
            )
        except subprocess.TimeoutExpired:
            raise SoftwareRefused(f"{what} did not finish within {timeout:g} s") from None
        except OSError as exc:
            raise SoftwareRefused(f"{what} could not run: {exc}") from None
        if done.returncode != 0:
            tail = (done.stderr or done.stdout).strip().splitlines()[-3:]
            raise SoftwareRefused(f"{what} failed ({done.returncode}): {' | '.join(tail)}")
        return done.stdout

    # --- starting --------------------------------------------------------------------------

    def confirm(self) -> None:
        """The current version completed a poll: it is no longer on trial. Installed versions
        other than it and the previous one are removed."""
        state = self.state()
        if not state["trial"] or state["current"] != installed_version():
            return
        state.update(trial=False, starts=0)
        self.save(state)
        logger.info("Software %s confirmed", state["current"])
        keep = {state["current"], state["previous"], "incoming"}
        for path in self.root.iterdir():
            if path.is_dir() and path.name not in keep:
                shutil.rmtree(path, ignore_errors=True)

    def next_start(self) -> str | None:
        """Which version this start should run: None to go on as installed, else the version
        to switch to. A version on trial is counted; one started too often is given up."""
        state = self.state()
        current = state["current"]
        running = installed_version()
        if current is None or current == running:
            return None
        if os.environ.get(SWITCHED_ENV) == current:  # switched, yet not running it
            return self._give_up(state, f"it did not take over (the process still runs {running})")
        if not self.directory(current).is_dir():
            return self._give_up(state, "its installed copy is missing")
        if state["trial"]:
            if state["starts"] >= MAX_TRIAL_STARTS:
                return self._give_up(
                    state,
                    f"it was started {state['starts']} times and never completed a poll",
                )
            state["starts"] += 1
            self.save(state)
        return str(current)

    def _give_up(self, state: dict[str, Any], why: str) -> str | None:
        version = state["current"]
        previous = state["previous"]
        logger.error("Software %s given up: %s; back on %s", version, why, previous or "install")
        state["refused"][version] = why
        state.update(current=previous, previous=None, trial=False, starts=0)
        self.save(state)
        if previous is None or previous == installed_version():
            return None
        return str(previous) if self.directory(previous).is_dir() else None


_SELF_TEST = (
    "import edge.gateway, edge.managed, edge.commands, edge.control, edge.software; "
    "print(edge.software.installed_version())"
)


def switch_to(store: SoftwareStore, version: str) -> None:
    """Replace this process with the gateway of `version` (same arguments and interpreter);
    `-P` keeps the working directory off the path, so a checkout there cannot shadow it."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(
        p for p in (str(store.directory(version)), env.get("PYTHONPATH", "")) if p
    )
    env[SWITCHED_ENV] = version
    argv = [sys.executable, "-P", "-m", "edge.gateway", *sys.argv[1:]]
    logger.info("Starting software %s", version)
    for handler in logging.getLogger().handlers:
        handler.flush()
    os.execve(sys.executable, argv, env)


def launch(state_dir: str | Path) -> None:
    """At start: go on here, or replace this process with the current version."""
    store = SoftwareStore(state_dir)
    version = store.next_start()
    if version is not None:
        switch_to(store, version)
