"""docker-compose.yml: accepted by Compose, and every long-running service has a healthcheck."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
EXPECTED = {
    "db",
    "redis",
    "mosquitto",
    "web",
    "ingest",
    "ws",
    "worker",
    "beat",
    "mqtt-bridge",
    "nginx",
    "backup",
}


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
    # the database image is TimescaleDB's with pgBackRest and restic added
    assert services["db"]["build"] == "./deploy/backup"
    dockerfile = (ROOT / "deploy" / "backup" / "Dockerfile").read_text()
    assert "FROM timescale/timescaledb:" in dockerfile
    assert "daphne" in services["web"]["command"]


def resolved_config() -> dict:
    """The file as Compose reads it (anchors and merges applied, defaults filled in)."""
    env = {**os.environ, "SECRET_KEY": "compose-config-check"}
    result = subprocess.run(
        [*compose_command(), "config"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    return yaml.safe_load(result.stdout)


def mount(volume: str | dict) -> tuple[str, str]:
    """(target, source) of a volume, in Compose v1's short form or v2's long one."""
    if isinstance(volume, dict):
        return volume["target"], volume["source"]
    source, target = volume.split(":")[:2]
    return target, source


def test_nginx_is_the_only_way_in_to_the_web_server():
    services = resolved_config()["services"]
    assert not services["web"].get("ports"), "web must be reached through nginx only"
    assert services["nginx"]["image"].startswith("nginx:")
    published = {int(p["target"]) for p in services["nginx"]["ports"]}
    assert published == {80, 443}
    mounts = dict(mount(v) for v in services["nginx"]["volumes"])
    assert mounts["/etc/nginx/templates/default.conf.template"].endswith(
        "deploy/nginx/imewe.conf.template"
    )
    assert "/etc/nginx/tls" in mounts
    # nginx serves the static volume that the `static` step fills from the image
    assert mounts["/srv/static"] == "static"
    assert services["nginx"]["environment"]["IMEWE_STATIC_ROOT"] == "/srv/static"
    assert services["nginx"]["environment"]["IMEWE_UPSTREAM"] == "web:8000"
    assert services["nginx"]["environment"]["IMEWE_INGEST_UPSTREAM"] == "ingest:8000"
    assert services["nginx"]["environment"]["IMEWE_WS_UPSTREAM"] == "ws:8000"
    for name in ("web", "ingest", "ws"):
        assert not services[name].get("ports"), f"{name} must be reached through nginx only"
    # every IMEWE_* variable of the template is given
    template = (ROOT / "deploy" / "nginx" / "imewe.conf.template").read_text()
    needed = {part.split("}", 1)[0] for part in template.split("${")[1:]}
    assert needed <= set(services["nginx"]["environment"]), needed


def test_web_trusts_one_proxy_and_never_the_client_header():
    services = resolved_config()["services"]
    for name in ("web", "ingest", "ws"):
        assert "--proxy-headers" not in services[name]["command"]
        assert services[name]["environment"]["PROXY_COUNT"] == "1"


def test_database_pools_fit_in_max_connections():
    services = resolved_config()["services"]
    command = services["db"]["command"]
    max_connections = int(command[command.index("-c") + 1].split("=")[1])
    processes = {"worker": 3, "beat": 1, "migrate": 1}  # worker: 2+1
    for name in ("web", "ingest", "ws"):  # scaled by their replica counts
        processes[name] = int(services[name]["deploy"]["replicas"])
    # one container, BRIDGE_PROCESSES bridge processes, each with its own pool
    processes["mqtt-bridge"] = int(services["mqtt-bridge"]["environment"]["BRIDGE_PROCESSES"])
    assert processes["ingest"] >= 2 and processes["ws"] >= 1
    total = 0
    for name, count in processes.items():
        env = services[name]["environment"]
        assert env.get("DB_POOL", "1") != "0", name  # the pool is on
        total += count * int(env["DB_POOL_MAX"])
    assert total <= max_connections - 20, total  # room for psql, backups, a rolling restart


def test_database_archives_every_wal_segment_through_the_backup_wrapper():
    services = resolved_config()["services"]
    command = services["db"]["command"]
    settings = dict(command[i + 1].split("=", 1) for i, arg in enumerate(command) if arg == "-c")
    assert settings["archive_mode"] == "on"
    assert settings["archive_command"] == "/usr/local/bin/imewe-pgbackrest archive-push %p"
    assert int(settings["archive_timeout"]) <= 60
    db_secrets = {s["source"] if isinstance(s, dict) else s for s in services["db"]["secrets"]}
    assert db_secrets == {"pgbackrest_repo1_passphrase", "pgbackrest_repo2_passphrase"}


def test_backup_service_sees_the_database_and_the_media_it_backs_up():
    config = resolved_config()
    services = config["services"]
    db = dict(mount(v) for v in services["db"]["volumes"])
    backup = dict(mount(v) for v in services["backup"]["volumes"])
    # pgBackRest reads the data directory at the path PostgreSQL reports, over its socket
    for path in ("/var/lib/postgresql/data", "/var/run/postgresql", "/var/lib/pgbackrest"):
        assert backup[path] == db[path], path
    assert backup["/srv/media"] == "media"
    media_ro = [v for v in services["backup"]["volumes"] if mount(v)[0] == "/srv/media"][0]
    assert media_ro.get("read_only") if isinstance(media_ro, dict) else media_ro.endswith(":ro")
    # MEDIA_ROOT in the image (IMEWE_VAR_DIR=/var/lib/imewe) is the media volume for every
    # process that handles uploads
    assert "IMEWE_VAR_DIR=/var/lib/imewe" in (ROOT / "Dockerfile").read_text()
    for name in ("web", "worker"):
        mounts = dict(mount(v) for v in services[name]["volumes"])
        assert mounts["/var/lib/imewe/media"] == "media", name
    backup_secrets = {
        s["source"] if isinstance(s, dict) else s for s in services["backup"]["secrets"]
    }
    assert backup_secrets == {
        "pgbackrest_repo1_passphrase",
        "pgbackrest_repo2_passphrase",
        "restic_passphrase",
    }
    assert set(config["secrets"]) == backup_secrets
