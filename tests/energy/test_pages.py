"""The energy pages of the vendor and ops portals, and the job page's energy panel."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.template.loader import render_to_string
from django.utils import timezone

from apps.energy.models import Consumption, EnergySource, HourlyRate, SitePowerCap
from apps.jobs.providers import job_panels
from apps.jobs.services import work_complete
from tests.conftest import portal_client
from tests.energy.conftest import job_of, submit_and_start
from tests.fixtures.fleet import Fleet

pytestmark = pytest.mark.django_db


def test_dashboard_empty_state_for_a_vendor_without_nodes(fleet: Fleet):
    page = portal_client(fleet.vendor).get("/energy/")
    assert page.status_code == 200
    text = page.content.decode()
    assert "You manage no nodes yet" in text
    assert "No energy in the last 30 days" in text
    assert "Forge" in text  # its own company is a site it manages
    assert "data-energy-chart" not in text


def test_dashboard_charts_the_consumption_of_the_vendors_nodes(
    fleet: Fleet, printer, rival, django_capture_on_commit_callbacks
):
    part = submit_and_start(fleet, ran_for=timedelta(minutes=30))
    with django_capture_on_commit_callbacks(execute=True):
        work_complete(node_id=printer.pk, part_id=part.pk, quality_score=0.9)
    row = Consumption.objects.get(part=part)
    page = portal_client(fleet.vendor).get("/energy/?days=7")
    assert page.status_code == 200
    text = page.content.decode()
    assert f'href="/energy/nodes/{printer.pk}/"' in text
    assert "Rival-Mill" not in text
    assert 'data-energy-chart="all-energy-data"' in text and "all-mix-data" in text
    assert page.context["summary"].parts == 1
    assert page.context["summary"].kwh == pytest.approx(row.kwh)
    [node_row] = page.context["node_rows"]
    assert node_row["node"] == printer and node_row["parts"] == 1
    assert node_row["kwh"] == pytest.approx(row.kwh)
    assert node_row["co2e"] == pytest.approx(row.co2e_kg)


def test_designers_have_no_energy_dashboard(fleet: Fleet):
    assert portal_client(fleet.designer).get("/energy/").status_code == 403


def test_node_page_shows_outlook_opportunities_and_sources(fleet: Fleet, printer, rival):
    client = portal_client(fleet.vendor)
    page = client.get(f"/energy/nodes/{printer.pk}/")
    assert page.status_code == 200
    text = page.content.decode()
    for heading in ("Outlook: next 48 hours", "Opportunities", "Oversizing", "Peak shifting"):
        assert heading in text
    assert "No parts have finished on this node yet." in text
    # the figures behind each opportunity in words with units, not their codes
    assert "<dt>Rated power (kW)</dt>" in text and "<dt>Peak hours (UTC)</dt>" in text
    assert "<dt>rated_kw</dt>" not in text and "<dt>peak_hours_utc</dt>" not in text
    assert client.get(f"/energy/nodes/{rival.pk}/").status_code == 404
    # add a battery to the node through the form
    added = client.post(
        f"/energy/nodes/{printer.pk}/sources/",
        {
            "name": "UPS",
            "kind": "battery",
            "capacity_kw": 1,
            "efficiency": 0.95,
            "status": "online",
            "capacity_kwh": 2,
            "soc_pct": 90,
            "reserve_pct": 30,
        },
    )
    assert added.status_code == 302
    source = EnergySource.objects.get(node=printer)
    assert (source.kind, source.capacity_kwh, source.reserve_pct) == ("battery", 2.0, 30.0)
    bad = client.post(
        f"/energy/nodes/{printer.pk}/sources/",
        {
            "kind": "solar",
            "capacity_kw": -1,
            "efficiency": 2,
            "status": "online",
            "reserve_pct": 20,
        },
    )
    assert bad.status_code == 400 and "field-error" in bad.content.decode()
    # edit it, then remove it
    edited = client.post(
        f"/energy/sources/{source.pk}/",
        {
            "kind": "battery",
            "capacity_kw": 1,
            "efficiency": 0.95,
            "status": "offline",
            "capacity_kwh": 2,
            "soc_pct": 50,
            "reserve_pct": 30,
        },
    )
    assert edited.status_code == 302
    source.refresh_from_db()
    assert source.status == "offline" and source.soc_pct == 50
    assert (
        portal_client(fleet.rival).post(f"/energy/sources/{source.pk}/delete/").status_code == 404
    )
    assert client.post(f"/energy/sources/{source.pk}/delete/").status_code == 302
    assert not EnergySource.objects.filter(pk=source.pk).exists()


def test_the_operator_sets_the_sites_cap_and_prices(fleet: Fleet, printer):
    site = fleet.site
    client = portal_client(fleet.operator)
    page = client.get(f"/energy/sites/{site.pk}/")
    assert page.status_code == 200
    assert "No power cap." in page.content.decode()
    assert "No prices stored" in page.content.decode()

    assert (
        client.post(
            f"/energy/sites/{site.pk}/cap/", {"max_kw": "2.5", "renewable_price_per_kwh": "0.03"}
        ).status_code
        == 302
    )
    cap = SitePowerCap.objects.get(site=site)
    assert cap.max_kw == 2.5 and cap.renewable_price_per_kwh == Decimal("0.03")

    entered = client.post(
        f"/energy/sites/{site.pk}/rates/",
        {"hour": "2026-03-02T10:00", "price": "0.31", "renewable_kw": "", "source": "entered"},
    )
    assert entered.status_code == 302
    rate = HourlyRate.objects.get(site=site)
    assert rate.price_per_kwh == Decimal("0.31") and rate.hour.hour == 10
    off_hour = client.post(
        f"/energy/sites/{site.pk}/rates/",
        {"hour": "2026-03-02T10:30", "price": "0.31", "source": "entered"},
    )
    assert off_hour.status_code == 400 and "Must be on the hour." in off_hour.content.decode()

    csv = b"hour,price\n2026-03-02T11:00:00Z,0.2\n2026-03-02T12:00:00Z,free\n"
    imported = client.post(
        f"/energy/sites/{site.pk}/rates/import/",
        {"file": SimpleUploadedFile("r.csv", csv, content_type="text/csv")},
    )
    assert imported.status_code == 200
    assert "Line 3: price" in imported.content.decode()
    assert HourlyRate.objects.filter(site=site).count() == 2


def test_the_site_page_lists_the_prices_of_the_last_day_and_the_outlook(fleet: Fleet, printer):
    # given prices stored for this hour, two days ago and three days ahead
    site = fleet.site
    client = portal_client(fleet.operator)
    hour = timezone.now().replace(minute=0, second=0, microsecond=0)
    for offset_h in (0, -48, 72):
        at = hour + timedelta(hours=offset_h)
        stored = client.post(
            f"/energy/sites/{site.pk}/rates/",
            {"hour": f"{at:%Y-%m-%dT%H:00}", "price": "0.25", "source": "entered"},
        )
        assert stored.status_code == 302

    # then the page lists the one within [24 h ago, the outlook's 48 h ahead)
    for user in ("operator", "vendor"):  # the vendor sees the site its node stands at
        page = portal_client(fleet.user(user)).get(f"/energy/sites/{site.pk}/")
        assert [r.hour for r in page.context["rates"]] == [hour]


def test_a_vendor_sees_the_site_its_node_stands_at_but_does_not_manage_it(fleet: Fleet, printer):
    site = fleet.site
    client = portal_client(fleet.vendor)
    page = client.get(f"/energy/sites/{site.pk}/")
    assert page.status_code == 200
    assert "its operators manage them" in page.content.decode()
    assert client.post(f"/energy/sites/{site.pk}/cap/", {"max_kw": "1"}).status_code == 403
    assert not SitePowerCap.objects.filter(site=site).exists()
    assert portal_client(fleet.rival).get(f"/energy/sites/{site.pk}/").status_code == 404


def test_the_job_panel_says_estimate_then_measured(
    fleet: Fleet, printer, django_capture_on_commit_callbacks
):
    part = submit_and_start(fleet, ran_for=timedelta(minutes=30))
    job = job_of(part)
    [(template, context)] = [p for p in job_panels(job, fleet.designer) if "energy" in p[0]]
    estimate = job.estimates["energy_kwh"]
    html = render_to_string(template, context)
    assert f"This job: {estimate:.2f} kWh, {estimate * 0.475:.2f} kg CO2e" in html
    assert "estimate" in html

    with django_capture_on_commit_callbacks(execute=True):
        work_complete(node_id=printer.pk, part_id=part.pk, quality_score=0.9)
    row = Consumption.objects.get(part=part)
    [(template, context)] = [p for p in job_panels(job, fleet.designer) if "energy" in p[0]]
    html = render_to_string(template, context)
    assert f"This job: {row.kwh:.2f} kWh, {row.co2e_kg:.2f} kg CO2e" in html
    assert "measured for 1 of 1 part" in html


def test_the_job_panel_names_the_demo_time_scale_and_the_machine_time_energy(
    fleet: Fleet, printer, settings, django_capture_on_commit_callbacks
):
    # given: a part that ran in a demo compressed 360 times, measured by estimate (no telemetry)
    settings.DEMO_TIME_SCALE = 360.0
    part = submit_and_start(fleet, ran_for=timedelta(minutes=30))
    job = job_of(part)
    with django_capture_on_commit_callbacks(execute=True):
        work_complete(node_id=printer.pk, part_id=part.pk, quality_score=0.9)
    row = Consumption.objects.get(part=part)
    [(template, context)] = [p for p in job_panels(job, fleet.designer) if "energy" in p[0]]
    html = render_to_string(template, context)
    assert "Demo time scale ×360" in html
    # an estimate is in machine time already; telemetry measured over the run is scaled up
    assert row.method != Consumption.Method.TELEMETRY
    assert f"in machine time, {row.kwh:.2f} kWh" in html
    Consumption.objects.filter(pk=row.pk).update(method=Consumption.Method.TELEMETRY)
    [(template, context)] = [p for p in job_panels(job, fleet.designer) if "energy" in p[0]]
    assert f"in machine time, {row.kwh * 360:.2f} kWh" in render_to_string(template, context)
    # in real time (production), nothing is said
    settings.DEMO_TIME_SCALE = 1.0
    [(template, context)] = [p for p in job_panels(job, fleet.designer) if "energy" in p[0]]
    assert "Demo time scale" not in render_to_string(template, context)
