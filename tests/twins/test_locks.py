"""Component locks: exclusive and shared, ancestors and descendants conflict, TTL with
heartbeat, release, admin force-release, expiry; racing clients get exactly one holder."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone

from apps.core.exceptions import Conflict
from apps.twins.models import TwinLock
from apps.twins.services import lock_acquire, locks_expire, twin_share
from tests.fixtures.studio import Studio

pytestmark = pytest.mark.django_db


@pytest.fixture
def shared(studio: Studio) -> Studio:
    twin_share(by=studio.designer, twin=studio.twin, level="edit", user=studio.colleague)
    return studio


def locks_url(people):
    return f"/api/v1/twins/{people.twin.pk}/locks/"


def test_exclusive_and_shared_locks_follow_the_tree(shared, as_user):
    mine, theirs = as_user(shared.designer), as_user(shared.colleague)
    url = locks_url(shared)
    got = mine.post(url, {"path": "spindle/bearing", "mode": "exclusive"}, format="json")
    assert got.status_code == 201, got.json()
    for path in ("spindle/bearing", "spindle", "spindle/bearing/preload_n"):
        refused = theirs.post(url, {"path": path, "mode": "shared"}, format="json")
        assert refused.status_code == 409, path
        assert refused.json()["error"]["details"]["holder"] == "designer@f.test"
    assert (
        theirs.post(url, {"path": "spindle/max_rpm"}, format="json").status_code == 201
    )  # sibling
    # shared locks coexist; an exclusive one then waits for them
    assert mine.post(url, {"path": "tools", "mode": "shared"}, format="json").status_code == 201
    assert theirs.post(url, {"path": "tools/0", "mode": "shared"}, format="json").status_code == 201
    assert (
        theirs.post(url, {"path": "tools", "mode": "exclusive"}, format="json").status_code == 409
    )
    listed = mine.get(url).json()
    assert [(lock["path"], lock["holder"]) for lock in listed] == [
        ("spindle/bearing", "designer@f.test"),
        ("spindle/max_rpm", "colleague@f.test"),
        ("tools", "designer@f.test"),
        ("tools/0", "colleague@f.test"),
    ]
    bad = mine.post(url, {"path": "", "mode": "exclusive"}, format="json")
    assert bad.status_code == 400


def test_edits_respect_other_peoples_exclusive_locks(shared, as_user):
    twin = shared.twin
    as_user(shared.designer).post(locks_url(shared), {"path": "spindle/bearing"}, format="json")
    blocked = as_user(shared.colleague).post(
        f"/api/v1/twins/{twin.pk}/edits/",
        {"base_version": 1, "ops": [{"op": "set", "path": "spindle/bearing/type", "value": "x"}]},
        format="json",
    )
    assert blocked.status_code == 409
    assert blocked.json()["error"]["details"]["reason"] == "locked"
    assert "is locked by designer@f.test" in blocked.json()["error"]["message"]
    own = as_user(shared.designer).post(
        f"/api/v1/twins/{twin.pk}/edits/",
        {"base_version": 1, "ops": [{"op": "set", "path": "spindle/bearing/type", "value": "x"}]},
        format="json",
    )
    assert own.status_code == 200  # the holder edits


def test_heartbeat_release_force_and_expiry(shared, as_user, settings):
    settings.TWINS_LOCK_TTL_SECONDS = 300
    mine, theirs = as_user(shared.designer), as_user(shared.colleague)
    url = locks_url(shared)
    lock = mine.post(url, {"path": "spindle"}, format="json").json()
    stored = TwinLock.objects.get(pk=lock["id"])
    stored.expires_at = timezone.now() + timedelta(seconds=10)
    stored.save()
    beat = mine.post(f"{url}{lock['id']}/heartbeat/")
    assert beat.status_code == 200
    assert TwinLock.objects.get(pk=lock["id"]).expires_at > timezone.now() + timedelta(seconds=290)
    assert theirs.post(f"{url}{lock['id']}/heartbeat/").status_code == 403
    assert theirs.post(f"{url}{lock['id']}/release/", {}, format="json").status_code == 403
    assert (
        theirs.post(f"{url}{lock['id']}/release/", {"force": True}, format="json").status_code
        == 403
    )
    forced = as_user(shared.admin).post(
        f"{url}{lock['id']}/release/", {"force": True}, format="json"
    )
    assert forced.status_code == 204
    assert TwinLock.objects.get(pk=lock["id"]).release_reason == "forced"
    assert mine.post(f"{url}{lock['id']}/heartbeat/").status_code == 409  # gone

    second = mine.post(url, {"path": "tools"}, format="json").json()
    assert mine.post(f"{url}{second['id']}/release/", {}, format="json").status_code == 204
    third = theirs.post(url, {"path": "tools"}, format="json").json()
    assert locks_expire(now=timezone.now() + timedelta(seconds=301)) == 1
    assert TwinLock.objects.get(pk=third["id"]).release_reason == "expired"
    assert mine.post(url, {"path": "tools"}, format="json").status_code == 201  # free again


def test_who_may_lock(shared, as_user):
    url = locks_url(shared)
    assert as_user(shared.viewer).post(url, {"path": "tools"}, format="json").status_code == 403
    assert as_user(shared.viewer).get(url).status_code == 200  # sees them
    assert as_user(shared.outsider).get(url).status_code == 404


@pytest.mark.django_db(transaction=True)
def test_racing_clients_get_exactly_one_exclusive_holder(studio: Studio):
    """Twelve threads, each on its own database connection, ask for the same path at once."""
    twin = studio.twin
    people = [studio.designer, studio.admin]
    barrier = threading.Barrier(12)
    won: list[int] = []
    lost: list[str] = []
    other: list[BaseException] = []

    def racer(i: int) -> None:
        try:
            barrier.wait()
            lock = lock_acquire(
                by=people[i % 2], twin=twin, path="spindle/bearing", mode="exclusive"
            )
            won.append(lock.pk)
        except Conflict as exc:
            lost.append(exc.message)
        except BaseException as exc:  # noqa: BLE001  (reported below)
            other.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=racer, args=(i,)) for i in range(12)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert other == []
    live = TwinLock.objects.filter(twin=twin, released_at__isnull=True)
    assert live.count() == 1  # one holder; its own repeated asks renewed the same lock
    holder = live.get().holder_id
    assert set(won) == {live.get().pk}
    assert len(won) == 6 and len(lost) == 6  # the holder's six asks renew, the other six fail
    assert all("conflicts with the exclusive lock" in m for m in lost)
    assert holder in {p.pk for p in people}
