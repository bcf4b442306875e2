"""A real daphne, started with the production command of docker-compose.yml, for tests that
must see what the deployed server does (its flags included) on this run's test database."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import yaml
from django.db import connection

from tests.conftest import free_port, wait_for_port

ROOT = Path(__file__).resolve().parent.parent


def production_daphne_args() -> list[str]:
    """docker-compose.yml's `web` command after `daphne`, without its -b/-p (the test's own)."""
    command = yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"]["web"][
        "command"
    ]
    assert command[0] == "daphne", command
    args: list[str] = []
    rest = iter(command[1:])
    for arg in rest:
        if arg in {"-b", "--bind", "-p", "--port"}:
            next(rest)
        else:
            args.append(arg)
    return args


@contextlib.contextmanager
def running_daphne(log_dir: Path, **env: str) -> Iterator[int]:
    """Yields the port of a daphne on 127.0.0.1 running the compose command with `env` added."""
    port = free_port()
    environ = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "imewe.settings_test",
        "IMEWE_LIVE_TEST_DB": str(connection.settings_dict["NAME"]),
        **env,
    }
    log_path = log_dir / f"daphne-{port}.log"
    with log_path.open("wb") as log:
        server = subprocess.Popen(
            [sys.executable, "-m", "daphne", "-b", "127.0.0.1", "-p", str(port)]
            + production_daphne_args(),
            cwd=ROOT,
            env=environ,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        try:
            wait_for_port(port, server, within_s=30)
        except RuntimeError as exc:
            server.kill()
            raise RuntimeError(f"{exc}\n{log_path.read_text()}") from None
        try:
            yield port
        finally:
            server.terminate()
            try:
                server.wait(timeout=15)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait()
