from __future__ import annotations

import pytest

from apps.core.models import Notification
from apps.core.services import notification_send
from apps.users.roles import Role
from tests.conftest import jwt_client


@pytest.mark.django_db
def test_list_filter_and_mark_read(make_user):
    user, other = make_user(Role.DESIGNER), make_user(Role.DESIGNER)
    first = notification_send(user=user, title="Queued", level=Notification.Level.INFO)
    notification_send(user=user, title="Node down", level=Notification.Level.CRITICAL)
    theirs = notification_send(user=other, title="Not yours")
    client = jwt_client(user)

    body = client.get("/api/v1/notifications/").json()
    assert [n["title"] for n in body["results"]] == ["Node down", "Queued"]
    critical = client.get("/api/v1/notifications/?level=critical").json()
    assert [n["title"] for n in critical["results"]] == ["Node down"]

    # Marking someone else's notification changes nothing.
    marked = client.post(
        "/api/v1/notifications/read/", {"ids": [first.pk, theirs.pk]}, format="json"
    )
    assert marked.json() == {"marked": 1}
    theirs.refresh_from_db()
    assert theirs.read_at is None
    unread = client.get("/api/v1/notifications/?unread=true").json()
    assert [n["title"] for n in unread["results"]] == ["Node down"]
    assert client.post("/api/v1/notifications/read/", {"all": True}, format="json").json() == {
        "marked": 1
    }


@pytest.mark.django_db
def test_mark_read_needs_ids_or_all(make_user):
    response = jwt_client(make_user()).post("/api/v1/notifications/read/", {}, format="json")
    assert response.status_code == 400
    assert response.json()["error"]["details"]["non_field_errors"] == ["Give ids, or all=true."]


@pytest.mark.django_db
def test_notifications_page_lists_own_only(make_user, signed_in):
    user, other = make_user(), make_user()
    notification_send(user=user, title="Mine")
    notification_send(user=other, title="Someone else's")
    page = signed_in(user).get("/notifications/")
    assert b"Mine" in page.content and b"Someone else" not in page.content
