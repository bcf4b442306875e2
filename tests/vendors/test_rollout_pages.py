"""The rollout pages of the vendor portal: list, start, a rollout's waves and gateways' states
(refreshed while they can move), pause/resume/cancel, and who may see what."""

from __future__ import annotations

import pytest

from apps.vendors.models import Rollout
from tests.conftest import portal_client
from tests.fixtures.fleet import Fleet
from tests.vendors.conftest import pull, report

pytestmark = pytest.mark.django_db

FORM = {
    "name": "Bigger buffers",
    "tags": "hall",
    "wave_sizes": "1, 2",
    "success_threshold_pct": "100",
    "error_threshold_pct": "34",
    "max_points": "2000000",
}


def start(client, **overrides):
    body = {**FORM, **overrides}
    return client.post("/vendor/rollouts/new/", body)


def test_no_rollouts_yet_says_so_and_the_menu_leads_here(fleet: Fleet):
    client = portal_client(fleet.vendor)
    page = client.get("/vendor/rollouts/").content.decode()
    assert "No rollouts yet" in page
    assert 'href="/vendor/rollouts/"' in client.get("/vendor/gateways/").content.decode()


def test_a_rollout_started_from_the_form_is_followed_wave_by_wave_in_words(fleet: Fleet, hall):
    # given the vendor on the form, with the hall's three gateways
    client = portal_client(fleet.vendor)
    form = client.get("/vendor/rollouts/new/").content.decode()
    assert "Buffer size (points per machine)" in form and "Site A" in form

    # when they start a rollout in waves of 1 and 2
    response = start(client)
    rollout = Rollout.objects.get()
    assert response.status_code == 302 and response["Location"] == f"/vendor/rollouts/{rollout.pk}/"
    assert rollout.forwarding == {"max_points": 2_000_000} and rollout.wave_sizes == [1, 2]

    # then its page shows the waves and each gateway's state in words, refreshing itself
    page = client.get(response["Location"]).content.decode()
    assert "Wave 1" in page and "Wave 2" in page and "not started" in page
    assert "Buffer size (points per machine)" in page and "2000000" in page
    assert page.count("Queued") == 3 and "queued" not in page.replace("rstate-queued", "")
    assert f'hx-get="/vendor/rollouts/{rollout.pk}/live/"' in page and "htmx.min.js" in page

    # when the first gateway applies it and one of the second wave fails
    pull(hall["gw-a"])
    report(hall["gw-a"], 2)
    pull(hall["gw-b"])
    pull(hall["gw-c"])
    report(hall["gw-c"], 1, "version 2: not applied: the buffer cannot grow that large here")
    live = client.get(f"/vendor/rollouts/{rollout.pk}/live/").content.decode()
    # then the refreshed part says so, and the stopped rollout still follows gw-b
    assert "Stopped at the error threshold" in live and "Rolled back" in live
    assert "Applied" in live and "Downloading" in live
    assert "the buffer cannot grow that large here" in live
    assert "hx-trigger" in live and "Cancel" in live
    report(hall["gw-b"], 2)
    live = client.get(f"/vendor/rollouts/{rollout.pk}/live/").content.decode()
    assert "hx-trigger" not in live  # nothing can move any more: the refreshing stops
    assert "Cancel" not in live and "Pause" not in live
    listing = client.get("/vendor/rollouts/").content.decode()
    assert "Bigger buffers" in listing and "Stopped at the error threshold" in listing


def test_pause_resume_and_cancel_buttons(fleet: Fleet, hall):
    client = portal_client(fleet.vendor)
    start(client)
    rollout = Rollout.objects.get()
    url = f"/vendor/rollouts/{rollout.pk}/"
    page = client.post(f"{url}pause/", follow=True).content.decode()
    assert "paused; no further wave starts" in page and "Resume" in page
    page = client.post(f"{url}pause/", follow=True).content.decode()
    assert "Only a running rollout pauses" in page
    assert client.get(f"{url}pause/").status_code == 405
    client.post(f"{url}resume/")
    assert Rollout.objects.get().status == "running"
    page = client.post(f"{url}cancel/", follow=True).content.decode()
    assert Rollout.objects.get().status == "cancelled" and "Cancelled" in page
    assert "Rolled back" in page  # gw-a had been handed it


