from __future__ import annotations

import pytest
from django.utils import timezone

from apps.telemetry.services import telemetry_ingest
from apps.vendors.models import FabricationNode
from apps.vendors.services import node_config_save, node_transition
from tests.conftest import portal_client
from tests.fixtures.fleet import Fleet, approved_node

pytestmark = pytest.mark.django_db


def test_live_page_for_vendor_operator_admin_only(fleet: Fleet):
    node = approved_node(fleet)
    node_config_save(node=node, by=fleet.vendor, config={"a": 1})
    node_transition(node=node, to=FabricationNode.Status.IDLE, by=fleet.vendor, reason="up")
    empty = portal_client(fleet.vendor).get(f"/nodes/{node.pk}/live/")
    assert empty.status_code == 200 and b"has not sent telemetry yet" in empty.content
    telemetry_ingest(
        points=[{"node": node.pk, "time": timezone.now().isoformat(), "temperature_c": 47.25}],
        node_id=node.pk,
    )
    for who in ("vendor", "operator", "admin"):
        page = portal_client(fleet.user(who)).get(f"/nodes/{node.pk}/live/")
        assert page.status_code == 200 and b"47.25" in page.content, who
    for who in ("rival", "designer", "viewer"):
        assert portal_client(fleet.user(who)).get(f"/nodes/{node.pk}/live/").status_code == 404, who


def test_watch_list_shows_only_watchable_nodes(fleet: Fleet):
    node = approved_node(fleet, name="Watched-1")
    assert b"Watched-1" in portal_client(fleet.operator).get("/nodes/").content
    page = portal_client(fleet.rival).get("/nodes/")
    assert (
        page.status_code == 200
        and b"Watched-1" not in page.content
        and b"No machines" in page.content
    )
    assert node.pk


@pytest.mark.parametrize(("scale", "shown"), [(360.0, True), (1.0, False)])
def test_live_page_names_the_demo_time_scale(fleet: Fleet, settings, scale, shown):
    settings.DEMO_TIME_SCALE = scale
    node = approved_node(fleet)
    page = portal_client(fleet.vendor).get(f"/nodes/{node.pk}/live/")
    assert page.status_code == 200
    assert (b"Demo time scale \xc3\x97360" in page.content) is shown
    assert (b"an estimated hour of work in 10 s" in page.content) is shown


def test_live_chart_says_why_it_is_empty_until_a_reading_arrives(fleet: Fleet):
    node = approved_node(fleet)
    node_config_save(node=node, by=fleet.vendor, config={"a": 1})
    node_transition(node=node, to=FabricationNode.Status.IDLE, by=fleet.vendor, reason="up")
    client = portal_client(fleet.vendor)
    html = client.get(f"/nodes/{node.pk}/live/").content.decode()
    assert '<p id="chart-empty" class="empty" data-chart-empty="chart">' in html
    assert "No readings from Mill-01 in the last hour" in html
    telemetry_ingest(
        points=[{"node": node.pk, "time": timezone.now().isoformat(), "power_kw": 1.5}],
        node_id=node.pk,
    )
    html = client.get(f"/nodes/{node.pk}/live/").content.decode()
    assert 'data-chart-empty="chart" hidden>' in html  # the script shows it if the hour is empty
