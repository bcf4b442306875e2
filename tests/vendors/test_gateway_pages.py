"""The gateway pages (vendor and ops portals) and the node page's remote commands."""

from __future__ import annotations

import pytest
from django.utils import timezone

from apps.vendors.gateway_services import (
    gateway_config_current,
    gateway_register,
    gateway_status_report,
)
from apps.vendors.models import NodeCommand
from apps.vendors.services import node_config_save
from tests.conftest import portal_client
from tests.vendors.conftest import approved_node
from tests.vendors.test_gateways import CONTROLLED

pytestmark = pytest.mark.django_db


@pytest.fixture
def reporting(fleet):
    mill = approved_node(fleet, name="Mill-Page")
    node_config_save(node=mill, by=fleet["vendor"], config={"edge": CONTROLLED})
    bare = approved_node(fleet, name="Bare-Page")
    gateway = gateway_register(
        by=fleet["vendor"],
        vendor=fleet["forge"],
        name="Hall-A",
        site=fleet["site"],
        nodes=[mill, bare],
    )
    gateway_config_current(gateway=gateway)
    health = {
        str(mill.pk): {
            "buffered": 4321,
            "last_upload": timezone.now().isoformat(),
            "source_errors": 7,
            "last_error": "unreachable: connection refused",
        }
    }
    gateway_status_report(
        gateway=gateway,
        applied_version=1,
        error="version 2: not applied: bad map",
        health={"nodes": health},
    )
    return gateway, mill, bare


def test_the_vendor_sees_its_gateways_health(fleet, reporting):
    gateway, mill, _ = reporting
    client = portal_client(fleet["vendor"])
    page = client.get("/vendor/gateways/").content.decode()
    assert "Hall-A" in page and "4321" in page and "Online" in page and "version 1" in page
    detail = client.get(f"/vendor/gateways/{gateway.pk}/").content.decode()
    assert "unreachable: connection refused" in detail and "version 2: not applied" in detail
    assert "Bare-Page: Its configuration has no edge section" in detail


def test_operators_see_their_sites_gateways_and_others_none(fleet, reporting):
    gateway, _, _ = reporting
    operator = portal_client(fleet["operator"])
    assert "Hall-A" in operator.get("/ops/gateways/").content.decode()
    assert operator.get(f"/ops/gateways/{gateway.pk}/").status_code == 200
    assert operator.get("/vendor/gateways/").status_code == 403  # not their portal
    rival = portal_client(fleet["rival"])
    assert "Hall-A" not in rival.get("/vendor/gateways/").content.decode()
    assert rival.get(f"/vendor/gateways/{gateway.pk}/").status_code == 404
    assert portal_client(fleet["designer"]).get("/ops/gateways/").status_code == 403


def test_commands_are_sent_and_shown_on_the_node_page(fleet, reporting):
    _, mill, _ = reporting
    client = portal_client(fleet["vendor"])
    page = client.get(f"/vendor/nodes/{mill.pk}/").content.decode()
    assert "Remote commands" in page and 'value="stop"' in page and "feed (0–150)" in page
    response = client.post(
        f"/vendor/nodes/{mill.pk}/commands/",
        {"kind": "setpoint", "setpoint": "feed", "value": "999"},
    )
    assert response.status_code == 302 and not NodeCommand.objects.exists()
    assert "feed takes 0 to 150" in client.get(f"/vendor/nodes/{mill.pk}/").content.decode()
    client.post(f"/vendor/nodes/{mill.pk}/commands/", {"kind": "stop"})
    page = client.get(f"/vendor/nodes/{mill.pk}/").content.decode()
    assert "Waiting for the gateway" in page and "vendor@f.test" in page
    rival = portal_client(fleet["rival"])
    rival.post(f"/vendor/nodes/{mill.pk}/commands/", {"kind": "stop"})
    assert NodeCommand.objects.count() == 1
