"""Real gateway processes for the managed-gateway tests (this directory's fixtures): the OPC UA
machine simulator, gateway processes started (and stopped) like a service, and waiting on what
they report."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from edge.simulators.opcua import NODE_IDS
from tests.conftest import free_port, wait_for_port

ROOT = Path(__file__).resolve().parents[2]
OPCUA_PORTS = range(4850, 4860)  # this suite's share of the machine's ports


def opcua_edge(port: int, **extra: object) -> dict:
    return {
        "protocol": "opcua",
        "url": f"opc.tcp://127.0.0.1:{port}/imewe/",
        "interval_ms": 200,
        "signals": {s: f"ns=2;s={n}" for s, n in NODE_IDS.items()},
        **extra,
    }


def _port_in_range() -> int:
    import socket

    for port in OPCUA_PORTS:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) != 0:
                return port
    return free_port()


@pytest.fixture
def opcua_server() -> Iterator[int]:
    """The OPC UA machine simulator, a process of its own."""
    port = _port_in_range()
    proc = subprocess.Popen(
        [sys.executable, "-m", "edge.simulators.opcua", "--port", str(port)],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_for_port(port, proc, within_s=30)
        yield port
    finally:
        proc.terminate()
        proc.wait(10)


# runs `python -m edge.gateway ARGS` under a file size limit (a limit survives exec)
LIMITED = (
    "import os, resource, sys; "
    "resource.setrlimit(resource.RLIMIT_FSIZE, ({0}, {0})); "
    "os.execv(sys.executable, [sys.executable, '-m', 'edge.gateway', *sys.argv[2:]])"
)


@pytest.fixture
def start_gateway(tmp_path: Path) -> Iterator[Callable[..., subprocess.Popen[bytes]]]:
    procs: list[subprocess.Popen[bytes]] = []

    def start(
        platform: str, token: str, state: Path, *, file_size_limit: int | None = None
    ) -> subprocess.Popen[bytes]:
        """The gateway process; `file_size_limit`: the largest file it may write, as a service
        manager would set it (systemd's LimitFSIZE=, `ulimit -f`)."""
        log = open(tmp_path / f"gateway-{len(procs)}.log", "wb")  # noqa: SIM115
        command = [sys.executable, "-m", "edge.gateway"]
        if file_size_limit is not None:
            command = [sys.executable, "-c", LIMITED.format(file_size_limit), "--"]
        proc = subprocess.Popen(
            [*command, "--platform", platform, "--state-dir", str(state)],
            cwd=ROOT,
            env={**os.environ, "IMEWE_GATEWAY_TOKEN": token},
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        procs.append(proc)
        return proc

    yield start
    for proc in procs:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def wait_until(check: Callable[[], object], *, within_s: float, what: str, log: Path) -> None:
    deadline = time.monotonic() + within_s
    while not check():
        if time.monotonic() > deadline:
            logs = "\n".join(p.read_text()[-3000:] for p in sorted(log.glob("gateway-*.log")))
            raise AssertionError(f"{what}: not within {within_s:g} s\n{logs}")
        time.sleep(0.2)
