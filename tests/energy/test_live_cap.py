"""Live (the telemetry pages) flags a site drawing over its power cap through the hook telemetry
defines and energy fills (apps.telemetry.site_power, registered from EnergyConfig.ready): on
the machine list, on a machine's live page and in the JSON the pages fetch again as readings
arrive, only for people who may see the site."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from apps.energy.models import SitePowerCap
from apps.energy.receivers import live_site_power
from apps.telemetry import site_power
from apps.users.roles import Role
from tests.conftest import portal_client
from tests.energy.factories import SitePowerCapFactory
from tests.energy.test_metered import _readings
from tests.fixtures.fleet import Fleet
from tests.users.factories import UserFactory

pytestmark = pytest.mark.django_db


def _recent(kw: float):
    now = timezone.now().replace(microsecond=0)
    return _readings(now - timedelta(minutes=5), 4, kw)


def test_energy_registers_the_live_cap_hook():
    assert live_site_power in site_power._providers


def test_live_flags_a_site_over_its_cap_for_its_operator(fleet: Fleet, printer, ingest):
    # given: Site A's cap is 0.25 kW and its printer draws 0.3 kW now
    SitePowerCapFactory.create(site=fleet.site, max_kw=0.25)
    ingest(printer, _recent(0.3))
    client = portal_client(fleet.operator)
    # when / then: the machine list names the site and marks the printer's row
    listing = client.get("/nodes/")
    html = listing.content.decode()
    assert listing.status_code == 200
    assert "<strong>Over the power cap.</strong> Site A draws 0.3 kW, over its power cap of " in (
        html
    )
    assert "0.25 kW." in html
    row = html[html.index(f'<tr data-node="{printer.pk}">') :]
    flag = row[: row.index("</td>")]
    assert "site over its power cap" in flag and "hidden" not in flag
    # the machine's own live page too
    live = client.get(f"/nodes/{printer.pk}/live/").content.decode()
    assert 'data-over-cap="true"' in live and "over its power cap of 0.25 kW" in live
    assert "js/site_power.js" in live
    # and the JSON the pages fetch as readings arrive
    body = client.get("/nodes/site-power/", {"nodes": str(printer.pk)}).json()
    assert [(s["name"], s["over_cap"], s["now_kw"], s["cap_kw"]) for s in body["sites"]] == [
        ("Site A", True, 0.3, 0.25)
    ]
    assert body["sites"][0]["node_ids"] == [printer.pk]


def test_a_site_under_its_cap_is_shown_without_the_flag(fleet: Fleet, printer, ingest):
    SitePowerCapFactory.create(site=fleet.site, max_kw=12)
    ingest(printer, _recent(0.3))
    client = portal_client(fleet.vendor)  # the printer's vendor sees the site it stands at
    html = client.get("/nodes/").content.decode()
    assert "Site A draws 0.3 kW of its power cap of 12 kW." in html
    assert "Over the power cap." not in html
    row = html[html.index(f'<tr data-node="{printer.pk}">') :]
    assert "data-cap-flag hidden" in row[: row.index("</td>")]
    body = client.get("/nodes/site-power/", {"nodes": str(printer.pk)}).json()
    assert [s["over_cap"] for s in body["sites"]] == [False]
    # the draw follows the readings: over the cap as soon as they say so
    SitePowerCap.objects.filter(site=fleet.site).update(max_kw=0.2)
    body = client.get("/nodes/site-power/", {"nodes": str(printer.pk)}).json()
    assert [s["over_cap"] for s in body["sites"]] == [True]


def test_no_flag_for_someone_who_may_watch_the_node_but_not_see_the_site(
    fleet: Fleet, printer, ingest
):
    # a viewer at Site A may watch the machines standing there, but the site's energy is not
    # theirs to see
    viewer = UserFactory.create(role=Role.VIEWER, email="watcher@f.test", organization=fleet.site)
    SitePowerCapFactory.create(site=fleet.site, max_kw=0.25)
    ingest(printer, _recent(0.3))
    client = portal_client(viewer)
    listing = client.get("/nodes/")
    html = listing.content.decode()
    assert listing.status_code == 200 and f'<tr data-node="{printer.pk}">' in html
    assert "Site A draws" not in html and "Over the power cap." not in html
    assert "Site A draws" not in client.get(f"/nodes/{printer.pk}/live/").content.decode()
    assert client.get("/nodes/site-power/", {"nodes": str(printer.pk)}).json() == {"sites": []}


def test_the_flags_json_refuses_bad_input_and_nodes_not_watchable(fleet: Fleet, printer, rival):
    client = portal_client(fleet.operator)
    bad = client.get("/nodes/site-power/", {"nodes": "1,x"})
    assert bad.status_code == 400
    assert bad.json()["error"]["message"] == "nodes=<id,id,...> names 1 to 200 node ids."
    assert client.get("/nodes/site-power/").status_code == 400
    too_many = ",".join(str(n) for n in range(1, 202))
    assert client.get("/nodes/site-power/", {"nodes": too_many}).status_code == 400
    # the rival's mill is not at the operator's site: 404, whether or not it exists
    hidden = client.get("/nodes/site-power/", {"nodes": f"{printer.pk},{rival.pk}"})
    assert hidden.status_code == 404 and hidden.json()["error"]["code"] == "not_found"


def test_the_flags_json_needs_a_signed_in_user(client, printer):
    response = client.get("/nodes/site-power/", {"nodes": str(printer.pk)})
    assert response.status_code == 302 and "/login" in response.url
