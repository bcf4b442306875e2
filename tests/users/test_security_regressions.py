"""Regression tests for the foundation's security review: each was a working attack once."""

from __future__ import annotations

from typing import Any

import pytest
from asgiref.sync import sync_to_async
from channels.testing import WebsocketCommunicator
from django.contrib.auth.models import Group
from django.test import Client

from apps.users.models import EncryptedTOTPDevice
from apps.users.roles import Role
from apps.users.services import user_set_role
from apps.users.tokens import tokens_issue
from imewe.asgi import application
from tests.conftest import jwt_client, portal_client
from tests.users.factories import PASSWORD, current_code, totp_device_for
from tests.websockets import ORIGIN, ws_open


def password_only_session(user) -> Client:
    client = Client()
    client.force_login(user, backend="django.contrib.auth.backends.ModelBackend")
    return client


@pytest.mark.django_db
def test_django_admin_login_page_is_ours():
    response = Client().get("/admin/login/?next=/admin/")
    assert response.status_code == 302
    assert response["Location"] == "/account/login/?next=/admin/"


@pytest.mark.django_db
@pytest.mark.parametrize("url", ["/designer/", "/vendor/", "/ops/", "/notifications/", "/admin/"])
def test_unverified_admin_session_reaches_only_the_2fa_pages(make_user, url):
    admin = make_user(Role.ADMIN)
    totp_device_for(admin)
    response = password_only_session(admin).get(url)
    assert response.status_code == 302
    assert response["Location"].startswith("/account/2fa/verify/")


@pytest.mark.django_db
def test_the_2fa_page_offers_no_portal_links_or_live_feed_before_the_second_factor(make_user):
    admin = make_user(Role.ADMIN)
    totp_device_for(admin)
    html = password_only_session(admin).get("/account/2fa/verify/").content.decode()
    assert "Sign out" in html
    for absent in ('href="/ops/"', "/notifications/", "notifications.js", "Audit log"):
        assert absent not in html
    verified = portal_client(admin).get("/ops/").content.decode()
    assert 'href="/ops/"' in verified and "notifications.js" in verified


@pytest.mark.django_db
def test_password_alone_cannot_replace_the_second_factor(make_user):
    admin = make_user(Role.ADMIN)
    device = totp_device_for(admin)
    client = password_only_session(admin)
    response = client.get("/account/2fa/?restart=1")
    assert response.status_code == 302 and response["Location"].startswith("/account/2fa/verify/")
    response = client.post("/account/2fa/", {"token": "123456"})
    assert response.status_code == 302
    assert EncryptedTOTPDevice.objects.get(user=admin, confirmed=True).pk == device.pk
    assert not EncryptedTOTPDevice.objects.filter(user=admin, confirmed=False).exists()


@pytest.mark.django_db
def test_promoted_users_old_token_stops_working(make_user):
    user = make_user(Role.DESIGNER)
    tokens = tokens_issue(user=user, otp_verified=False)
    client = Client()
    headers: dict[str, Any] = {"HTTP_AUTHORIZATION": f"Bearer {tokens.access_token}"}
    assert client.get("/api/v1/auth/me/", **headers).status_code == 200
    user_set_role(user=user, role=Role.ADMIN)
    response = client.get("/api/v1/users/", **headers)
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "role_changed"
    refresh = client.post(
        "/api/v1/auth/token/refresh/", {"refresh": str(tokens)}, content_type="application/json"
    )
    assert refresh.status_code == 401  # blacklisted with the role change


@pytest.mark.django_db
def test_admin_token_without_second_factor_is_refused(make_user):
    admin = make_user(Role.ADMIN)
    access = tokens_issue(user=admin, otp_verified=False).access_token
    response = Client().get("/api/v1/users/", HTTP_AUTHORIZATION=f"Bearer {access}")
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "otp_required"


@pytest.mark.django_db
def test_password_change_ends_every_token(make_user):
    user = make_user()
    tokens = tokens_issue(user=user, otp_verified=False)
    user.set_password("a-new-password-77")
    user.save()
    client = Client()
    me = client.get("/api/v1/auth/me/", HTTP_AUTHORIZATION=f"Bearer {tokens.access_token}")
    assert me.status_code == 401
    refresh = client.post(
        "/api/v1/auth/token/refresh/", {"refresh": str(tokens)}, content_type="application/json"
    )
    assert refresh.status_code == 401
    assert refresh.json()["error"]["code"] == "password_changed"


@pytest.mark.django_db
def test_logout_with_a_spent_refresh_token_still_revokes_the_access_token(api, make_user):
    user = make_user()
    tokens = api.post(
        "/api/v1/auth/token/", {"email": user.email, "password": PASSWORD}, format="json"
    ).json()
    rotated = api.post(
        "/api/v1/auth/token/refresh/", {"refresh": tokens["refresh"]}, format="json"
    ).json()
    client = Client()
    headers: dict[str, Any] = {"HTTP_AUTHORIZATION": f"Bearer {rotated['access']}"}
    response = client.post(
        "/api/v1/auth/logout/",
        {"refresh": tokens["refresh"]},
        content_type="application/json",
        **headers,
    )
    assert response.status_code == 400
    assert client.get("/api/v1/auth/me/", **headers).status_code == 401


@pytest.mark.django_db
def test_spoofed_forwarded_for_does_not_escape_the_throttle(make_user, monkeypatch):
    from rest_framework.throttling import SimpleRateThrottle

    monkeypatch.setitem(SimpleRateThrottle.THROTTLE_RATES, "user_read", "100/minute")
    client = jwt_client(make_user())
    for i in range(100):
        client.get("/api/v1/auth/me/", HTTP_X_FORWARDED_FOR=f"198.51.100.{i}")
    assert client.get("/api/v1/auth/me/", HTTP_X_FORWARDED_FOR="203.0.113.9").status_code == 429


