"""Every websocket route refuses with a close code after the handshake (not a bare HTTP 403),
checks the Origin only for session cookies, and closes an open socket within seconds when the
caller's sign-in or right ends."""

from __future__ import annotations

import pytest
from asgiref.sync import sync_to_async
from django.test import Client
from rest_framework_simplejwt.tokens import AccessToken

from apps.core.services import notification_send
from apps.users.models import User
from apps.users.roles import Role
from apps.users.services import user_set_role
from apps.users.tokens import access_token_revoke
from tests.conftest import portal_client
from tests.websockets import ORIGIN, Socket, access_token, ws_open

pytestmark = [pytest.mark.asyncio, pytest.mark.django_db(transaction=True)]
ROUTES = [
    "/ws/notifications/",
    "/ws/audit/",
    "/ws/jobs/1/",
    "/ws/telemetry/?nodes=1",
    "/ws/twins/1/",
    "/ws/maintenance/",
]
FOREIGN = [(b"origin", b"http://evil.example")]


@pytest.fixture
def fast_recheck(settings):
    settings.WS_RECHECK_SECONDS = 0.05


def cookie_of(client: Client) -> tuple[bytes, bytes]:
    return (b"cookie", f"sessionid={client.cookies['sessionid'].value}".encode())


async def signed_in(user: User) -> tuple[Client, tuple[bytes, bytes]]:
    client = await sync_to_async(portal_client)(user)
    return client, cookie_of(client)


async def open_ok(path: str, headers: list[tuple[bytes, bytes]] = ORIGIN) -> Socket:
    ws, connected, code = await ws_open(path, headers)
    assert connected, code
    return ws


async def closed_with(ws: Socket) -> int:
    close = await ws.receive_close()
    assert close.get("reason")
    await ws.disconnect()  # as the server does once the client answers the close
    return close["code"]


# --- refusals ------------------------------------------------------------------------------


@pytest.mark.parametrize("path", ROUTES)
async def test_anonymous_callers_get_4401_after_the_handshake(path):
    ws, connected, code = await ws_open(path)
    assert ws.handshake_accepted  # a browser sees the code, not a failed handshake
    assert not connected and code == 4401 and ws.close_reason


async def test_a_forbidden_route_answers_4403_after_the_handshake(make_user):
    viewer = await sync_to_async(make_user)(Role.VIEWER)
    ws, connected, code = await ws_open(f"/ws/audit/?token={await access_token(viewer)}")
    assert ws.handshake_accepted and not connected and code == 4403


# --- Origin ----------------------------------------------------------------------------------


@pytest.mark.parametrize("headers", [[], FOREIGN], ids=["no-origin", "foreign-origin"])
async def test_token_clients_are_accepted_with_any_origin_or_none(make_user, headers):
    user = await sync_to_async(make_user)(Role.DESIGNER)
    ws = await open_ok(f"/ws/notifications/?token={await access_token(user)}", headers)
    assert (await ws.receive_json_from())["user"] == user.email
    await ws.disconnect()


@pytest.mark.parametrize("origin", [[], FOREIGN], ids=["no-origin", "foreign-origin"])
async def test_session_from_a_foreign_or_missing_origin_gets_4403(make_user, origin):
    user = await sync_to_async(make_user)(Role.DESIGNER)
    _, cookie = await signed_in(user)
    ws, connected, code = await ws_open("/ws/notifications/", [*origin, cookie])
    assert ws.handshake_accepted and not connected and code == 4403


async def test_session_from_our_own_or_a_trusted_origin_is_accepted(make_user, settings):
    settings.CSRF_TRUSTED_ORIGINS = ["https://portal.example"]
    user = await sync_to_async(make_user)(Role.DESIGNER)
    _, cookie = await signed_in(user)
    for origin in (b"http://testserver", b"https://portal.example"):
        ws = await open_ok("/ws/notifications/", [(b"origin", origin), cookie])
        assert (await ws.receive_json_from())["user"] == user.email
        await ws.disconnect()


async def test_anonymous_without_origin_is_told_to_sign_in():
    _, connected, code = await ws_open("/ws/notifications/", [])
    assert not connected and code == 4401


# --- rights that end while the socket is open ------------------------------------------------


