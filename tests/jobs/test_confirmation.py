"""Nodes whose vendor confirms each part: the part waits for the vendor's answer; accepting
commits the node, declining sends the part elsewhere for good, silence past the deadline too."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from apps.core.models import Notification
from apps.jobs.models import Job, Status
from apps.jobs.services import job_submit, parts_heal, parts_schedule
from apps.vendors.services import device_credential_issue
from tests.fixtures.shop import Shop

pytestmark = pytest.mark.django_db

PLA = {"material": "PLA", "process": "fdm", "size_x_mm": 60, "size_y_mm": 40, "size_z_mm": 30}


@pytest.fixture
def confirming(shop: Shop) -> Shop:
    for key in ("printer_a", "printer_b"):
        shop.node(key).requires_confirmation = True
        shop.node(key).save(update_fields=["requires_confirmation"])
    return shop


def scheduled_part(shop: Shop):
    job = job_submit(by=shop.designer, title="Clips", parts=[{**PLA, "name": "clip"}])
    parts_schedule()
    return job.parts.get()


def device(api, node, shop: Shop):
    _, token = device_credential_issue(node=node, by=shop.vendor)
    api.credentials(HTTP_AUTHORIZATION=f"Device {token}")
    return api


def test_the_part_waits_for_the_vendor_who_accepts_it(confirming, api, as_user):
    part = scheduled_part(confirming)
    assert part.status == Status.SCHEDULED
    asked = Notification.objects.get(user=confirming.vendor, title__contains="confirmation")
    assert asked.title.startswith("1 part(s) await") and asked.link == "/vendor/work/"

    agent = device(api, part.assigned_node, confirming)
    assert agent.get("/api/v1/work/parts/").json()["results"] == []  # not offered before the answer
    refused = agent.post(f"/api/v1/work/parts/{part.pk}/start/")
    assert refused.status_code == 409 and "not accepted" in refused.json()["error"]["message"]

    vendor = as_user(confirming.vendor)
    listed = vendor.get("/api/v1/jobs/vendor-parts/?awaiting_confirmation=true").json()
    assert [p["id"] for p in listed["results"]] == [part.pk]
    assert listed["results"][0]["awaiting_confirmation"] is True
    accepted = vendor.post(f"/api/v1/jobs/vendor-parts/{part.pk}/accept/")
    assert accepted.status_code == 200 and accepted.json()["status"] == Status.ASSIGNED
    change = part.job.history.filter(part=part, to_status=Status.ASSIGNED).get()
    assert change.by == confirming.vendor and "Accepted" in change.reason
    assert vendor.get("/api/v1/jobs/vendor-parts/?awaiting_confirmation=true").json()["count"] == 0

    assert [p["id"] for p in agent.get("/api/v1/work/parts/").json()["results"]] == [part.pk]
    assert agent.post(f"/api/v1/work/parts/{part.pk}/start/").status_code == 200
    again = vendor.post(f"/api/v1/jobs/vendor-parts/{part.pk}/accept/")
    assert again.status_code == 409  # in progress now


def test_a_declined_part_goes_elsewhere_and_never_back(confirming, as_user):
    part = scheduled_part(confirming)
    first = part.assigned_node
    vendor = as_user(confirming.vendor)
    missing = vendor.post(f"/api/v1/jobs/vendor-parts/{part.pk}/decline/", {}, format="json")
    assert missing.status_code == 400 and "reason" in missing.json()["error"]["details"]

    declined = vendor.post(
        f"/api/v1/jobs/vendor-parts/{part.pk}/decline/", {"reason": "out of PLA"}, format="json"
    )
    assert declined.status_code == 200 and declined.json()["status"] == Status.VALIDATED
    part.refresh_from_db()
    assert list(part.declined_nodes.values_list("pk", flat=True)) == [first.pk]
    told = Notification.objects.filter(user=confirming.designer).latest("id")
    assert told.body.startswith("Declined by") and "out of PLA" in told.body
    assert "another suitable node" in told.body

    parts_schedule()
    part.refresh_from_db()
    second = part.assigned_node
    assert part.status == Status.SCHEDULED and second not in (None, first)
    vendor.post(f"/api/v1/jobs/vendor-parts/{part.pk}/decline/", {"reason": "busy"}, format="json")
    last = Notification.objects.filter(user=confirming.designer).latest("id")
    assert "No other node can make it now" in last.body
    parts_schedule()  # both printers said no: the part waits, and says why
    part.refresh_from_db()
    assert part.status == Status.VALIDATED and part.assigned_node is None
    assert "declined by 2 node(s)" in part.placement["reason"]


def test_only_the_nodes_vendor_may_answer(confirming, as_user):
    part = scheduled_part(confirming)
    url = f"/api/v1/jobs/vendor-parts/{part.pk}/"
    assert as_user(confirming.rival).post(url + "accept/").status_code == 404
    assert as_user(confirming.rival).get("/api/v1/jobs/vendor-parts/").json()["count"] == 0
    for role in ("designer", "operator", "viewer"):
        assert as_user(confirming.user(role)).post(url + "accept/").status_code == 403
        assert as_user(confirming.user(role)).get("/api/v1/jobs/vendor-parts/").status_code == 403
    assert as_user(confirming.admin).post(url + "accept/").status_code == 200
    part.refresh_from_db()
    assert part.status == Status.ASSIGNED


def test_silence_past_the_deadline_sends_the_part_elsewhere(confirming, settings):
    settings.JOBS_CONFIRM_HOURS = 4
    part = scheduled_part(confirming)
    node = part.assigned_node
    now = timezone.now()
    assert parts_heal(now=now + timedelta(hours=3)) == []
    assert parts_heal(now=now + timedelta(hours=5)) == [part.pk]
    part.refresh_from_db()
    assert part.status == Status.VALIDATED and list(
        part.declined_nodes.values_list("pk", flat=True)
    ) == [node.pk]
    reason = Job.objects.get(pk=part.job_id).history.latest("at").reason
    assert "did not confirm within 4 h" in reason


def test_nodes_without_confirmation_take_parts_straight_away(shop: Shop, api):
    part = scheduled_part(shop)
    agent = device(api, part.assigned_node, shop)
    assert [p["id"] for p in agent.get("/api/v1/work/parts/").json()["results"]] == [part.pk]
    assert not Notification.objects.filter(title__contains="confirmation").exists()


def test_the_vendor_answers_in_the_portal(confirming, signed_in):
    part = scheduled_part(confirming)
    vendor = signed_in(confirming.vendor)
    page = vendor.get("/vendor/work/").content.decode()
    assert "1 awaiting your answer" in page and f"/vendor/work/parts/{part.pk}/accept/" in page

    rival = signed_in(confirming.rival)
    assert rival.post(f"/vendor/work/parts/{part.pk}/accept/").status_code == 404
    blank = vendor.post(f"/vendor/work/parts/{part.pk}/decline/", {"reason": " "}, follow=True)
    assert "Say why you decline" in blank.content.decode()
    done = vendor.post(f"/vendor/work/parts/{part.pk}/accept/", follow=True)
    assert f"Accepted {part.name}" in done.content.decode()
    part.refresh_from_db()
    assert part.status == Status.ASSIGNED
