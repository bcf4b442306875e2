from __future__ import annotations

import pytest
from django.db import DatabaseError, connection, transaction
from django.test import Client

from apps.core.models import AppendOnlyError, AuditLog
from apps.users.models import Organization
from apps.users.roles import Role
from apps.users.services import organization_create
from tests.core.factories import AuditLogFactory
from tests.users.factories import PASSWORD


@pytest.mark.django_db
def test_login_success_and_failure_are_recorded_with_ip(make_user):
    user = make_user(Role.DESIGNER)
    client = Client(REMOTE_ADDR="203.0.113.7")
    client.post("/account/login/", {"email": user.email, "password": "wrong-one-123"})
    client.post("/account/login/", {"email": user.email, "password": PASSWORD})
    failure = AuditLog.objects.get(action=AuditLog.Action.LOGIN_FAILURE)
    assert failure.actor_email == user.email and failure.ip_address == "203.0.113.7"
    success = AuditLog.objects.get(action=AuditLog.Action.LOGIN_SUCCESS)
    assert success.actor == user and success.ip_address == "203.0.113.7"
    assert success.path == "/account/login/"


@pytest.mark.django_db
def test_api_login_is_recorded(api, make_user):
    user = make_user()
    api.post("/api/v1/auth/token/", {"email": user.email, "password": PASSWORD}, format="json")
    assert AuditLog.objects.filter(action=AuditLog.Action.LOGIN_SUCCESS, actor=user).exists()


@pytest.mark.django_db
def test_create_update_delete_of_key_models_are_recorded():
    org = organization_create(name="Kiln Works", kind=Organization.Kind.VENDOR)
    created = AuditLog.objects.get(action=AuditLog.Action.CREATE, object_type="users.organization")
    assert created.changes["name"] == [None, "Kiln Works"]

    org.name = "Kiln Works Ltd"
    org.save(update_fields=["name"])
    updated = AuditLog.objects.get(action=AuditLog.Action.UPDATE, object_type="users.organization")
    assert updated.changes == {"name": ["Kiln Works", "Kiln Works Ltd"]}

    pk = org.pk
    org.delete()
    deleted = AuditLog.objects.get(action=AuditLog.Action.DELETE, object_type="users.organization")
    assert deleted.object_id == str(pk) and deleted.object_repr == "Kiln Works Ltd"


@pytest.mark.django_db
def test_passwords_never_reach_the_log(make_user):
    user = make_user()
    user.set_password("another-secret-55")
    user.save()
    entry = AuditLog.objects.filter(action=AuditLog.Action.UPDATE, object_id=str(user.pk)).latest(
        "id"
    )
    assert entry.changes["password"] == ["***", "***"]
    assert "another-secret-55" not in str(AuditLog.objects.values_list("changes", flat=True))


@pytest.mark.django_db
def test_group_changes_are_recorded(make_user):
    user = make_user(Role.VIEWER)
    entries = AuditLog.objects.filter(
        action=AuditLog.Action.PERMISSION_CHANGED, object_id=str(user.pk)
    )
    assert any(e.changes.get("items") == ["viewer"] for e in entries)


@pytest.mark.django_db
def test_entries_cannot_be_changed_or_deleted_by_the_app():
    entry = AuditLogFactory.create(actor_email="x@example.test")
    entry.actor_email = "y@example.test"
    with pytest.raises(AppendOnlyError):
        entry.save()
    with pytest.raises(AppendOnlyError):
        entry.delete()


@pytest.mark.django_db(transaction=True)
def test_database_refuses_update_and_delete():
    entry = AuditLogFactory.create(actor_email="x@example.test")
    statements = ["UPDATE core_auditlog SET actor_email = 'forged' WHERE id = %s"]
    if connection.vendor == "postgresql":  # SQLite keeps DELETE for flush (see migration 0003)
        statements.append("DELETE FROM core_auditlog WHERE id = %s")
    for sql in statements:
        with (
            pytest.raises(DatabaseError, match="append-only"),
            transaction.atomic(),
            connection.cursor() as cursor,
        ):
            cursor.execute(sql, [entry.pk])
    assert AuditLog.objects.get(pk=entry.pk).actor_email == "x@example.test"


@pytest.mark.django_db
def test_audit_api_filters(make_user, as_user):
    admin = make_user(Role.ADMIN)
    watcher = make_user(Role.VIEWER, email="watcher@example.test")
    Client().post("/account/login/", {"email": watcher.email, "password": PASSWORD})
    client = as_user(admin)
    body = client.get("/api/v1/audit-log/?actor_email=watcher&action=auth.login").json()
    assert body["count"] == 1
    assert body["results"][0]["actor"] == watcher.pk
    body = client.get("/api/v1/audit-log/?object_type=users.user&action=object.create").json()
    assert {r["object_repr"] for r in body["results"]} == {admin.email, watcher.email}
