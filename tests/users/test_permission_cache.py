"""The role matrix's permissions come from a per-process cache checked against the permissions
version on every request (apps/users/permission_cache.py): no permission query per request,
and a permission revoked or granted in any way counts on the very next request, in every
process."""

from __future__ import annotations

import pytest
import requests
from django.contrib.auth.models import Group, Permission
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext

from apps.users.models import PermissionsVersion
from apps.users.permission_cache import permissions_version_read
from apps.users.roles import Action, Role, Scope, scope_for
from apps.users.services import membership_add, team_group, user_set_role
from apps.users.tokens import tokens_issue
from tests.conftest import jwt_client
from tests.daphne import running_daphne
from tests.users.factories import OrganizationFactory, UserFactory

ME = "/api/v1/auth/me/"
VENDOR_PARTS = "/api/v1/jobs/vendor-parts/"  # needs node_manage


def node_manage() -> Permission:
    return Permission.objects.get(content_type__app_label="users", codename="node_manage")


def permission_queries(queries: CaptureQueriesContext) -> list[str]:
    return [q["sql"] for q in queries if "auth_permission" in q["sql"]]


@pytest.mark.django_db
def test_an_authenticated_request_reads_no_permission_once_the_process_knows_the_user():
    vendor = UserFactory.create(role=Role.VENDOR)
    client = jwt_client(vendor)
    with CaptureQueriesContext(connection) as first:
        assert client.get(VENDOR_PARTS).status_code == 200
    with CaptureQueriesContext(connection) as again:
        assert client.get(VENDOR_PARTS).status_code == 200
    assert len(permission_queries(first)) == 1  # user and group permissions in one query
    assert permission_queries(again) == []
    # the user, its revocation and the permissions version: one query
    assert sum("users_user" in q["sql"] for q in again) == 1
    assert len(again) < len(first)


@pytest.mark.django_db
def test_a_permission_taken_from_the_role_group_is_refused_on_the_next_request():
    vendor = UserFactory.create(role=Role.VENDOR)
    client = jwt_client(vendor)
    assert client.get(VENDOR_PARTS).status_code == 200
    assert client.get(ME).json()["permissions"]["node_manage"] == "own_nodes"

    Group.objects.get(name="vendor").permissions.remove(node_manage())

    refused = client.get(VENDOR_PARTS)
    assert refused.status_code == 403
    assert refused.json()["error"]["code"] == "permission_denied"
    assert "node_manage" not in client.get(ME).json()["permissions"]
    # given back: allowed again on the next request
    Group.objects.get(name="vendor").permissions.add(node_manage())
    assert client.get(VENDOR_PARTS).status_code == 200


@pytest.mark.django_db
def test_permissions_given_to_the_user_or_through_another_group_count_at_once():
    # (the matrix still decides how far: a vendor's node_manage reaches its own nodes)
    Group.objects.get(name="vendor").permissions.remove(node_manage())
    vendor = UserFactory.create(role=Role.VENDOR)
    client = jwt_client(vendor)
    assert client.get(VENDOR_PARTS).status_code == 403

    vendor.user_permissions.add(node_manage())
    assert client.get(VENDOR_PARTS).status_code == 200
    vendor.user_permissions.clear()
    assert client.get(VENDOR_PARTS).status_code == 403

    helpers = Group.objects.create(name="node helpers")
    helpers.permissions.add(node_manage())
    helpers.user_set.add(vendor)  # from the group's side
    assert client.get(VENDOR_PARTS).status_code == 200
    helpers.delete()  # removes the membership without an m2m signal
    assert client.get(VENDOR_PARTS).status_code == 403


@pytest.mark.django_db
def test_a_deleted_permission_is_refused_on_the_next_request():
    vendor = UserFactory.create(role=Role.VENDOR)
    client = jwt_client(vendor)
    assert client.get(VENDOR_PARTS).status_code == 200
    node_manage().delete()
    assert client.get(VENDOR_PARTS).status_code == 403


