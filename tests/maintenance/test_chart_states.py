"""The ticket page's charts: a time axis over the ticket's own span, series only where the
models gave values, and an empty state that says why instead of a bare axis."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from tests.conftest import portal_client
from tests.fixtures.fleet import Fleet
from tests.maintenance.factories import PredictionFactory
from tests.maintenance.test_pages import agent_ticket, json_of

pytestmark = pytest.mark.django_db


def test_a_ticket_without_scorings_says_the_models_did_not_score(fleet: Fleet, mill):
    ticket = agent_ticket(mill)
    page = portal_client(fleet.operator).get(f"/maintenance/tickets/{ticket.pk}/")
    assert page.status_code == 200
    html = page.content.decode()
    assert "Model predictions" in html
    assert 'data-chart-empty="chart-scores"' in html
    assert "The models did not score this node in this period" in html
    assert "chart-scores-data" not in html


def test_scorings_without_a_trained_model_draw_no_empty_chart(fleet: Fleet, mill):
    # the agent scored the node, but no model was active: every value is empty
    ticket = agent_ticket(mill)
    for minutes in (20, 10):
        PredictionFactory.create(node=mill, at=timezone.now() - timedelta(minutes=minutes))
    page = portal_client(fleet.operator).get(f"/maintenance/tickets/{ticket.pk}/")
    html = page.content.decode()
    assert "chart-scores-data" not in html
    assert "scored 2 times in this period, but no trained model was active" in html


def test_prediction_chart_spans_the_ticket_and_keeps_only_series_with_values(fleet: Fleet, mill):
    ticket = agent_ticket(mill)
    PredictionFactory.create(
        node=mill,
        at=timezone.now() - timedelta(minutes=5),
        failure_probability=0.3,  # no anomaly model active: score and threshold empty
    )
    page = portal_client(fleet.operator).get(f"/maintenance/tickets/{ticket.pk}/")
    chart = json_of(page, "chart-scores-data")
    assert [s["label"] for s in chart["series"]] == ["Failure probability"]
    assert chart["series"][0]["axis"] == "y1" and chart["y1_range"] == [0, 1]
    assert chart["axes"]["y1"] == "Failure probability (0-1)"
    # the x axis is the evidence window: real times, not the epoch
    start, end = page.context["evidence_from"], page.context["evidence_to"]
    assert chart["x_range"] == [int(start.timestamp() * 1000), int(end.timestamp() * 1000)]
    assert chart["x_range"][0] > 1_600_000_000_000


def test_the_ticket_page_is_for_maintainers_only(fleet: Fleet, mill):
    ticket = agent_ticket(mill)
    for role in ("designer", "viewer"):
        page = portal_client(fleet.user(role)).get(f"/maintenance/tickets/{ticket.pk}/")
        assert page.status_code in (403, 404), role
