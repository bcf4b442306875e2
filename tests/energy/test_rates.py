"""Hourly prices: CSV import (command and API upload) and batches store the good rows and
report the bad ones by line / index; a site's manager only writes its own site's."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from io import StringIO

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import CommandError, call_command

from apps.energy.models import HourlyRate
from apps.energy.services import rates_import_csv
from tests.fixtures.fleet import Fleet

pytestmark = pytest.mark.django_db


def csv_text(site) -> str:
    return "\n".join(
        [
            "site,hour,price,renewable_kw",
            f"{site.pk},2026-03-02T10:00:00Z,0.21,35",  # line 2: good
            f"{site.slug},2026-03-02T11:00:00+00:00,0.19,",  # line 3: good, by slug
            f"{site.pk},2026-03-02T12:30:00Z,0.19,",  # line 4: not on the hour
            f"{site.pk},2026-03-02T13:00:00,0.19,",  # line 5: no time zone
            "no-such-site,2026-03-02T14:00:00Z,0.19,",  # line 6: unknown site
            f"{site.pk},2026-03-02T15:00:00Z,-1,",  # line 7: negative price
            f"{site.pk},2026-03-02T16:00:00Z,cheap,-3",  # line 8: two bad fields
            "",
            f"{site.pk},2026-03-02T17:00:00Z,0.25,0",  # line 10: good (a blank line skipped)
        ]
    )


def test_csv_import_stores_good_rows_and_reports_bad_ones_by_line(fleet: Fleet):
    site = fleet.site
    report = rates_import_csv(by=None, text=csv_text(site))
    assert report.stored == 3
    assert [bad["line"] for bad in report.errors] == [4, 5, 6, 7, 8]
    assert "hour" in report.errors[0]["errors"] and "hour" in report.errors[1]["errors"]
    assert "site" in report.errors[2]["errors"]
    assert "price" in report.errors[3]["errors"]
    assert set(report.errors[4]["errors"]) == {"price", "renewable_kw"}
    stored = HourlyRate.objects.filter(site=site).order_by("hour")
    assert [(r.hour.hour, r.price_per_kwh, r.renewable_kw) for r in stored] == [
        (10, Decimal("0.21000"), 35.0),
        (11, Decimal("0.19000"), None),
        (17, Decimal("0.25000"), 0.0),
    ]
    assert {r.source for r in stored} == {"imported"}


def test_importing_the_same_hour_again_replaces_it(fleet: Fleet):
    site = fleet.site
    rates_import_csv(by=None, text=f"site,hour,price\n{site.pk},2026-03-02T10:00:00Z,0.21\n")
    rates_import_csv(by=None, text=f"site,hour,price\n{site.pk},2026-03-02T10:00:00Z,0.35\n")
    assert HourlyRate.objects.get(site=site).price_per_kwh == Decimal("0.35")


def test_the_command_reports_bad_lines(fleet: Fleet, tmp_path):
    path = tmp_path / "rates.csv"
    path.write_text(csv_text(fleet.site), encoding="utf-8")
    out = StringIO()
    call_command("import_energy_rates", str(path), stdout=out)
    text = out.getvalue()
    assert "Stored 3 hourly rates" in text
    assert "line 4: hour: Must be on the hour." in text
    assert "line 6: site:" in text
    with pytest.raises(CommandError, match="Missing column"):
        bad = tmp_path / "bad.csv"
        bad.write_text("when,cost\n", encoding="utf-8")
        call_command("import_energy_rates", str(bad), stdout=StringIO())


def test_csv_upload_through_the_api(fleet: Fleet, as_user):
    site = fleet.site
    upload = SimpleUploadedFile("rates.csv", csv_text(site).encode(), content_type="text/csv")
    response = as_user(fleet.operator).post(
        "/api/v1/energy/rates/import/", {"file": upload}, format="multipart"
    )
    assert response.status_code == 200, response.json()
    body = response.json()
    assert body["stored"] == 3 and [e["line"] for e in body["errors"]] == [4, 5, 6, 7, 8]


def test_a_batch_reports_bad_items_by_index_and_other_sites_are_unknown(
    fleet: Fleet, printer, as_user
):
    site = fleet.site
    items = [
        {"site": site.pk, "hour": "2026-03-02T10:00:00Z", "price": "0.2"},
        {"site": site.pk, "hour": "yesterday", "price": "0.2"},
        {"site": site.pk, "hour": "2026-03-02T11:00:00Z", "price": "0.3", "renewable_kw": 4},
    ]
    operator = as_user(fleet.operator)
    response = operator.post("/api/v1/energy/rates/", {"items": items}, format="json")
    assert response.status_code == 200
    assert response.json()["stored"] == 2
    assert [(e["index"], list(e["errors"])) for e in response.json()["errors"]] == [(1, ["hour"])]
    # a vendor does not set the operator site's prices: the site is unknown to them
    vendor = as_user(fleet.vendor)
    response = vendor.post("/api/v1/energy/rates/", {"items": items[:1]}, format="json")
    assert response.json() == {
        "stored": 0,
        "errors": [
            {
                "index": 0,
                "errors": {"site": ["No such site that you manage (give its id or slug)."]},
            }
        ],
    }
    # but sees them for the site its printer stands at; the rival vendor does not
    listed = vendor.get(f"/api/v1/energy/rates/?site={site.pk}").json()["results"]
    assert [r["price_per_kwh"] for r in listed] == ["0.20000", "0.30000"]
    rival = as_user(fleet.rival)
    assert rival.get(f"/api/v1/energy/rates/?site={site.pk}").json()["results"] == []
    # and a designer may not store any
    designer = as_user(fleet.designer)
    assert (
        designer.post("/api/v1/energy/rates/", {"items": items}, format="json").status_code == 403
    )
    assert HourlyRate.objects.filter(site=site).count() == 2
    assert (
        HourlyRate.objects.get(site=site, hour=datetime(2026, 3, 2, 11, tzinfo=UTC)).renewable_kw
        == 4
    )
