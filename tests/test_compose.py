"""docker-compose.yml: accepted by Compose, and every long-running service has a healthcheck."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
EXPECTED = {"db", "redis", "mosquitto", "web", "worker", "beat", "mqtt-bridge"}


def compose_command() -> list[str]:
    if (
        shutil.which("docker")
        and subprocess.run(["docker", "compose", "version"], capture_output=True).returncode == 0
    ):
        return ["docker", "compose"]
    binary = shutil.which("docker-compose")
    assert binary, "install Compose (Debian package docker-compose) to validate docker-compose.yml"
    return [binary]


def test_compose_accepts_the_file():
    env = {**os.environ, "SECRET_KEY": "compose-config-check"}
    result = subprocess.run(
        [*compose_command(), "config", "-q"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr


def test_compose_requires_a_secret_key():
    env = {k: v for k, v in os.environ.items() if k != "SECRET_KEY"}
    result = subprocess.run(
        [*compose_command(), "config", "-q"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode != 0
    assert "SECRET_KEY" in result.stderr


def test_every_service_has_a_healthcheck():
    services = yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"]
    assert set(services) >= EXPECTED
    for name in EXPECTED:
        check = services[name].get("healthcheck")
        assert check and check.get("test"), name
    assert services["db"]["image"].startswith("timescale/timescaledb")
    assert "daphne" in services["web"]["command"]
