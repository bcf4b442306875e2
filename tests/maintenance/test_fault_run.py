"""End to end: an OPC UA machine simulator with an injected bearing-wear fault, polled by the
edge gateway, streaming over HTTPS into the platform, whose rules, monitor and models act on it.
A worn bearing must end in one ticket, not a stream of them."""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass

import pytest

from apps.maintenance.models import Alert, NodeHealth, Ticket
from apps.maintenance.services import fleet_monitor
from apps.maintenance.services.scoring import nodes_score
from apps.telemetry.models import TelemetryPoint
from apps.vendors.services import device_credential_issue
from edge.gateway import from_config
from edge.simulators.machines import Fault, MachineModel
from edge.simulators.opcua import NODE_IDS, serve
from tests.conftest import free_port
from tests.fixtures.fleet import Fleet
from tests.fixtures.machines import in_service

WARP = 60  # simulated seconds per real second: the wear of minutes in a few seconds


@dataclass
class WarpedMachine(MachineModel):
    def sample(self, t: float) -> dict[str, float]:
        return super().sample(t * WARP)


async def stream(seconds: float, config: dict, port: int) -> None:
    ready = asyncio.Event()
    model = WarpedMachine(kind="cnc_mill", rated_power_kw=7.5, fault=Fault.BEARING_WEAR, seed=11)
    server = asyncio.create_task(serve(port=port, model=model, period=0.05, ready=ready))
    await asyncio.wait_for(ready.wait(), 15)
    gateway = from_config(config)
    task = asyncio.create_task(gateway.run())
    await asyncio.sleep(seconds)
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    server.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await server


@pytest.mark.integration
@pytest.mark.django_db(transaction=True)
def test_a_worn_bearing_ends_in_one_ticket(live_server, default_rules, fleet: Fleet, tmp_path):
    # given: a mill in service with a device token, streaming through the gateway
    node = in_service(fleet, name="Worn-Mill")
    _, token = device_credential_issue(node=node, by=fleet.vendor)
    port = free_port()
    config = {
        "upstream": {"url": live_server.url, "batch_size": 200},
        "buffer": {"path": str(tmp_path / "edge.sqlite3")},
        "forward_every_s": 0.25,
        "devices": [
            {
                "node": node.pk,
                "token": token,
                "protocol": "opcua",
                "url": f"opc.tcp://127.0.0.1:{port}/imewe/",
                "interval_ms": 100,
                "signals": {s: f"ns=2;s={n}" for s, n in NODE_IDS.items()},
            }
        ],
    }
    # when: vibration ramps 0.6 mm/s a simulated minute past 2.5 (warning) and 4.0 (critical)
    # and keeps rising for a while; then the monitor and the models look at the node, twice
    asyncio.run(stream(18.0, config, port))
    for _ in range(2):
        fleet_monitor()
        nodes_score()
    # then
    assert TelemetryPoint.objects.filter(node=node).count() > 100
    alerts = Alert.objects.filter(node=node)
    assert [(a.signal, a.severity) for a in alerts] == [("vibration_mm_s", "critical")]
    assert alerts[0].count > 10  # every later reading updated the one alert
    tickets = Ticket.objects.filter(node=node)
    assert tickets.count() == 1
    ticket = tickets.get()
    assert (ticket.issue_type, ticket.severity, ticket.status) == ("vibration", "critical", "open")
    # the vibration trend (no trained model needed) says the limit is reached: that finding
    # joined the ticket instead of opening another
    assert ticket.evidence["findings"]["low_rul"]["vibration_hours_to_limit"] == 0.0
    assert ticket.occurrences >= 2
    health = NodeHealth.objects.get(node=node)
    assert health.online and health.components["remaining_life"] == 20.0 and health.score <= 40
