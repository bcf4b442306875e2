"""The production front door: the project's nginx configuration (deploy/nginx/) on a real nginx,
with a self-signed certificate, in front of a real daphne started with docker-compose's command."""

from __future__ import annotations

import os
import shutil
import ssl
import subprocess
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests
from websockets.sync.client import connect as ws_connect

from apps.core.models import AuditLog
from apps.users.tokens import tokens_issue
from imewe.topology import nginx_main_conf, render, self_signed_certificate
from tests.conftest import free_port, wait_for_port
from tests.daphne import running_daphne

pytestmark = [
    pytest.mark.django_db(transaction=True),  # daphne reads the rows the test makes
    pytest.mark.filterwarnings("ignore::urllib3.exceptions.InsecureRequestWarning"),  # self-signed
]
ROOT = Path(__file__).resolve().parent.parent
TEMPLATE = ROOT / "deploy" / "nginx" / "imewe.conf.template"
MB = 1024 * 1024


@dataclass
class FrontDoor:
    http: str
    https: str
    static_root: Path
    access_log: Path

    def upstream_of(self, marker: str) -> str:
        """The upstream nginx passed the request whose URI holds `marker` to ("-": none)."""
        deadline = time.monotonic() + 10  # nginx logs a request just after answering it
        while not (
            lines := [ln for ln in self.access_log.read_text().splitlines() if marker in ln]
        ):
            assert time.monotonic() < deadline, f"no request with {marker} in the access log"
            time.sleep(0.05)
        return lines[-1].rsplit(" ", 1)[1]


@pytest.fixture(scope="module")
def front_door(tmp_path_factory: pytest.TempPathFactory, django_db_setup) -> Iterator[FrontDoor]:
    tmp_path = tmp_path_factory.mktemp("front-door")
    nginx = shutil.which("nginx") or "/usr/sbin/nginx"
    assert os.path.exists(nginx), "install nginx (Debian package nginx) to test the front door"
    static_root = tmp_path / "static"
    static_root.mkdir()
    cert, key = self_signed_certificate(tmp_path)
    http_port, https_port = free_port(), free_port()
    # daphne as in docker-compose, behind two proxies: a load balancer that the test plays (it
    # writes the first X-Forwarded-For entry) and nginx, which must append its caller to it.
    with running_daphne(
        tmp_path,
        PROXY_COUNT="2",
        TRUST_X_FORWARDED_PROTO="1",
        SECURE_SSL_REDIRECT="1",
        INTERNAL_NETWORKS="10.0.0.0/8",
    ) as daphne_port:
        site = render(
            TEMPLATE.read_text(),
            {
                "IMEWE_UPSTREAM": f"127.0.0.1:{daphne_port}",
                # one daphne plays all three kinds here (tests/e2e/test_topology.py runs each)
                "IMEWE_INGEST_UPSTREAM": f"127.0.0.1:{daphne_port}",
                "IMEWE_WS_UPSTREAM": f"127.0.0.1:{daphne_port}",
                "IMEWE_HTTP_PORT": str(http_port),
                "IMEWE_HTTPS_PORT": str(https_port),
                "IMEWE_SERVER_NAME": "_",
                "IMEWE_TLS_CERT": str(cert),
                "IMEWE_TLS_KEY": str(key),
                "IMEWE_STATIC_ROOT": str(static_root),
            },
        )
        (tmp_path / "imewe.conf").write_text(site)
        access_log = tmp_path / "access.log"
        nginx_main_conf(tmp_path, tmp_path / "imewe.conf", access_log)
        command = [nginx, "-p", str(tmp_path), "-c", str(tmp_path / "nginx.conf")]
        checked = subprocess.run([*command, "-t"], capture_output=True, text=True)
        assert checked.returncode == 0, checked.stderr
        server = subprocess.Popen(command, stderr=subprocess.PIPE)
        try:
            wait_for_port(https_port, server, within_s=15)
            wait_for_port(http_port, server, within_s=15)
            yield FrontDoor(
                http=f"http://127.0.0.1:{http_port}",
                https=f"https://127.0.0.1:{https_port}",
                static_root=static_root,
                access_log=access_log,
            )
        finally:
            server.terminate()
            server.wait(timeout=15)


def test_plain_http_redirects_to_https_except_the_health_probe(front_door):
    redirect = requests.get(f"{front_door.http}/jobs/?status=open", allow_redirects=False)
    assert redirect.status_code == 301
    assert redirect.headers["Location"] == "https://127.0.0.1/jobs/?status=open"
    health = requests.get(f"{front_door.http}/healthz", allow_redirects=False)
    assert health.status_code == 200 and health.json() == {"status": "ok"}