@pytest.mark.parametrize(
    ("overrides", "field_error"),
    [
        ({"wave_sizes": "1, none"}, "none is not a number of gateways"),
        ({"error_threshold_pct": "101"}, "less than or equal to 100"),
        ({"max_points": "5"}, "Give a number 1000-1e+08"),
        ({"max_points": ""}, "Say which settings or which software release the rollout ships"),
        ({"tags": "nowhere"}, "No gateway of this vendor matches"),
    ],
)
def test_a_bad_rollout_is_shown_on_the_form_and_nothing_starts(
    fleet: Fleet, hall, overrides, field_error
):
    response = start(portal_client(fleet.vendor), **overrides)
    assert response.status_code == 400
    assert field_error in response.content.decode()
    assert not Rollout.objects.exists()


def test_who_sees_and_moves_a_rollout(fleet: Fleet, hall):
    start(portal_client(fleet.vendor))
    rollout = Rollout.objects.get()
    url = f"/vendor/rollouts/{rollout.pk}/"
    rival = portal_client(fleet.rival)
    assert "Bigger buffers" not in rival.get("/vendor/rollouts/").content.decode()
    assert rival.get(url).status_code == 404
    assert rival.get(f"{url}live/").status_code == 404
    assert rival.post(f"{url}pause/").status_code == 404
    assert rival.post(f"{url}cancel/").status_code == 404
    # the rival's form offers neither Forge nor its site, and cannot start one on Forge's gateways
    form = rival.get("/vendor/rollouts/new/").content.decode()
    assert "Forge" not in form and "Site A" not in form
    response = start(rival, vendor=str(fleet.forge.pk))
    assert response.status_code == 400 and Rollout.objects.count() == 1
    for who in ("operator", "designer"):
        client = portal_client(fleet.user(who))
        assert client.get("/vendor/rollouts/").status_code == 403, who
        assert client.get(url).status_code == 403, who
        assert client.post(f"{url}cancel/").status_code == 403, who
    assert Rollout.objects.get().status == "running"
    admin = portal_client(fleet.admin)
    assert "Bigger buffers" in admin.get("/vendor/rollouts/").content.decode()


def test_a_software_release_is_chosen_on_the_form_and_shown_with_the_rollout(fleet: Fleet, hall):
    from django.core.files.base import ContentFile

    from apps.vendors.models import EdgeRelease

    release = EdgeRelease(version="2.1.0", sha256="a" * 64, size_bytes=3, created_by=fleet.admin)
    release.wheel.save("imewe_edge-2.1.0-py3-none-any.whl", ContentFile(b"whl"), save=False)
    release.save()
    client = portal_client(fleet.vendor)
    form = client.get("/vendor/rollouts/new/").content.decode()
    assert "Gateway software" in form and "imewe-edge 2.1.0" in form
    assert "Keep each gateway&#x27;s software" in form

    response = start(client, release=str(release.pk), max_points="")  # software alone
    assert response.status_code == 302, response.content.decode()[:2000]
    rollout = Rollout.objects.get()
    assert rollout.release == release and rollout.forwarding == {}
    page = client.get(response["Location"]).content.decode()
    assert "Gateway software" in page and "imewe-edge 2.1.0" in page
    assert "imewe-edge 2.1.0" in client.get("/vendor/rollouts/").content.decode()
    # the first wave's gateway is told to run it
    assert pull(hall["gw-a"])["software"]["version"] == "2.1.0"

    # a release that does not exist is refused by name
    Rollout.objects.all().delete()
    response = start(client, release="999999")
    assert response.status_code == 400 and "Select a valid choice" in response.content.decode()