async def test_a_socket_whose_rights_hold_stays_open_through_rechecks(make_user, fast_recheck):
    user = await sync_to_async(make_user)(Role.DESIGNER)
    ws = await open_ok(f"/ws/notifications/?token={await access_token(user)}")
    await ws.receive_json_from()  # hello
    assert await ws.receive_nothing(timeout=0.6)  # about ten re-checks
    await sync_to_async(notification_send)(user=user, title="Still here")
    assert (await ws.receive_json_from())["title"] == "Still here"
    await ws.send_json_to({"type": "ping"})
    assert await ws.receive_json_from() == {"type": "pong"}
    await ws.disconnect()


async def test_revoked_token_closes_the_socket_with_4401(make_user, fast_recheck):
    user = await sync_to_async(make_user)(Role.DESIGNER)
    token = await access_token(user)
    ws = await open_ok(f"/ws/notifications/?token={token}")
    claims = AccessToken(token)  # type: ignore[arg-type]
    await sync_to_async(access_token_revoke)(jti=claims["jti"], expires_at=claims["exp"])
    assert await closed_with(ws) == 4401


async def test_logged_out_session_closes_the_socket_with_4401(make_user, fast_recheck):
    user = await sync_to_async(make_user)(Role.DESIGNER)
    client, cookie = await signed_in(user)
    ws = await open_ok("/ws/notifications/", [*ORIGIN, cookie])
    await sync_to_async(client.logout)()
    assert await closed_with(ws) == 4401


@pytest.mark.parametrize("by", ["token", "session"])
async def test_deactivated_account_closes_the_socket_with_4401(make_user, fast_recheck, by):
    user = await sync_to_async(make_user)(Role.DESIGNER)
    if by == "token":
        ws = await open_ok(f"/ws/notifications/?token={await access_token(user)}")
    else:
        ws = await open_ok("/ws/notifications/", [*ORIGIN, (await signed_in(user))[1]])
    user.is_active = False
    await sync_to_async(user.save)(update_fields=["is_active"])
    assert await closed_with(ws) == 4401


async def test_changed_password_closes_token_and_session_sockets_with_4401(make_user, fast_recheck):
    user = await sync_to_async(make_user)(Role.DESIGNER)
    by_token = await open_ok(f"/ws/notifications/?token={await access_token(user)}")
    by_session = await open_ok("/ws/notifications/", [*ORIGIN, (await signed_in(user))[1]])
    await sync_to_async(user.set_password)("another-long-passphrase-9")
    await sync_to_async(user.save)()
    assert await closed_with(by_token) == 4401
    assert await closed_with(by_session) == 4401


async def test_role_change_ends_a_token_4401_and_a_sessions_audit_right_4403(
    make_user, fast_recheck
):
    admin = await sync_to_async(make_user)(Role.ADMIN)
    by_token = await open_ok(f"/ws/audit/?token={await access_token(admin)}")
    by_session = await open_ok("/ws/audit/", [*ORIGIN, (await signed_in(admin))[1]])
    await sync_to_async(user_set_role)(user=admin, role=Role.VIEWER)
    # the token was issued for the old role (the API refuses it too); the session still signs
    # the person in, but a viewer may not follow the audit log
    assert await closed_with(by_token) == 4401
    assert await closed_with(by_session) == 4403


async def test_nothing_is_relayed_after_the_close(make_user, fast_recheck):
    user = await sync_to_async(make_user)(Role.DESIGNER)
    token = await access_token(user)
    ws = await open_ok(f"/ws/notifications/?token={token}")
    await ws.receive_json_from()  # hello
    claims = AccessToken(token)  # type: ignore[arg-type]
    await sync_to_async(access_token_revoke)(jti=claims["jti"], expires_at=claims["exp"])
    close = await ws.receive_close()
    assert close["code"] == 4401
    await sync_to_async(notification_send)(user=user, title="Too late")
    assert await ws.receive_nothing(timeout=0.5)
    await ws.disconnect()


async def test_log_out_everywhere_closes_other_devices_sockets_with_4401(make_user, fast_recheck):
    from apps.users.tokens import user_tokens_end_everywhere

    user = await sync_to_async(make_user)(Role.DESIGNER)
    phone = await open_ok(f"/ws/notifications/?token={await access_token(user)}")
    browser = await open_ok("/ws/notifications/", [*ORIGIN, (await signed_in(user))[1]])
    # when: the user signs out everywhere from a third device
    await sync_to_async(user_tokens_end_everywhere)(user=user)
    assert await closed_with(phone) == 4401
    assert await closed_with(browser) == 4401
