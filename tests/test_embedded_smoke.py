"""The embedded default as `make run` starts it: SQLite, in-memory channel layer and a Celery
worker on the filesystem transport (no database, Redis or broker server), in fresh processes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from tests.conftest import free_port

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
pytestmark = pytest.mark.integration


def http(method: str, url: str, body: dict | None = None, token: str = "") -> tuple[int, dict]:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, method=method)
    request.add_header("Content-Type", "application/json")
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


@pytest.fixture(scope="module")
def embedded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, dict[str, str]]]:
    var = tmp_path_factory.mktemp("embedded-var")
    env = {k: v for k, v in os.environ.items() if k in {"PATH", "HOME", "LANG", "TMPDIR"}}
    env.update(
        DJANGO_SETTINGS_MODULE="imewe.settings",
        SECRET_KEY="smoke-" + "Qx7-vB2_pL9mZ4rT8yW1nK6" * 3,
        DEBUG="1",
        IMEWE_VAR_DIR=str(var),
        DEMO_TIME_SCALE="360",  # as `make run` sets it: an estimated hour runs in 10 s
    )
    for args in (["migrate", "--noinput", "-v", "0"], ["seed_demo"]):
        subprocess.run(
            [sys.executable, "manage.py", *args],
            cwd=ROOT,
            env=env,
            check=True,
            capture_output=True,
            timeout=300,
        )
    port = free_port()
    web = subprocess.Popen(
        [str(BIN / "daphne"), "-b", "127.0.0.1", "-p", str(port), "imewe.asgi:application"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    worker_log = open(var / "worker.log", "wb")  # noqa: SIM115  (closed below)
    worker = subprocess.Popen(
        [str(BIN / "celery"), "-A", "imewe", "worker", "--pool", "solo", "--loglevel", "INFO"],
        cwd=ROOT,
        env=env,
        stdout=worker_log,
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                urllib.request.urlopen(f"{base}/healthz", timeout=2)
                break
            except OSError:
                time.sleep(0.25)
        yield base, env
    finally:
        for proc in (web, worker):
            proc.terminate()
        for proc in (web, worker):
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
        worker_log.close()


def test_ready_on_embedded_backends(embedded):
    base, _ = embedded
    status, body = http("GET", f"{base}/readyz")
    assert status == 200, body
    checks = body["checks"]
    assert checks["database"]["backend"] == "sqlite"
    assert checks["channel_layer"]["backend"] == "InMemoryChannelLayer"
    assert checks["broker"]["backend"] == "filesystem"


def test_demo_login_and_background_work_without_a_broker_server(embedded):
    base, env = embedded
    status, tokens = http(
        "POST",
        f"{base}/api/v1/auth/token/",
        {"email": "designer@imewe.test", "password": "designer-demo-2026"},
    )
    assert status == 200, tokens
    status, me = http("GET", f"{base}/api/v1/auth/me/", token=tokens["access"])
    assert me["user"]["role"] == "designer"

    # when: a task is queued through the filesystem transport and run by the worker process
    code = (
        "import django; django.setup();"
        "from apps.core.tasks import notification_send_task as t;"
        f"print(t.delay({me['user']['id']}, 'Smoke task').get(timeout=90))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    notification_id = int(done.stdout.strip().splitlines()[-1])

    status, listing = http("GET", f"{base}/api/v1/notifications/", token=tokens["access"])
    assert status == 200
    assert notification_id in [n["id"] for n in listing["results"]]


def test_seed_demo_is_idempotent(embedded):
    _, env = embedded
    again = subprocess.run(
        [sys.executable, "manage.py", "seed_demo"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert again.returncode == 0
    assert again.stdout.count("exists ") == 6


def test_the_demo_fleet_streams_through_the_real_gateway(embedded, tmp_path):
    """What `make run` starts: one simulator per protocol and the edge gateway, as processes."""
    base, env = embedded
    config_path = tmp_path / "edge.yaml"
    subprocess.run(
        [sys.executable, "manage.py", "demo_edge_config", "--output", str(config_path)]
        + ["--base-url", base],
        cwd=ROOT,
        env=env,
        check=True,
        capture_output=True,
        timeout=120,
    )
    config = yaml.safe_load(config_path.read_text())
    config["buffer"]["path"] = str(tmp_path / "buffer.sqlite3")
    config["forward_every_s"] = 0.5
    simulators = []
    for device in config["devices"]:  # free ports, so a running `make run` is not disturbed
        port = free_port()
        if device["protocol"] == "opcua":
            device["url"] = f"opc.tcp://127.0.0.1:{port}/imewe/"
            kind = "cnc_mill" if "Spindle.Speed" in str(device["signals"]) else "fdm_printer"
            args = ["edge.simulators.opcua", "--port", str(port), "--kind", kind]
        elif device["protocol"] == "modbus":
            device["url"] = f"modbus://127.0.0.1:{port}"
            args = ["edge.simulators.modbus", "--port", str(port)]
        elif device["protocol"] == "octoprint":
            device["url"] = f"http://127.0.0.1:{port}"
            args = ["edge.simulators.octoprint", "--port", str(port), "--api-key"]
            args.append(device["api_key"])
        else:
            device["url"] = f"http://127.0.0.1:{port}"
            args = ["edge.simulators.mtconnect", "--port", str(port)]
        simulators.append(args)
    config_path.write_text(yaml.safe_dump(config))
    procs = [
        subprocess.Popen([sys.executable, "-m", *args], cwd=ROOT, stderr=subprocess.DEVNULL)
        for args in simulators
    ]
    gateway = subprocess.Popen(
        [sys.executable, "-m", "edge.gateway", "--config", str(config_path)],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    procs.append(gateway)
    try:
        status, tokens = http(
            "POST",
            f"{base}/api/v1/auth/token/",
            {"email": "operator@imewe.test", "password": "operator-demo-2026"},
        )
        assert status == 200, tokens
        nodes = {d["node"] for d in config["devices"]}
        seen: set[int] = set()
        deadline = time.monotonic() + 60
        while seen != nodes and time.monotonic() < deadline:
            time.sleep(1)
            status, latest = http("GET", f"{base}/api/v1/telemetry/latest/", token=tokens["access"])
            assert status == 200, latest
            seen = {row["node"] for row in latest["results"] if row["node"] in nodes}

        # a designer's job is scheduled by the worker and made by the simulated machines
        status, designer = http(
            "POST",
            f"{base}/api/v1/auth/token/",
            {"email": "designer@imewe.test", "password": "designer-demo-2026"},
        )
        part = {"material": "PLA", "process": "fdm", "size_x_mm": 20, "size_y_mm": 20}
        status, job = http(
            "POST",
            f"{base}/api/v1/jobs/",
            {"title": "Smoke", "parts": [{**part, "name": "clip", "size_z_mm": 10}]},
            token=designer["access"],
        )
        assert status == 201, job
        deadline = time.monotonic() + 90
        while job["status"] != "completed" and time.monotonic() < deadline:
            time.sleep(1)
            status, job = http("GET", f"{base}/api/v1/jobs/{job['id']}/", token=designer["access"])
        worker_log = Path(env["IMEWE_VAR_DIR"]) / "worker.log"
        assert job["status"] == "completed", (job["history"], worker_log.read_text()[-3000:])
        assert job["parts"][0]["quality_score"] >= 0.9
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
    assert seen == nodes, gateway.stderr.read().decode()[-3000:] if gateway.stderr else ""
