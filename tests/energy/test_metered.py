"""Energy metered from the machines' power telemetry (idle and running, as the Live page shows
it), the draw now against a site's power cap, and the pages' charts agreeing with both."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
from django.template.defaultfilters import floatformat
from django.utils import timezone

from apps.energy.selectors import metered_energy, site_draw
from apps.telemetry.selectors import power_kwh_by_day
from tests.conftest import portal_client
from tests.energy.factories import SitePowerCapFactory
from tests.fixtures.fleet import Fleet

pytestmark = pytest.mark.django_db


def _readings(start: datetime, minutes: int, kw: float, every_s: int = 30):
    return [(start + timedelta(seconds=s), kw) for s in range(0, minutes * 60 + 1, every_s)]


def _chart(page, chart_id: str) -> dict:
    text = page.content.decode()
    marker = f'<script id="{chart_id}-data" type="application/json">'
    start = text.index(marker) + len(marker)
    return json.loads(text[start : text.index("</script>", start)])


def test_metered_energy_is_the_integral_of_the_power_readings(printer, ingest):
    # given: an hour at 0.3 kW, a 20-minute silence, then 30 minutes at 0.1 kW
    t0 = timezone.now().replace(microsecond=0) - timedelta(hours=2)
    ingest(printer, _readings(t0, 60, 0.3))
    ingest(printer, _readings(t0 + timedelta(minutes=80), 30, 0.1))
    # when
    metered = metered_energy(
        node_ids=[printer.pk], start=t0 - timedelta(days=1), end=timezone.now()
    )
    # then: 0.3 kWh + 0.05 kWh; the silence (longer than 5 minutes) counts nothing
    assert metered.kwh == pytest.approx(0.35, rel=1e-6)
    assert metered.by_node[printer.pk] == pytest.approx(0.35, rel=1e-6)
    assert sum(metered.by_day.values()) == pytest.approx(0.35, rel=1e-6)


def test_metered_energy_books_each_day_and_reads_closed_days_from_the_cache(printer, ingest):
    today = timezone.now().replace(hour=0, minute=0, second=0, microsecond=0)
    two_days_ago = today - timedelta(days=2)
    ingest(printer, _readings(two_days_ago + timedelta(hours=10), 120, 0.2))  # 0.4 kWh
    ingest(printer, _readings(today - timedelta(hours=3), 60, 0.3))  # 0.3 kWh, yesterday
    start = today - timedelta(days=7) + timedelta(hours=5)
    first = metered_energy(node_ids=[printer.pk], start=start, end=timezone.now())
    assert first.by_day[two_days_ago.date()] == pytest.approx(0.4, rel=1e-6)
    assert first.by_day[(today - timedelta(days=1)).date()] == pytest.approx(0.3, rel=1e-6)
    # a reading arriving now for a closed day is not read again until the cached day expires;
    # the figures the page showed stay the same
    ingest(printer, _readings(two_days_ago + timedelta(hours=14), 60, 0.2))
    second = metered_energy(node_ids=[printer.pk], start=start, end=timezone.now())
    assert second.by_day == first.by_day
    # while the raw query sees it
    fresh = power_kwh_by_day(node_ids=[printer.pk], start=start, end=timezone.now(), max_gap_s=300)
    assert fresh[printer.pk][two_days_ago.date()] == pytest.approx(0.6, rel=1e-6)


def test_power_kwh_by_day_is_empty_for_nodes_without_power_readings(printer):
    end = datetime.now(tz=UTC)
    assert (
        power_kwh_by_day(
            node_ids=[printer.pk], start=end - timedelta(days=1), end=end, max_gap_s=300
        )
        == {}
    )
    assert (
        power_kwh_by_day(node_ids=[], start=end - timedelta(days=1), end=end, max_gap_s=300) == {}
    )


def test_dashboard_agrees_with_the_live_readings_and_flags_a_site_over_its_cap(
    fleet: Fleet, printer, ingest
):
    # given: the printer at Site A idles at 0.3 kW for the last hour; the site's cap is 0.25 kW
    SitePowerCapFactory.create(site=fleet.site, max_kw=0.25)
    now = timezone.now().replace(microsecond=0)
    ingest(printer, _readings(now - timedelta(minutes=60), 59, 0.3))
    # when
    page = portal_client(fleet.vendor).get("/energy/?days=7")
    # then: the metered kWh is what the readings integrate to, though no part ran
    assert page.status_code == 200
    assert page.context["summary"].parts == 0
    assert page.context["metered"].kwh == pytest.approx(0.295, rel=1e-6)
    row = next(r for r in page.context["node_rows"] if r["node"] == printer)
    assert row["now_kw"] == pytest.approx(0.3)
    assert row["metered_kwh"] == pytest.approx(0.295, rel=1e-6)
    # the daily chart's metered line sums to the same figure, on an axis in kWh
    chart = _chart(page, "all-energy")
    assert chart["axes"]["y"] == "Energy (kWh)"
    line = next(s for s in chart["series"] if s["label"] == "Metered from telemetry (kWh)")
    assert sum(line["data"]) == pytest.approx(0.295, abs=2e-3)
    # cost and source mix say why they are empty: they are recorded per part
    text = page.content.decode()
    assert 'data-chart-empty="all-cost"' in text and 'data-chart-empty="all-mix"' in text
    assert "No part finished in this period" in text
    # and the site is flagged: 0.3 kW against a 0.25 kW cap
    assert [d.site for d in page.context["over_cap"]] == [fleet.site]
    assert f'data-cap-flag="{fleet.site.pk}"' in text
    assert "Site A is over its power cap" in text


def test_a_site_within_its_cap_or_silent_is_not_flagged(fleet: Fleet, printer, ingest):
    SitePowerCapFactory.create(site=fleet.site, max_kw=0.5)
    now = timezone.now().replace(microsecond=0)
    ingest(printer, [(now - timedelta(seconds=5), 0.3)])
    draw = site_draw(sites=[fleet.site])[fleet.site.pk]
    assert (draw.now_kw, draw.cap_kw, draw.reporting, draw.nodes) == (0.3, 0.5, 1, 1)
    assert not draw.over_cap and draw.cap_share == pytest.approx(0.6)
    # a reading older than the freshness limit is no draw now (the node is silent)
    stale = site_draw(sites=[fleet.site], now=now + timedelta(minutes=10))[fleet.site.pk]
    assert (stale.now_kw, stale.reporting) == (0.0, 0)
    page = portal_client(fleet.vendor).get("/energy/")
    assert "over its power cap" not in page.content.decode()


def test_site_page_shows_the_draw_now_against_the_cap(fleet: Fleet, printer, ingest):
    SitePowerCapFactory.create(site=fleet.site, max_kw=0.25)
    ingest(printer, [(timezone.now() - timedelta(seconds=3), 0.3)])
    page = portal_client(fleet.operator).get(f"/energy/sites/{fleet.site.pk}/")
    assert page.status_code == 200
    assert page.context["draw"].over_cap
    text = page.content.decode()
    assert "Over the power cap" in text and "120% of the cap" in text
    # another vendor neither sees the site's page nor its draw
    assert portal_client(fleet.rival).get(f"/energy/sites/{fleet.site.pk}/").status_code == 404


def test_energy_pages_say_why_they_have_no_chart(fleet: Fleet, printer):
    page = portal_client(fleet.vendor).get(f"/energy/nodes/{printer.pk}/")
    text = page.content.decode()
    assert page.context["charts"] == []
    assert 'data-chart-empty="energy"' in text
    assert "sent no power readings and no part finished" in text


def test_the_sustainability_report_shows_what_the_sites_machines_drew(
    fleet: Fleet, printer, ingest
):
    now = timezone.now().replace(microsecond=0)
    ingest(printer, _readings(now - timedelta(minutes=60), 59, 0.3))
    page = portal_client(fleet.operator).get(
        "/reports/sustainability/", {"organization": fleet.site.pk, "days": 7}
    )
    assert page.status_code == 200
    assert page.context["machines"] == 1
    assert page.context["metered"].kwh == pytest.approx(0.295, rel=1e-6)
    text = page.content.decode()
    assert "kWh metered on its 1 machine (idle and running)" in text
    drew = floatformat(page.context["metered"].kwh, 2)
    assert f"Its machines drew {drew} kWh all the same" in text


def test_the_kpi_page_and_the_energy_dashboard_show_the_same_metered_energy(
    fleet: Fleet, printer, rival, ingest
):
    # given: the printer (Site A) idled at 0.3 kW for an hour and the rival's mill drew 2 kW
    # for half an hour; no part ran, so no part recorded any energy
    now = timezone.now().replace(microsecond=0)
    ingest(printer, _readings(now - timedelta(hours=3), 60, 0.3))
    ingest(rival, _readings(now - timedelta(hours=2), 30, 2.0))
    for user, expected in ((fleet.admin, 1.3), (fleet.operator, 0.3)):
        client = portal_client(user)
        # when
        kpi_page = client.get("/ops/kpis/", {"days": "7"})
        dashboard = client.get("/energy/", {"days": "7"})
        # then: the same figure, for the same nodes and period
        kpis = kpi_page.context["kpis"]
        metered = dashboard.context["metered"]
        assert kpis.metered_kwh == pytest.approx(metered.kwh) == pytest.approx(expected, rel=1e-6)
        assert kpis.kwh == 0  # the parts' share
        html = kpi_page.content.decode()
        assert f"<strong>{floatformat(expected, 2)} kWh</strong><span>drawn by the nodes" in html
        assert 'href="/energy/?days=7">Energy</a> for the same nodes and period' in html
        chart = _chart(kpi_page, "kpi-use")
        assert sum(chart["series"][1]["data"]) == pytest.approx(expected, abs=0.002)
        assert "no_data" not in chart
    # the API gives both figures
    body = portal_client(fleet.admin).get("/api/v1/kpis/", {"days": "7"}).json()
    assert body["metered_kwh"] == pytest.approx(1.3, rel=1e-4) and body["kwh"] == 0
    assert sum(d["metered_kwh"] for d in body["days"]) == pytest.approx(1.3, rel=1e-3)
    # an engineer sees the KPIs but not the energy pages: no link to them
    engineer = portal_client(fleet.engineer).get("/ops/kpis/", {"days": "7"})
    assert engineer.status_code == 200 and 'href="/energy/' not in engineer.content.decode()
