"""Channels through the API: who may create, see and edit which; secrets never shown back;
hostile URLs refused with a precise message; the delivery log paginated and filtered."""

from __future__ import annotations

from typing import Any

import pytest
from django.db import connection

from apps.notify.models import Channel, Delivery
from apps.notify.services import channel_create, event_raise
from apps.users.models import Membership
from tests.conftest import jwt_client
from tests.fixtures.fleet import Fleet
from tests.users.factories import MembershipFactory

URL = "/api/v1/notify/channels/"


@pytest.fixture
def owner(fleet: Fleet) -> Any:
    Membership.objects.filter(user=fleet.vendor).update(org_role=Membership.OrgRole.OWNER)
    return fleet.vendor


def hook_body(org: int | None, url: str = "http://127.0.0.1:8211/x", **kw: Any) -> dict[str, Any]:
    return {"kind": "webhook", "name": "Hook", "organization": org, "target": url, **kw}


def test_only_owners_create_organization_channels(fleet: Fleet, owner):
    forge = fleet.forge.pk
    # a plain member of the organization is refused, as is a stranger: "not found" both
    MembershipFactory.create(user=fleet.operator, organization=fleet.forge)
    for who in ("operator", "rival", "designer"):
        answer = jwt_client(fleet.user(who)).post(URL, hook_body(forge), format="json")
        assert answer.status_code == 404, (who, answer.json())
        assert answer.json()["error"]["code"] == "not_found"
    assert not Channel.objects.exists()
    answer = jwt_client(owner).post(URL, hook_body(forge, secret="x" * 40), format="json")
    assert answer.status_code == 201, answer.json()
    body = answer.json()
    assert body["organization"] == forge and body["generated_secret"] is None
    assert body["secret_hint"] == "••••••••xxxx" and "secret" not in body
    # and the database holds a Fernet token, never the secret (apps/core/encryption.py)
    with connection.cursor() as cursor:
        cursor.execute("SELECT secret FROM notify_channel WHERE id = %s", [body["id"]])
        stored = cursor.fetchone()[0]
    assert "xxxx" not in stored and stored.startswith("gAAAA")
    assert Channel.objects.get(pk=body["id"]).secret == "x" * 40
    # the platform admin manages any organization's channels
    assert jwt_client(fleet.admin).get(f"{URL}{body['id']}/").status_code == 200


def test_people_see_and_edit_only_their_own_channels(fleet: Fleet, owner):
    mine = channel_create(by=fleet.designer, kind="in_app", name="Mine")
    org = channel_create(
        by=owner,
        kind="webhook",
        name="Org",
        organization=fleet.forge,
        target="http://127.0.0.1:8211/",
        secret="y" * 40,
    )
    designer, rival = jwt_client(fleet.designer), jwt_client(fleet.rival)
    assert [c["name"] for c in designer.get(URL).json()["results"]] == ["Mine"]
    assert [c["name"] for c in jwt_client(owner).get(URL).json()["results"]] == ["Org"]
    for pk in (mine.pk, org.pk):
        assert rival.get(f"{URL}{pk}/").status_code == 404
        assert rival.patch(f"{URL}{pk}/", {"name": "Mine now"}, format="json").status_code == 404
        assert rival.delete(f"{URL}{pk}/").status_code == 404
        assert rival.post(f"{URL}{pk}/test/").status_code == 404
    assert designer.get(f"{URL}{org.pk}/").status_code == 404
    answer = designer.patch(
        f"{URL}{mine.pk}/",
        {"name": "Here", "rules": [{"event_kind": "job_failed", "min_severity": "info"}]},
        format="json",
    )
    assert answer.status_code == 200, answer.json()
    assert answer.json()["rules"] == [{"event_kind": "job_failed", "min_severity": "info"}]
    # an empty secret in an edit keeps the stored one
    jwt_client(owner).patch(f"{URL}{org.pk}/", {"secret": "", "name": "Org 2"}, format="json")
    org.refresh_from_db()
    assert org.secret == "y" * 40 and org.name == "Org 2"
    assert designer.delete(f"{URL}{mine.pk}/").status_code == 204
    assert not Channel.objects.filter(pk=mine.pk).exists()


@pytest.mark.parametrize(
    ("target", "message"),
    [
        ("ftp://127.0.0.1/x", "Only http:// and https:// URLs are accepted."),
        ("file:///etc/passwd", "Only http:// and https:// URLs are accepted."),
        ("http://169.254.169.254/latest/meta-data", "private or reserved"),
        ("http://10.1.2.3/", "private or reserved"),
        ("http://[::1]:8211/", "private or reserved"),
        ("http://localhost:99999/", "Not a valid URL."),
        ("http://no-such-host.invalid/", "cannot be resolved"),
    ],
)
def test_hostile_webhook_urls_are_refused(fleet: Fleet, owner, target, message, settings):
    settings.NOTIFY_ALLOWED_NETWORKS = []  # production: nothing private allowed
    answer = jwt_client(owner).post(URL, hook_body(fleet.forge.pk, target), format="json")
    assert answer.status_code == 400, answer.json()
    assert message in str(answer.json()["error"]["details"]["target"])