@pytest.mark.django_db
def test_anonymous_throttle_counts_the_socket_address_not_the_header(api):
    statuses = [
        api.post(
            "/api/v1/auth/verify-email/",
            {"uid": "x", "token": "y"},
            format="json",
            HTTP_X_FORWARDED_FOR=f"198.51.100.{i}",
        ).status_code
        for i in range(31)
    ]
    assert statuses[-1] == 429


@pytest.mark.django_db
def test_changing_role_in_django_admin_moves_the_group(make_user):
    admin = make_user(Role.ADMIN)
    target = make_user(Role.DESIGNER)
    client = portal_client(admin)
    page = client.get(f"/admin/users/user/{target.pk}/change/")
    assert page.status_code == 200
    form = page.context["adminform"].form
    data = {
        k: v
        for k, v in form.initial.items()
        if v is not None
        and k
        not in {"groups", "user_permissions", "password", "last_login", "date_joined", "is_staff"}
    }
    data.update(
        {
            "role": "admin",
            "email": target.email,
            "memberships-TOTAL_FORMS": 0,
            "memberships-INITIAL_FORMS": 0,
        }
    )
    response = client.post(f"/admin/users/user/{target.pk}/change/", data)
    assert response.status_code == 302, (
        response.context["adminform"].form.errors if response.context else ""
    )
    target.refresh_from_db()
    assert target.role == "admin" and target.is_staff
    assert list(target.groups.values_list("name", flat=True)) == ["admin"]
    assert Group.objects.get(name="admin").permissions.filter(codename="system_admin").exists()


@pytest.mark.django_db
def test_disabling_2fa_with_wrong_passwords_counts_towards_lockout(make_user):
    designer = make_user(Role.DESIGNER)
    device = totp_device_for(designer)
    client = portal_client(designer)
    for _ in range(5):
        device.refresh_from_db()
        device.last_t = -1
        device.throttling_failure_count = 0
        device.save()
        client.post(
            "/account/2fa/disable/", {"password": "guess-guess-1", "token": current_code(device)}
        )
    # The account is now locked: even the right password is refused at login.
    response = Client().post("/account/login/", {"email": designer.email, "password": PASSWORD})
    assert response.status_code == 429
    assert EncryptedTOTPDevice.objects.filter(user=designer).exists()


@pytest.mark.django_db  # /metrics reads the fleet's figures from the database
def test_metrics_only_for_internal_networks(client):
    assert client.get("/metrics", REMOTE_ADDR="203.0.113.5").status_code == 403
    assert client.get("/metrics", REMOTE_ADDR="10.1.2.3").status_code == 200


@pytest.mark.django_db
def test_audit_page_rejects_a_bad_ip_filter_politely(make_user):
    response = portal_client(make_user(Role.ADMIN)).get("/ops/audit/?ip=not-an-ip&action=bogus")
    assert response.status_code == 200
    assert b"is not an IP address" in response.content
    assert b"Unknown action" in response.content


@pytest.mark.asyncio
@pytest.mark.django_db(transaction=True)
async def test_a_verified_admin_session_opens_websockets(make_user):
    """The counterpart of the refusals below: a session verified with the second factor is
    enough for the portal's live feeds."""
    admin = await sync_to_async(make_user)(Role.ADMIN)
    client = await sync_to_async(portal_client)(admin)  # a verified session
    cookie = f"sessionid={client.cookies['sessionid'].value}".encode()
    ws, connected, _ = await ws_open("/ws/notifications/", [*ORIGIN, (b"cookie", cookie)])
    assert connected
    hello = await ws.receive_json_from(timeout=5)
    assert hello["type"] == "hello" and hello["user"] == admin.email
    await ws.disconnect()


@pytest.mark.asyncio
@pytest.mark.django_db(transaction=True)
async def test_session_with_a_deleted_device_is_not_verified_on_websockets(make_user):
    admin = await sync_to_async(make_user)(Role.ADMIN)
    client = await sync_to_async(portal_client)(admin)  # a verified session
    await sync_to_async(EncryptedTOTPDevice.objects.filter(user=admin).delete)()
    cookie = f"sessionid={client.cookies['sessionid'].value}".encode()
    _, connected, code = await ws_open("/ws/notifications/", [*ORIGIN, (b"cookie", cookie)])
    assert not connected and code == 4401


@pytest.mark.asyncio
@pytest.mark.django_db(transaction=True)
async def test_audit_feed_closes_when_the_admin_is_demoted(make_user, settings):
    from apps.core.audit import audit_log

    settings.WS_RECHECK_SECONDS = 0.05
    admin = await sync_to_async(make_user)(Role.ADMIN)
    access = await sync_to_async(
        lambda: str(tokens_issue(user=admin, otp_verified=True).access_token)
    )()
    ws = WebsocketCommunicator(
        application, f"/ws/audit/?token={access}", headers=[(b"origin", b"http://testserver")]
    )
    assert (await ws.connect())[0]
    await sync_to_async(user_set_role)(user=admin, role=Role.VIEWER)
    await sync_to_async(audit_log)(action="auth.login_failed", actor_email="x@example.test")
    output = await ws.receive_output(timeout=5)
    while output["type"] == "websocket.send":  # entries sent before the recheck noticed
        output = await ws.receive_output(timeout=5)
    # A token issued for another role no longer signs in (the API answers it 401 too).
    assert output["type"] == "websocket.close" and output["code"] == 4401
