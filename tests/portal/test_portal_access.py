from __future__ import annotations

import pytest
from django.test import Client

from apps.core.models import AuditLog
from apps.users.roles import Role
from tests.conftest import jwt_client, portal_client
from tests.users.factories import PASSWORD

ALLOWED = {
    "/designer/": {Role.ADMIN, Role.DESIGNER, Role.ENGINEER, Role.VIEWER},
    "/vendor/": {Role.ADMIN, Role.VENDOR},
    "/ops/": {Role.ADMIN, Role.OPERATOR, Role.ENGINEER},
    "/ops/audit/": {Role.ADMIN},
    "/engineering/": {Role.ADMIN, Role.ENGINEER},
}
HOME = {
    Role.ADMIN: "/ops/",
    Role.DESIGNER: "/designer/",
    Role.ENGINEER: "/engineering/",
    Role.VENDOR: "/vendor/",
    Role.OPERATOR: "/ops/",
    Role.VIEWER: "/designer/",
}


@pytest.mark.django_db
@pytest.mark.parametrize("role", list(Role))
@pytest.mark.parametrize("url", list(ALLOWED))
def test_portal_pages_follow_the_roles(users_by_role, role, url):
    response = portal_client(users_by_role[role]).get(url)
    if role in ALLOWED[url]:
        assert response.status_code == 200
    else:
        assert response.status_code == 403
        assert b"Not allowed" in response.content  # the 403 page, not a crash
        assert AuditLog.objects.filter(
            action=AuditLog.Action.PERMISSION_DENIED, path=url, actor=users_by_role[role]
        ).exists()


@pytest.mark.django_db
@pytest.mark.parametrize("role", list(Role))
def test_each_role_lands_on_its_home_after_login(users_by_role, role):
    user = users_by_role[role]
    client = Client()
    response = client.post("/account/login/", {"email": user.email, "password": PASSWORD})
    assert response.status_code == 302
    landing = client.get(response["Location"])
    assert landing.status_code == 302
    if role == Role.ADMIN:
        # No second factor yet: the admin is sent to enrolment before anything else.
        assert landing["Location"] == "/account/2fa/?next=/"
    else:
        assert landing["Location"] == HOME[role]
        assert client.get(HOME[role]).status_code == 200


@pytest.mark.django_db
def test_anonymous_is_sent_to_login(client):
    response = client.get("/designer/")
    assert response.status_code == 302
    assert response["Location"].startswith("/account/login/?next=/designer/")


@pytest.mark.django_db
def test_admin_without_second_factor_cannot_reach_django_admin(users_by_role):
    client = Client()
    client.force_login(
        users_by_role[Role.ADMIN], backend="django.contrib.auth.backends.ModelBackend"
    )
    response = client.get("/admin/")
    assert response.status_code == 302
    assert response["Location"].startswith("/account/2fa/")
    assert portal_client(users_by_role[Role.ADMIN]).get("/admin/").status_code == 200


@pytest.mark.django_db
def test_audit_log_page_filters(users_by_role):
    client = portal_client(users_by_role[Role.ADMIN])
    portal_client(users_by_role[Role.VIEWER]).get("/vendor/")  # a denial to find
    page = client.get("/ops/audit/?action=perm.denied")
    assert page.status_code == 200
    assert b"viewer@example.test" in page.content
    empty = client.get("/ops/audit/?actor=nobody-at-all")
    assert b"No events match these filters." in empty.content


@pytest.mark.django_db
def test_pages_render_empty_states(users_by_role):
    response = portal_client(users_by_role[Role.VENDOR]).get("/vendor/")
    assert b"No fabrication nodes registered yet" in response.content
    assert b"Register your first machine" in response.content
    assert b"Forge" not in response.content


@pytest.mark.django_db
def test_the_favicon_is_found_where_browsers_look_for_it(client):
    # Django admin's pages have no icon link: browsers ask for /favicon.ico (a 404 before)
    response = client.get("/favicon.ico")
    assert response.status_code == 301 and response["Location"].endswith("img/favicon.svg")


@pytest.mark.django_db
def test_the_audit_log_reads_in_words_while_the_api_keeps_the_codes(users_by_role):
    from apps.core.audit import audit_log
    from apps.vendors.models import FabricationNode

    admin = users_by_role[Role.ADMIN]
    audit_log(
        action=AuditLog.Action.UPDATE,
        actor=admin,
        object_type="vendors.fabricationnode",
        object_id="7",
        object_repr="Mill-01 (CNC mill)",
        changes={
            "status": ["configured", "idle"],
            "approval": ["pending", "approved"],
            "approved_at": [None, "2026-12-07T10:40:42.436055+00:00"],
            "rated_power_kw": [7.5, 9.0],
        },
    )
    audit_log(
        action=AuditLog.Action.CREATE,
        actor=admin,
        object_type="energy.sitepowercap",
        object_repr="Site A: 12 kW",
        changes={"site_id": [None, 3], "max_kw": [None, 12.0], "node_kind": "cnc_mill"},
    )
    html = portal_client(admin).get("/ops/audit/").content.decode()
    for words in (
        "Fabrication node <small>Mill-01 (CNC mill)</small>",
        "Status: Configured → Idle",
        "Approval: Pending approval → Approved",
        "Approved at: 2026-12-07 10:40:42 UTC",
        "Site: 3",
        "Max (kW): 12.0",
        "Node kind: CNC mill",
        '<option value="vendors.fabricationnode" >Fabrication node</option>',
    ):
        assert words in html, words
    for code in ("vendors.fabricationnode <", "approved_at", "site_id", "max_kw", "cnc_mill<"):
        assert code not in html.replace('value="vendors.fabricationnode"', ""), code
    assert FabricationNode._meta.get_field("status").choices  # labels come from the model
    # filtering by a type keeps it chosen; the API keeps the raw codes
    chosen = portal_client(admin).get("/ops/audit/", {"object_type": "energy.sitepowercap"})
    assert '<option value="energy.sitepowercap" selected>' in chosen.content.decode()
    body = jwt_client(admin).get("/api/v1/audit-log/?object_type=vendors.fabricationnode").json()
    changes = body["results"][0]["changes"]
    assert changes["status"] == ["configured", "idle"] and "approved_at" in changes