@pytest.mark.django_db
def test_team_membership_and_role_changes_write_a_new_version():
    user = UserFactory.create(role=Role.DESIGNER)
    org = OrganizationFactory.create()
    team_group(organization=org)
    before = permissions_version_read()
    membership_add(user=user, organization=org)  # joins the team's group
    after_join = permissions_version_read()
    assert after_join != before
    user_set_role(user=user, role=Role.VENDOR)
    assert permissions_version_read() not in (before, after_join)


@pytest.mark.django_db
def test_a_user_object_asks_again_after_its_own_groups_change():
    user = UserFactory.create(role=Role.DESIGNER)
    assert scope_for(user, Action.NODE_MANAGE) is None
    user.groups.add(Group.objects.get(name="vendor"))
    user.role = Role.VENDOR
    assert scope_for(user, Action.NODE_MANAGE) == Scope.OWN_NODES


@pytest.mark.django_db
def test_a_rolled_back_change_leaves_no_stale_permissions_behind():
    vendor = UserFactory.create(role=Role.VENDOR)
    client = jwt_client(vendor)
    assert client.get(VENDOR_PARTS).status_code == 200
    with pytest.raises(RuntimeError), transaction.atomic():
        Group.objects.get(name="vendor").permissions.remove(node_manage())
        # read inside the change: cached under the new version, which the rollback drops
        assert client.get(VENDOR_PARTS).status_code == 403
        raise RuntimeError("rolled back")
    assert client.get(VENDOR_PARTS).status_code == 200


@pytest.mark.django_db
def test_without_a_version_row_every_request_reads_the_database():
    vendor = UserFactory.create(role=Role.VENDOR)
    client = jwt_client(vendor)
    PermissionsVersion.objects.all().delete()
    assert client.get(VENDOR_PARTS).status_code == 200
    # a change with no version row to update makes one
    Group.objects.get(name="vendor").permissions.remove(node_manage())
    assert PermissionsVersion.objects.count() == 1
    assert client.get(VENDOR_PARTS).status_code == 403


@pytest.mark.django_db
def test_session_users_read_the_version_in_one_small_query(signed_in):
    vendor = UserFactory.create(role=Role.VENDOR)
    client = signed_in(vendor)
    assert client.get(VENDOR_PARTS).status_code == 200
    with CaptureQueriesContext(connection) as queries:
        assert client.get(VENDOR_PARTS).status_code == 200
    assert permission_queries(queries) == []
    assert sum("users_permissionsversion" in q["sql"] for q in queries) == 1
    Group.objects.get(name="vendor").permissions.remove(node_manage())
    assert client.get(VENDOR_PARTS).status_code == 403


@pytest.mark.django_db(transaction=True)  # the servers read what the test commits
def test_a_revoked_permission_is_refused_by_every_process_on_its_next_request(tmp_path):
    # given: two web processes, each of which has cached the vendor's permissions
    vendor = UserFactory.create(role=Role.VENDOR)
    headers = {
        "Authorization": f"Bearer {tokens_issue(user=vendor, otp_verified=False).access_token}"
    }
    with (
        running_daphne(tmp_path, DEBUG="0") as one,
        running_daphne(tmp_path, DEBUG="0") as two,
    ):
        urls = [f"http://127.0.0.1:{port}{VENDOR_PARTS}" for port in (one, two)]
        for url in urls:
            for _ in range(3):
                assert requests.get(url, headers=headers, timeout=10).status_code == 200

        # when: an admin takes node_manage from the vendor role
        Group.objects.get(name="vendor").permissions.remove(node_manage())

        # then: the very next request to either process is refused
        for url in urls:
            refused = requests.get(url, headers=headers, timeout=10)
            assert refused.status_code == 403, refused.text
            assert refused.json()["error"]["code"] == "permission_denied"

        # and given back, the very next request is allowed again
        Group.objects.get(name="vendor").permissions.add(node_manage())
        assert [requests.get(u, headers=headers, timeout=10).status_code for u in urls] == [
            200,
            200,
        ]
