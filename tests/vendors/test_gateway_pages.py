"""The gateway pages (vendor and ops portals) and the node page's remote commands."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.template.loader import render_to_string
from django.utils import timezone

from apps.core.models import AuditLog
from apps.vendors.gateway_services import (
    gateway_config_current,
    gateway_register,
    gateway_status_report,
)
from apps.vendors.models import FabricationNode, NodeCommand
from apps.vendors.node_commands import gateway_commands_take, node_command_issue
from apps.vendors.services import node_config_save
from apps.vendors.tasks import node_commands_expire_task
from celery_worker.beat_schedule import BEAT_SCHEDULE
from tests.conftest import portal_client
from tests.fixtures.fleet import Fleet, approved_node
from tests.vendors.test_gateways import CONTROLLED

pytestmark = pytest.mark.django_db


@pytest.fixture
def reporting(fleet: Fleet):
    mill = approved_node(fleet, name="Mill-Page")
    node_config_save(node=mill, by=fleet.vendor, config={"edge": CONTROLLED})
    bare = approved_node(fleet, name="Bare-Page")
    gateway = gateway_register(
        by=fleet.vendor,
        vendor=fleet.forge,
        name="Hall-A",
        site=fleet.site,
        nodes=[mill, bare],
    )
    gateway_config_current(gateway=gateway)
    health = {
        str(mill.pk): {
            "buffered": 4321,
            "last_upload": "2026-03-04T05:06:07.123456+00:00",
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


def test_the_vendor_sees_its_gateways_health(fleet: Fleet, reporting):
    gateway, mill, _ = reporting
    client = portal_client(fleet.vendor)
    page = client.get("/vendor/gateways/").content.decode()
    assert "Hall-A" in page and "4321" in page and "Online" in page and "version 1" in page
    detail = client.get(f"/vendor/gateways/{gateway.pk}/").content.decode()
    assert "unreachable: connection refused" in detail and "version 2: not applied" in detail
    assert "Bare-Page: Its configuration has no edge section" in detail
    # the gateway's timestamp in the site's words, not ISO text
    assert ">2026-03-04 05:06:07</time>" in detail and "07.123456+00:00<" not in detail


def test_operators_see_their_sites_gateways_and_others_none(fleet: Fleet, reporting):
    gateway, _, _ = reporting
    operator = portal_client(fleet.operator)
    assert "Hall-A" in operator.get("/ops/gateways/").content.decode()
    assert operator.get(f"/ops/gateways/{gateway.pk}/").status_code == 200
    assert operator.get("/vendor/gateways/").status_code == 403  # not their portal
    rival = portal_client(fleet.rival)
    assert "Hall-A" not in rival.get("/vendor/gateways/").content.decode()
    assert rival.get(f"/vendor/gateways/{gateway.pk}/").status_code == 404
    assert portal_client(fleet.designer).get("/ops/gateways/").status_code == 403


def test_commands_are_sent_and_shown_on_the_node_page(fleet: Fleet, reporting):
    _, mill, _ = reporting
    client = portal_client(fleet.vendor)
    page = client.get(f"/vendor/nodes/{mill.pk}/").content.decode()
    assert "Remote commands" in page and 'value="stop"' in page and "Feed (0–150)" in page
    response = client.post(
        f"/vendor/nodes/{mill.pk}/commands/",
        {"kind": "setpoint", "setpoint": "feed", "value": "999"},
    )
    assert response.status_code == 302 and not NodeCommand.objects.exists()
    assert "feed takes 0 to 150" in client.get(f"/vendor/nodes/{mill.pk}/").content.decode()
    client.post(f"/vendor/nodes/{mill.pk}/commands/", {"kind": "stop"})
    page = client.get(f"/vendor/nodes/{mill.pk}/").content.decode()
    assert "Waiting for the gateway" in page and "vendor@f.test" in page
    rival = portal_client(fleet.rival)
    rival.post(f"/vendor/nodes/{mill.pk}/commands/", {"kind": "stop"})
    assert NodeCommand.objects.count() == 1


def test_setpoints_read_as_words_on_the_form_and_in_the_history(fleet: Fleet, reporting):
    _, mill, _ = reporting
    client = portal_client(fleet.vendor)
    client.post(
        f"/vendor/nodes/{mill.pk}/commands/",
        {"kind": "setpoint", "setpoint": "feed", "value": "42.5"},
    )
    page = client.get(f"/vendor/nodes/{mill.pk}/").content.decode()
    assert '<option value="feed">Feed (0–150)</option>' in page
    assert "<td>Feed = 42.5</td>" in page
    # a setpoint with a unit names it once, after its range
    html = render_to_string(
        "vendors/_node_commands.html",
        {
            "node": FabricationNode.objects.get(pk=mill.pk),
            "can_command": True,
            "allowed": {"commands": [], "setpoints": {"load_kw": {"low": 0, "high": 7.5}}},
        },
    )
    assert '<option value="load_kw">Load (0–7.5 kW)</option>' in html


def test_beat_expires_commands_that_timed_out_and_the_node_page_says_why(fleet: Fleet, reporting):
    # given a command the gateway never fetched, one it fetched but never acknowledged, and one
    # still within its time
    gateway, mill, _ = reporting
    mill.refresh_from_db()  # now served by the gateway
    issue = {"node": mill, "by": fleet.operator, "kind": "stop"}
    fetched = node_command_issue(**issue)
    assert gateway_commands_take(gateway=gateway) == [fetched]
    never_fetched = node_command_issue(**issue)
    in_time = node_command_issue(**issue)
    NodeCommand.objects.filter(pk__in=[never_fetched.pk, fetched.pk]).update(
        expires_at=timezone.now() - timedelta(seconds=1)
    )

    # when beat's periodic task runs (nobody opened a page, the gateway never polled again)
    entry = next(
        e for e in BEAT_SCHEDULE.values() if e["task"].endswith("node_commands_expire_task")
    )
    assert entry["schedule"] <= 60
    assert node_commands_expire_task.delay().get() == 2

    # then both timed-out commands are expired with the reason, audited; the other waits on
    outcomes = dict(NodeCommand.objects.values_list("pk", "outcome"))
    statuses = dict(NodeCommand.objects.values_list("pk", "status"))
    assert statuses == {never_fetched.pk: "expired", fetched.pk: "expired", in_time.pk: "pending"}
    assert "did not fetch it in time" in outcomes[never_fetched.pk]
    assert "did not acknowledge it in time" in outcomes[fetched.pk]
    expired_log = AuditLog.objects.filter(object_type="vendors.nodecommand", action="object.update")
    assert {
        e.object_id for e in expired_log if e.changes.get("status", [0, 0])[1] == "expired"
    } >= {
        str(never_fetched.pk),
        str(fetched.pk),
    }
    page = portal_client(fleet.vendor).get(f"/vendor/nodes/{mill.pk}/").content.decode()
    assert page.count("Timed out") == 2 and "did not acknowledge it in time" in page


def test_the_operator_commands_the_machine_from_its_live_page(fleet: Fleet, reporting):
    # given the site's operator on the machine's Live page (not the vendor portal)
    _, mill, _ = reporting
    operator = portal_client(fleet.operator)
    live = f"/nodes/{mill.pk}/live/"
    page = operator.get(live).content.decode()
    assert "Remote commands" in page and 'value="stop"' in page and "Feed (0–150)" in page
    assert f'name="next" value="{live}"' in page

    # when they send a stop, it is sent and they come back to the Live page, which shows it
    response = operator.post(f"/vendor/nodes/{mill.pk}/commands/", {"kind": "stop", "next": live})
    assert response.status_code == 302 and response["Location"] == live
    command = NodeCommand.objects.get()
    assert command.kind == "stop" and command.issued_by == fleet.operator
    page = operator.get(live).content.decode()
    assert "Waiting for the gateway" in page and "op@f.test" in page

    # a foreign `next` is not followed
    response = operator.post(
        f"/vendor/nodes/{mill.pk}/commands/", {"kind": "resume", "next": "https://evil.example/"}
    )
    assert response["Location"] == f"/vendor/nodes/{mill.pk}/"

    # a designer cannot even watch it; their post and the rival vendor's are not taken
    designer = portal_client(fleet.designer)
    assert designer.get(live).status_code == 404
    before = NodeCommand.objects.count()
    designer.post(f"/vendor/nodes/{mill.pk}/commands/", {"kind": "stop", "next": live})
    portal_client(fleet.rival).post(f"/vendor/nodes/{mill.pk}/commands/", {"kind": "stop"})
    assert NodeCommand.objects.count() == before


def test_the_gateway_pages_follow_the_gateways_reports(fleet: Fleet, reporting):
    gateway, _, _ = reporting
    client = portal_client(fleet.vendor)
    for url, box in (
        ("/vendor/gateways/", "gateways-live"),
        (f"/vendor/gateways/{gateway.pk}/", "gateway-live"),
    ):
        page = client.get(url).content.decode()
        assert f'id="{box}"' in page and f'hx-get="{url}"' in page
        assert f'hx-select="#{box}"' in page and 'hx-trigger="every 5s"' in page
        assert "htmx.min.js" in page
    # the refresh brings the new report
    gateway_status_report(gateway=gateway, applied_version=1, health={"nodes": {}})
    page = client.get(f"/vendor/gateways/{gateway.pk}/").content.decode()
    assert "Last problem" not in page and "Not reported by the gateway yet" in page