def test_loopback_is_refused_unless_allowed(fleet: Fleet, owner, settings):
    settings.NOTIFY_ALLOWED_NETWORKS = []
    client = jwt_client(owner)
    assert client.post(URL, hook_body(None), format="json").status_code == 400
    settings.NOTIFY_ALLOWED_NETWORKS = ["127.0.0.0/8"]
    assert client.post(URL, hook_body(None), format="json").status_code == 201


def test_apprise_urls_are_checked(fleet: Fleet, owner, settings):
    client = jwt_client(owner)
    body = {"kind": "apprise", "name": "Chat", "secret": "nonsense://what"}
    answer = client.post(URL, body, format="json")
    assert answer.status_code == 400
    assert "Apprise does not understand" in str(answer.json())
    settings.NOTIFY_ALLOWED_NETWORKS = []
    answer = client.post(URL, {**body, "secret": "json://127.0.0.1:8211/x"}, format="json")
    assert "private or reserved" in str(answer.json()["error"]["details"]["secret"])
    # a chat service's own API is not a private address
    answer = client.post(
        URL,
        {**body, "secret": "slack://T1JJ3T3L2/A1BRTD4JD/TIiajkdnlazkcOXrIdevi7FQ"},
        format="json",
    )
    assert answer.status_code == 201, answer.json()
    assert "slack" not in str(answer.json())


def test_invalid_input_is_named(fleet: Fleet, owner):
    client = jwt_client(owner)
    cases = [
        ({"kind": "pager", "name": "x"}, "kind"),
        ({"kind": "in_app", "name": "x", "organization": fleet.forge.pk}, "kind"),
        ({"kind": "email", "name": "x", "target": "not-an-address"}, "target"),
        ({"kind": "email", "name": "x", "organization": fleet.forge.pk}, "target"),
        ({"kind": "in_app", "name": " "}, "name"),
        ({"kind": "in_app", "name": "x", "rules": [{"event_kind": "boom"}]}, "rules"),
        ({"kind": "in_app", "name": "x", "rules": [{}, {}]}, "rules"),
        ({"kind": "webhook", "name": "x", "target": "h" * 600}, "target"),
    ]
    for body, field in cases:
        answer = client.post(URL, body, format="json")
        assert answer.status_code == 400, (body, answer.json())
        assert field in answer.json()["error"]["details"], (body, answer.json())
    assert not Channel.objects.exists()


def test_delivery_log_is_paginated_filtered_and_private(
    fleet: Fleet, owner, receiver, django_capture_on_commit_callbacks
):
    channel = channel_create(
        by=owner,
        kind="webhook",
        name="Org",
        organization=fleet.forge,
        target=receiver.url,
        rules=[{"event_kind": "", "min_severity": "info"}],
    )
    with django_capture_on_commit_callbacks(execute=True):
        for n in range(5):
            event_raise(
                kind="node_offline" if n % 2 else "job_finished",
                severity="info",
                title=f"e{n}",
                subject=f"s{n}",
                organizations=[fleet.forge],
            )
    client = jwt_client(owner)
    page = client.get("/api/v1/notify/deliveries/", {"page_size": 2}).json()
    assert page["count"] == 5 and len(page["results"]) == 2 and page["pages"] == 3
    offline = client.get("/api/v1/notify/deliveries/", {"event_kind": "node_offline"}).json()
    assert sorted(d["title"] for d in offline["results"]) == ["e1", "e3"]
    bad = client.get("/api/v1/notify/deliveries/", {"status": "lost"})
    assert bad.status_code == 400 and "status" in bad.json()["error"]["details"]
    assert client.get("/api/v1/notify/deliveries/", {"channel": channel.pk}).json()["count"] == 5
    assert jwt_client(fleet.designer).get("/api/v1/notify/deliveries/").json()["count"] == 0
    assert Delivery.objects.filter(status="sent").count() == 5


def test_send_test_goes_through_the_delivery_log(
    fleet: Fleet, owner, receiver, django_capture_on_commit_callbacks
):
    channel = channel_create(
        by=owner, kind="webhook", name="Org", organization=fleet.forge, target=receiver.url
    )
    with django_capture_on_commit_callbacks(execute=True):
        answer = jwt_client(owner).post(f"{URL}{channel.pk}/test/")
    assert answer.status_code == 202, answer.json()
    assert answer.json()["status"] == "pending" and answer.json()["event_kind"] == "notify_test"
    assert receiver.received[0].json()["kind"] == "notify_test"
    assert Delivery.objects.get(pk=answer.json()["id"]).status == "sent"
