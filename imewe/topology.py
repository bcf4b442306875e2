"""The production topology on one machine without docker: nginx (deploy/nginx/, the same
template docker-compose renders) in front of separate processes for each kind of work.

    .venv/bin/python -m imewe.topology --web 2 --ingest 2 --ws 1 --bridges 1

- web: the portals, the API, admin (daphne, `imewe.asgi`);
- ingest: `POST /api/v1/telemetry/` and `/batch/` from gateways (daphne, the same application:
  the fast path in apps/telemetry/fast_path.py serves them);
- ws: every `/ws/` websocket (daphne), fed by the channel layer (Redis);
- bridges: `manage.py mqtt_bridge`, sharing the broker's messages (MQTT shared subscription).

Each kind scales by its process count; nginx balances requests over the processes of a kind
(least connections for the websockets). Benchmarks and the end-to-end test (tests/e2e/
test_topology.py) start it through `running_topology()`; `docker-compose.yml` runs the same
split with one service per kind and a replica count each.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TEMPLATE = ROOT / "deploy" / "nginx" / "imewe.conf.template"

# Each process's psycopg pool (DB_POOL_MAX): the sum over all processes stays under
# PostgreSQL's max_connections (docker-compose.yml counts the same budget).
POOL_MAX = {"web": 20, "ingest": 8, "ws": 4, "bridge": 4}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for_port(port: int, process: subprocess.Popen[bytes], *, within_s: float) -> None:
    deadline = time.monotonic() + within_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"process for port {port} exited with {process.returncode}")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
            return
        time.sleep(0.1)
    raise RuntimeError(f"nothing listens on {port} after {within_s} s")


def upstream(ports: list[int]) -> str:
    """An upstream block's server list as one template value: the template writes
    `server ${IMEWE_..._UPSTREAM};`, so "a:1; server b:2" gives two servers."""
    return "; server ".join(f"127.0.0.1:{port}" for port in ports)


def render(template: str, values: Mapping[str, str]) -> str:
    """What the nginx image's envsubst step does with the IMEWE_* variables."""
    for name, value in values.items():
        template = template.replace("${" + name + "}", value)
    if "${IMEWE_" in template:
        raise ValueError("a variable of the nginx template has no value")
    return template


def self_signed_certificate(directory: Path) -> tuple[Path, Path]:
    cert, key = directory / "fullchain.pem", directory / "privkey.pem"
    if not cert.exists():
        subprocess.run(
            ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "30"]
            + ["-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1"]
            + ["-keyout", str(key), "-out", str(cert)],
            check=True,
            capture_output=True,
        )
    return cert, key


def nginx_main_conf(directory: Path, site: Path, access_log: Path, workers: int = 1) -> Path:
    """The rest of what the nginx image's own nginx.conf holds, with paths in `directory`."""
    temp = {name: directory / name for name in ("body", "proxy", "fcgi", "uwsgi", "scgi")}
    for path in temp.values():
        path.mkdir(exist_ok=True)
    conf = directory / "nginx.conf"
    conf.write_text(
        f"""
{"user root;" if os.geteuid() == 0 else ""}
worker_processes {workers};
daemon off;
pid {directory}/nginx.pid;
error_log {directory}/error.log warn;
events {{ worker_connections 4096; }}
http {{
    include /etc/nginx/mime.types;
    default_type application/octet-stream;
    log_format upstream '$request_uri $status $upstream_addr';
    access_log {access_log} upstream;
    client_body_temp_path {temp["body"]};
    proxy_temp_path {temp["proxy"]};
    fastcgi_temp_path {temp["fcgi"]};
    uwsgi_temp_path {temp["uwsgi"]};
    scgi_temp_path {temp["scgi"]};
    sendfile on;
    keepalive_timeout 65;
    include {site};
}}
"""
    )
    return conf


def nginx_binary() -> str:
    nginx = shutil.which("nginx") or "/usr/sbin/nginx"
    if not os.path.exists(nginx):
        raise RuntimeError("install nginx (Debian package nginx) to run the topology")
    return nginx


@dataclass
class Process:
    role: str
    port: int | None
    popen: subprocess.Popen[bytes]
    log: Path


@dataclass
class Running:
    https: str
    http: str
    directory: Path
    processes: list[Process] = field(default_factory=list)

    def ports(self, role: str) -> list[int]:
        return [p.port for p in self.processes if p.role == role and p.port is not None]

    def pids(self, role: str) -> list[int]:
        return [p.popen.pid for p in self.processes if p.role == role]

    @property
    def access_log(self) -> Path:
        return self.directory / "access.log"


def _start(
    role: str, args: list[str], env: Mapping[str, str], log: Path
) -> subprocess.Popen[bytes]:
    with log.open("ab") as out:
        return subprocess.Popen(args, cwd=ROOT, env=dict(env), stdout=out, stderr=subprocess.STDOUT)


