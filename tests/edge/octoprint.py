"""A real OctoPrint server with its bundled virtual printer, started by a test: a temporary
basedir, a user with a known API key in users.yaml, the first-run wizard off, the plugins that
call the internet disabled, and the printer connected on the VIRTUAL port.

OctoPrint lives in a venv of its own (`make octoprint` creates var/octoprint-venv from
requirements-octoprint.txt; OCTOPRINT_VENV points elsewhere). It refuses to run as root unless
told `--iknowwhatimdoing`; CI runs as root.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
API_KEY = "imewe-test-octoprint-key-0123456789"
# bundled plugins that fetch from the internet at start (update checks, plugin repository,
# announcements, usage tracking, error reporting) or are of no use to a test
DISABLED = [
    "softwareupdate",
    "pluginmanager",
    "announcements",
    "tracking",
    "errortracking",
    "health_check",
    "achievements",
    "firmware_check",
    "file_check",
    "pi_support",
    "discovery",
    "backup",
    "gcodeviewer",
    "classicwebcam",
]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def octoprint_bin() -> Path:
    venv = Path(os.environ.get("OCTOPRINT_VENV", "var/octoprint-venv"))
    if not venv.is_absolute():
        venv = ROOT / venv
    binary = venv / "bin" / "octoprint"
    if not binary.exists():
        raise RuntimeError(
            f"OctoPrint is not installed at {venv}: run `make octoprint` (make test does)"
        )
    return binary


@dataclass
class OctoPrintServer:
    url: str
    api_key: str
    basedir: Path
    process: subprocess.Popen[bytes]

    def call(self, method: str, path: str, body: object = None) -> object:
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(self.url + path, data=data, method=method)
        request.add_header("X-Api-Key", self.api_key)
        if data is not None:
            request.add_header("Content-Type", "application/json")
        with urllib.request.urlopen(request, timeout=10) as response:
            raw = response.read()
        return json.loads(raw) if raw else None

    def log(self) -> str:
        path = self.basedir / "logs" / "octoprint.log"
        return path.read_text(errors="replace")[-4000:] if path.exists() else ""


def _write_config(basedir: Path, throttle: float) -> None:
    config = {
        "server": {
            "firstRun": False,
            "onlineCheck": {"enabled": False},
            "pluginBlacklist": {"enabled": False},
        },
        "serial": {"port": "VIRTUAL", "baudrate": 115200, "autoconnect": False},
        "plugins": {
            "_disabled": DISABLED,
            # the virtual printer's pause between lines: a small file prints in seconds
            "virtual_printer": {"enabled": True, "throttle": throttle},
        },
    }
    users = {
        "_version": 2,
        "imewe": {
            "active": True,
            "password": "!",  # matches no password: the user is only for its API key
            "groups": ["admins", "users"],
            "permissions": [],
            "apikey": API_KEY,
            "settings": {},
        },
    }
    (basedir / "config.yaml").write_text(yaml.safe_dump(config))
    (basedir / "users.yaml").write_text(yaml.safe_dump(users))


@contextlib.contextmanager
def octoprint_server(
    basedir: Path, *, connect: bool = True, throttle: float = 0.001
) -> Iterator[OctoPrintServer]:
    basedir.mkdir(parents=True, exist_ok=True)
    _write_config(basedir, throttle)
    port = free_port()
    process = subprocess.Popen(
        [
            str(octoprint_bin()),
            "serve",
            "--iknowwhatimdoing",
            "--basedir",
            str(basedir),
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    server = OctoPrintServer(f"http://127.0.0.1:{port}", API_KEY, basedir, process)
    try:
        deadline = time.monotonic() + 90  # a loaded 2-core machine: seconds, rarely a minute
        while True:
            assert process.poll() is None, f"OctoPrint exited:\n{server.log()}"
            try:
                server.call("GET", "/api/version")
                break
            # while it starts, an intermediary server answers with a bare "Not found"
            except (urllib.error.URLError, ConnectionError, http.client.HTTPException):
                assert time.monotonic() < deadline, f"OctoPrint did not start:\n{server.log()}"
                time.sleep(0.25)
        if connect:
            server.call("POST", "/api/connection", {"command": "connect", "port": "VIRTUAL"})
            while True:
                state = server.call("GET", "/api/connection")
                assert isinstance(state, dict)
                if state["current"]["state"] == "Operational":
                    break
                assert time.monotonic() < deadline, f"virtual printer: {state}"
                time.sleep(0.1)
        yield server
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