def test_pages_reach_the_app_over_tls_with_the_scheme_and_gzip(front_door):
    # the app redirects plain-HTTP requests (SECURE_SSL_REDIRECT): it must see https here
    page = requests.get(
        f"{front_door.https}/account/login/", verify=False, headers={"Accept-Encoding": "gzip"}
    )
    assert page.status_code == 200
    assert "<form" in page.text
    assert page.headers["Content-Encoding"] == "gzip"
    assert "nginx/" not in page.headers.get("Server", "")  # no version disclosed


def test_static_files_come_from_the_shared_folder(front_door):
    name = f"probe-{uuid.uuid4().hex}.css"  # exists only in nginx's folder, not in the app
    body = "body { color: #123456; }\n" * 200
    (front_door.static_root / "css").mkdir()
    (front_door.static_root / "css" / name).write_text(body)
    response = requests.get(
        f"{front_door.https}/static/css/{name}", verify=False, headers={"Accept-Encoding": "gzip"}
    )
    assert response.status_code == 200
    assert response.text == body
    assert response.headers["Content-Encoding"] == "gzip"
    assert "max-age=604800" in response.headers["Cache-Control"]
    missing = requests.get(f"{front_door.https}/static/css/nothing-{name}", verify=False)
    assert missing.status_code == 404
    assert front_door.upstream_of(f"nothing-{name}") == "-"  # never asked daphne


def test_metrics_are_refused_from_outside(front_door):
    response = requests.get(
        f"{front_door.https}/metrics", verify=False, headers={"X-Forwarded-For": "10.9.9.9"}
    )
    assert response.status_code == 404
    assert "django_http_requests" not in response.text
    assert front_door.upstream_of("/metrics") == "-"


def test_oversized_bodies_get_413_from_nginx_per_route(front_door):
    def post(path: str, size: int) -> requests.Response:
        return requests.post(
            f"{front_door.https}{path}",
            data=b"x" * size,
            headers={"Content-Type": "application/octet-stream"},
            verify=False,
        )

    login = post("/api/v1/auth/token/?big", 11 * MB)
    assert login.status_code == 413
    assert login.json()["error"]["code"] == "payload_too_large"
    assert front_door.upstream_of("/api/v1/auth/token/?big") == "-"
    portal = post("/account/login/?big", 11 * MB)
    assert portal.status_code == 413
    assert front_door.upstream_of("/account/login/?big") == "-"

    # telemetry batches are bounded tighter (the API takes at most 5,120,000 bytes inflated),
    # uploads are larger: what fits reaches the app
    post("/api/v1/telemetry/?mid", 5 * MB)
    assert front_door.upstream_of("/api/v1/telemetry/?mid") != "-"
    assert post("/api/v1/telemetry/?big", 7 * MB).status_code == 413
    assert front_door.upstream_of("/api/v1/telemetry/?big") == "-"
    post("/api/v1/jobs/cad/", 17 * MB)
    assert front_door.upstream_of("/api/v1/jobs/cad/") != "-"
    assert post("/api/v1/jobs/cad/?huge", 61 * MB).status_code == 413
    assert front_door.upstream_of("/api/v1/jobs/cad/?huge") == "-"


def test_websocket_upgrade_passes_through(front_door, make_user):
    token = tokens_issue(user=make_user(), otp_verified=True).access_token
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    url = front_door.https.replace("https://", "wss://") + f"/ws/notifications/?token={token}"
    with ws_connect(
        url, ssl=context, additional_headers={"Origin": front_door.https}, open_timeout=30
    ) as socket:
        socket.ping().wait(timeout=10)
    assert front_door.upstream_of("/ws/notifications/") != "-"


def test_the_app_sees_the_address_nginx_appended(front_door, make_user):
    user = make_user()
    for forwarded in ("10.9.9.9", "10.1.1.1, 198.51.100.7"):
        response = requests.post(
            f"{front_door.https}/api/v1/auth/token/",
            json={"email": user.email, "password": "wrong-password-1"},
            headers={"X-Forwarded-For": forwarded},
            verify=False,
        )
        assert response.status_code in (400, 401)
    entries = AuditLog.objects.filter(action=AuditLog.Action.LOGIN_FAILURE).order_by("pk")
    # PROXY_COUNT=2: the entry left of nginx's own. 10.1.1.1 was the client's forgery.
    assert [entry.ip_address for entry in entries] == ["10.9.9.9", "198.51.100.7"]