@contextlib.contextmanager
def running_topology(
    directory: Path,
    *,
    web: int = 1,
    ingest: int = 1,
    ws: int = 1,
    bridges: int = 0,
    env: Mapping[str, str] | None = None,
    mqtt_url: str = "mqtt://127.0.0.1:1883",
    https_port: int | None = None,
    http_port: int | None = None,
    nginx_workers: int = 1,
) -> Iterator[Running]:
    """Starts every process and nginx; stops them all on exit."""
    directory.mkdir(parents=True, exist_ok=True)
    base = {
        **os.environ,
        "DEBUG": "0",
        "TRUST_X_FORWARDED_PROTO": "1",
        "PROXY_COUNT": "1",
        **(env or {}),
    }
    https_port = https_port or free_port()
    http_port = http_port or free_port()
    running = Running(f"https://127.0.0.1:{https_port}", f"http://127.0.0.1:{http_port}", directory)
    try:
        for role, count in (("web", web), ("ingest", ingest), ("ws", ws)):
            for index in range(count):
                port = free_port()
                role_env = {
                    **base,
                    "IMEWE_PROCESS_ROLE": role,
                    "DB_POOL_MAX": base.get(f"{role.upper()}_DB_POOL_MAX", str(POOL_MAX[role])),
                    "DB_POOL_MIN": "1",
                }
                args = [sys.executable, "-m", "daphne", "-b", "127.0.0.1", "-p", str(port)]
                args.append("imewe.asgi:application")
                log = directory / f"{role}-{index}.log"
                running.processes.append(
                    Process(role, port, _start(role, args, role_env, log), log)
                )
        if bridges:
            # one supervisor of `bridges` bridges (mqtt_bridge --processes), sharing the
            # broker's messages with client ids <prefix>-0..N-1, as compose's service does
            role_env = {**base, "IMEWE_PROCESS_ROLE": "bridge", "DB_POOL_MAX": "2"}
            role_env["DB_POOL_MIN"] = "1"
            args = [sys.executable, "manage.py", "mqtt_bridge", "--url", mqtt_url]
            args += ["--processes", str(bridges)]
            log = directory / "bridges.log"
            supervisor = _start("bridge", args, role_env, log)
            running.processes.append(Process("bridge", None, supervisor, log))
        for process in running.processes:
            if process.port is not None:
                wait_for_port(process.port, process.popen, within_s=60)
        cert, key = self_signed_certificate(directory)
        static_root = ROOT / "staticfiles"
        site = directory / "imewe.conf"
        site.write_text(
            render(
                TEMPLATE.read_text(),
                {
                    "IMEWE_UPSTREAM": upstream(running.ports("web")),
                    "IMEWE_INGEST_UPSTREAM": upstream(running.ports("ingest")),
                    "IMEWE_WS_UPSTREAM": upstream(running.ports("ws")),
                    "IMEWE_HTTP_PORT": str(http_port),
                    "IMEWE_HTTPS_PORT": str(https_port),
                    "IMEWE_SERVER_NAME": "_",
                    "IMEWE_TLS_CERT": str(cert),
                    "IMEWE_TLS_KEY": str(key),
                    "IMEWE_STATIC_ROOT": str(static_root),
                },
            )
        )
        conf = nginx_main_conf(directory, site, running.access_log, nginx_workers)
        command = [nginx_binary(), "-p", str(directory), "-c", str(conf)]
        checked = subprocess.run([*command, "-t"], capture_output=True, text=True)
        if checked.returncode != 0:
            raise RuntimeError(f"nginx refused the configuration: {checked.stderr}")
        nginx = _start("nginx", command, os.environ, directory / "nginx.log")
        running.processes.append(Process("nginx", https_port, nginx, directory / "nginx.log"))
        wait_for_port(https_port, nginx, within_s=15)
        yield running
    finally:
        for process in running.processes:
            if process.popen.poll() is None:
                process.popen.send_signal(signal.SIGTERM)
        for process in running.processes:
            try:
                process.popen.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.popen.kill()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--web", type=int, default=2)  # as docker-compose.yml
    parser.add_argument("--ingest", type=int, default=2)
    parser.add_argument("--ws", type=int, default=1)
    parser.add_argument("--bridges", type=int, default=1)
    parser.add_argument("--https-port", type=int, default=8443)
    parser.add_argument("--http-port", type=int, default=8080)
    parser.add_argument("--dir", type=Path, default=ROOT / "var" / "topology")
    options = parser.parse_args()
    with running_topology(
        options.dir,
        web=options.web,
        ingest=options.ingest,
        ws=options.ws,
        bridges=options.bridges,
        https_port=options.https_port,
        http_port=options.http_port,
    ) as running:
        print(f"Imewe at {running.https} (self-signed certificate); logs in {options.dir}")
        for process in running.processes:
            print(f"  {process.role:7} pid {process.popen.pid:>7}  port {process.port or '-'}")
        with contextlib.suppress(KeyboardInterrupt):
            signal.sigwait({signal.SIGINT, signal.SIGTERM})


if __name__ == "__main__":
    main()
