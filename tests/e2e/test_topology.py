"""The production topology on this machine (imewe/topology.py): nginx with the project's
template in front of separate web, ingest and websocket processes. A gateway's batches reach the
ingest processes only, a browser's websocket the websocket process only, pages the web process;
and the point a gateway sends shows up live on the socket, across processes, through Redis."""

from __future__ import annotations

import gzip
import json
import os
import ssl
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
import requests
from django.db import connection
from django.utils import timezone
from websockets.sync.client import connect as ws_connect

from apps.maintenance.models import SignalState
from apps.telemetry.models import TelemetryPoint
from apps.users.tokens import tokens_issue
from imewe.topology import Running, running_topology
from tests.fixtures.fleet import Fleet
from tests.fixtures.live import Live

pytestmark = [
    pytest.mark.django_db(transaction=True),  # the servers read the rows the test makes
    pytest.mark.filterwarnings("ignore::urllib3.exceptions.InsecureRequestWarning"),
]


@pytest.fixture
def topology(tmp_path: Path) -> Iterator[Running]:
    env = {
        "DJANGO_SETTINGS_MODULE": "imewe.settings_test",
        "IMEWE_LIVE_TEST_DB": str(connection.settings_dict["NAME"]),
        "IMEWE_LIVE_TEST_RUN": str(os.getpid()),  # this run's channel-layer groups
        "SECURE_SSL_REDIRECT": "1",
        "LOG_LEVEL": "INFO",
        "TELEMETRY_RECEIVERS_IN_BACKGROUND": "1",  # as in production (after_ingest.py)
    }
    with running_topology(tmp_path / "topology", web=1, ingest=2, ws=1, env=env) as running:
        yield running


def served_by(running: Running, marker: str) -> list[int]:
    """The upstream ports nginx passed the requests whose URI holds `marker` to."""
    deadline = time.monotonic() + 10
    while True:
        lines = [ln for ln in running.access_log.read_text().splitlines() if marker in ln]
        if lines or time.monotonic() > deadline:
            return [int(ln.rsplit(":", 1)[1]) for ln in lines if ln.rsplit(" ", 1)[1] != "-"]
        time.sleep(0.05)


def test_each_kind_of_work_reaches_its_own_processes_and_live_points_cross_them(
    topology,
    live: Live,
    fleet: Fleet,
    default_rules,  # (a transactional test before may have emptied them)
):
    node = live.nodes[0]
    token = tokens_issue(user=fleet.vendor, otp_verified=True).access_token
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    url = topology.https.replace("https://", "wss://") + f"/ws/telemetry/?nodes={node.pk}"
    with ws_connect(f"{url}&token={token}", ssl=context, open_timeout=30) as socket:
        assert json.loads(socket.recv(timeout=10))["type"] == "subscribed"
        base = timezone.now().replace(microsecond=0) - timedelta(seconds=30)
        for batch in range(6):  # gateways' batches, gzip as edge/forwarder.py sends them
            points = [
                {
                    "node": node.pk,
                    "time": (base + timedelta(seconds=batch * 4 + i)).isoformat(),
                    "power_kw": 1.0 + batch,
                }
                for i in range(4)
            ]
            response = requests.post(
                f"{topology.https}/api/v1/telemetry/batch/?batch={batch}",
                data=gzip.compress(json.dumps(points).encode()),
                headers={
                    "Authorization": f"Device {live.tokens[0]}",
                    "Content-Type": "application/json",
                    "Content-Encoding": "gzip",
                },
                verify=False,
                timeout=10,
            )
            # ?batch= is no route of the fast path: Django's view answers these, as it
            # answers every request the fast path leaves alone
            assert response.status_code == 200, response.text
        fast = requests.post(
            f"{topology.https}/api/v1/telemetry/batch/",
            json=[{"node": node.pk, "time": timezone.now().isoformat(), "power_kw": 9.5}],
            headers={"Authorization": f"Device {live.tokens[0]}"},
            verify=False,
            timeout=10,
        )
        assert fast.status_code == 200 and fast.json()["accepted"] == 1
        assert "vary" not in {k.lower() for k in fast.headers}  # the fast path answered
        newest = TelemetryPoint.objects.filter(node=node).latest("time").time
        seen = []
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            message = json.loads(socket.recv(timeout=10))
            if message["type"] == "telemetry":
                seen.append(message)
                if message["time"] == newest.isoformat():
                    break
        assert seen and seen[-1]["power_kw"] == 9.5, seen
        assert TelemetryPoint.objects.filter(node=node).count() == 25
    # the ingest processes' receiver threads judged the newest reading by the node's rules
    deadline = time.monotonic() + 15
    state = None
    while time.monotonic() < deadline:
        state = SignalState.objects.filter(node=node, signal="power_kw").first()
        if state is not None and state.value == 9.5:
            break
        time.sleep(0.1)
    assert state is not None and state.value == 9.5, state

    page = requests.get(f"{topology.https}/account/login/?probe=1", verify=False, timeout=10)
    assert page.status_code == 200 and "<form" in page.text
    latest = requests.get(
        f"{topology.https}/api/v1/telemetry/latest/?nodes={node.pk}",
        headers={"Authorization": f"Bearer {token}"},
        verify=False,
        timeout=10,
    )
    assert latest.status_code == 200, latest.text

    ingest, ws, web = topology.ports("ingest"), topology.ports("ws"), topology.ports("web")
    batches = served_by(topology, "/api/v1/telemetry/batch/")
    assert len(batches) == 7 and set(batches) == set(ingest)  # both ingest processes worked
    assert set(served_by(topology, "/ws/telemetry/")) == set(ws)
    assert set(served_by(topology, "/account/login/?probe=1")) == set(web)
    assert set(served_by(topology, "/api/v1/telemetry/latest/")) == set(web)
