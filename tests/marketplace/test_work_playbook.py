"""The node making a part sees the playbook attached to it through the work API."""

from __future__ import annotations

import pytest

from apps.jobs.services import parts_schedule
from apps.marketplace.services.uses import playbook_attach
from apps.vendors.services import device_credential_issue
from tests.fixtures.market import Market, paid_purchase
from tests.marketplace.factories import PLAYBOOK_CONTENT
from tests.marketplace.test_uses import submit

pytestmark = pytest.mark.django_db


def test_the_work_queue_carries_the_parts_playbook_steps(market: Market, api):
    purchase = paid_purchase(market.playbook, market.designer)
    job = submit(market)
    plain = submit(market, title="Plain")
    part = job.parts.get()
    playbook_attach(by=market.designer, purchase=purchase, part=part)
    parts_schedule()
    part.refresh_from_db()
    other = plain.parts.get()
    assert other.pk != part.pk
    assert part.assigned_node is not None
    _, token = device_credential_issue(node=part.assigned_node, by=market.vendor)
    api.credentials(HTTP_AUTHORIZATION=f"Device {token}")

    queue = {p["id"]: p for p in api.get("/api/v1/work/parts/").json()["results"]}
    started = api.post(f"/api/v1/work/parts/{part.pk}/start/").json()

    playbook = queue[part.pk]["details"]["playbook"]
    assert playbook["title"] == "PLA recipe"
    assert [s["title"] for s in playbook["steps"]] == [
        s["title"] for s in PLAYBOOK_CONTENT["steps"]
    ]
    assert started["details"]["playbook"]["version"] == 1
    # a part without a playbook carries no details, on whichever node it went to
    assert other.assigned_node is not None
    _, other_token = device_credential_issue(node=other.assigned_node, by=market.vendor)
    api.credentials(HTTP_AUTHORIZATION=f"Device {other_token}")
    other_queue = {p["id"]: p for p in api.get("/api/v1/work/parts/").json()["results"]}
    assert other_queue[other.pk]["details"] == {}
