from __future__ import annotations

import pytest
from guardian.shortcuts import assign_perm

from apps.core.models import AuditLog
from apps.users.roles import Role
from tests.conftest import jwt_client
from tests.users.factories import OrganizationFactory

ADMIN_ONLY_GETS = ["/api/v1/users/", "/api/v1/audit-log/"]


@pytest.mark.django_db
@pytest.mark.parametrize("role", list(Role))
@pytest.mark.parametrize("url", ADMIN_ONLY_GETS)
def test_system_endpoints_only_for_admins(users_by_role, role, url):
    response = jwt_client(users_by_role[role]).get(url)
    if role == Role.ADMIN:
        assert response.status_code == 200
        assert "results" in response.json()
    else:
        assert response.status_code == 403
        assert response.json()["error"]["code"] == "permission_denied"


@pytest.mark.django_db
@pytest.mark.parametrize("url", ADMIN_ONLY_GETS + ["/api/v1/auth/me/", "/api/v1/organizations/"])
def test_anonymous_gets_401(api, url):
    response = api.get(url)
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "not_authenticated"


@pytest.mark.django_db
@pytest.mark.parametrize("role", [r for r in Role if r != Role.ADMIN])
def test_only_admin_changes_roles(users_by_role, role):
    target = users_by_role[Role.VIEWER]
    response = jwt_client(users_by_role[role]).post(
        f"/api/v1/users/{target.pk}/role/", {"role": "admin"}, format="json"
    )
    assert response.status_code == 403
    target.refresh_from_db()
    assert target.role == Role.VIEWER
    assert AuditLog.objects.filter(
        action=AuditLog.Action.PERMISSION_DENIED, actor=users_by_role[role]
    ).exists()


@pytest.mark.django_db
def test_admin_changes_role_and_it_is_audited(users_by_role):
    admin, target = users_by_role[Role.ADMIN], users_by_role[Role.VIEWER]
    response = jwt_client(admin).post(
        f"/api/v1/users/{target.pk}/role/", {"role": "engineer"}, format="json"
    )
    assert response.status_code == 200
    assert response.json()["role"] == "engineer"
    entry = AuditLog.objects.get(action=AuditLog.Action.ROLE_CHANGED, object_id=str(target.pk))
    assert entry.actor == admin
    assert entry.changes == {"role": ["viewer", "engineer"]}


@pytest.mark.django_db
def test_role_change_rejects_unknown_role(users_by_role):
    response = jwt_client(users_by_role[Role.ADMIN]).post(
        f"/api/v1/users/{users_by_role[Role.VIEWER].pk}/role/", {"role": "wizard"}, format="json"
    )
    assert response.status_code == 400
    assert "role" in response.json()["error"]["details"]


@pytest.mark.django_db
@pytest.mark.parametrize("role", list(Role))
def test_me_reports_the_role_scopes(users_by_role, role):
    body = jwt_client(users_by_role[role]).get("/api/v1/auth/me/").json()
    assert body["user"]["role"] == role.value
    if role == Role.ADMIN:
        assert body["permissions"]["system_admin"] == "all"
    else:
        assert "system_admin" not in body["permissions"]
    assert "telemetry_ingest" not in body["permissions"]


@pytest.mark.django_db
def test_organizations_visible_own_and_shared_only(make_user, org):
    other = OrganizationFactory.create(name="Other Co", slug="other-co")
    hidden = OrganizationFactory.create(name="Hidden Co", slug="hidden-co")
    designer = make_user(Role.DESIGNER, organization=org)
    client = jwt_client(designer)

    names = [o["name"] for o in client.get("/api/v1/organizations/").json()["results"]]
    assert names == ["Acme Design"]
    assert client.get(f"/api/v1/organizations/{other.pk}/").status_code == 404

    # given: the other org is shared with the designer through a guardian object permission
    assign_perm("users.view_organization", designer, other)
    names = [o["name"] for o in client.get("/api/v1/organizations/").json()["results"]]
    assert names == ["Acme Design", "Other Co"]
    assert client.get(f"/api/v1/organizations/{other.pk}/").status_code == 200
    assert client.get(f"/api/v1/organizations/{hidden.pk}/").status_code == 404


@pytest.mark.django_db
def test_only_owners_share_organizations(make_user, org):
    member = make_user(Role.DESIGNER, organization=org)
    outsider = make_user(Role.DESIGNER)
    response = jwt_client(member).post(
        f"/api/v1/organizations/{org.pk}/share/", {"user_email": outsider.email}, format="json"
    )
    assert response.status_code == 403

    member.memberships.update(org_role="owner")
    response = jwt_client(member).post(
        f"/api/v1/organizations/{org.pk}/share/", {"user_email": outsider.email}, format="json"
    )
    assert response.status_code == 200
    assert jwt_client(outsider).get(f"/api/v1/organizations/{org.pk}/").status_code == 200
    assert AuditLog.objects.filter(
        action=AuditLog.Action.PERMISSION_CHANGED, object_type="users.organization"
    ).exists()

    response = jwt_client(member).post(
        f"/api/v1/organizations/{org.pk}/share/",
        {"user_email": outsider.email, "grant": False},
        format="json",
    )
    assert response.status_code == 200
    assert jwt_client(outsider).get(f"/api/v1/organizations/{org.pk}/").status_code == 404


@pytest.mark.django_db
def test_admin_sees_every_organization(users_by_role):
    OrganizationFactory.create(name="Zeta", slug="zeta")
    body = jwt_client(users_by_role[Role.ADMIN]).get("/api/v1/organizations/").json()
    assert body["count"] == 2


@pytest.mark.django_db
def test_user_list_paginates_and_filters(users_by_role):
    client = jwt_client(users_by_role[Role.ADMIN])
    body = client.get("/api/v1/users/?page_size=2").json()
    assert body["count"] == 6 and len(body["results"]) == 2 and body["pages"] == 3
    body = client.get("/api/v1/users/?role=vendor").json()
    assert [u["email"] for u in body["results"]] == ["vendor@example.test"]
