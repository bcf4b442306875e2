from __future__ import annotations

import pytest
from asgiref.sync import sync_to_async
from channels.testing import WebsocketCommunicator
from django.test import Client

from apps.core.services import notification_send
from apps.users.roles import Role
from apps.users.tokens import access_token_revoke, tokens_issue
from tests.websockets import ws_open

pytestmark = [pytest.mark.asyncio, pytest.mark.django_db(transaction=True)]
HEADERS = [(b"origin", b"http://testserver"), (b"host", b"testserver")]


def session_client(user) -> Client:
    client = Client()
    client.force_login(user, backend="django.contrib.auth.backends.ModelBackend")
    return client


def session_headers(user) -> list[tuple[bytes, bytes]]:
    client = session_client(user)
    cookie = f"sessionid={client.cookies['sessionid'].value}".encode()
    return [*HEADERS, (b"cookie", cookie)]


async def connect(
    path: str, headers: list[tuple[bytes, bytes]] = HEADERS
) -> tuple[WebsocketCommunicator, bool, int | None]:
    return await ws_open(path, headers)


async def test_anonymous_is_refused():
    ws, connected, code = await connect("/ws/notifications/")
    assert not connected
    assert code == 4401


async def test_session_user_receives_own_notifications_only(make_user):
    alice = await sync_to_async(make_user)(Role.DESIGNER)
    bob = await sync_to_async(make_user)(Role.DESIGNER)
    ws_alice, ok_a, _ = await connect(
        "/ws/notifications/", await sync_to_async(session_headers)(alice)
    )
    ws_bob, ok_b, _ = await connect("/ws/notifications/", await sync_to_async(session_headers)(bob))
    assert ok_a and ok_b
    assert (await ws_alice.receive_json_from())["type"] == "hello"
    assert (await ws_bob.receive_json_from())["type"] == "hello"

    # when: a notification for Alice is sent (and its transaction commits)
    await sync_to_async(notification_send)(user=alice, title="Part printed", body="Bracket #3")

    message = await ws_alice.receive_json_from(timeout=5)
    assert message["type"] == "notification"
    assert message["title"] == "Part printed"
    assert await ws_bob.receive_nothing(timeout=0.5)
    await ws_alice.disconnect()
    await ws_bob.disconnect()


async def test_jwt_query_token_is_accepted_and_revoked_token_refused(make_user):
    user = await sync_to_async(make_user)(Role.VENDOR)
    access = await sync_to_async(lambda: tokens_issue(user=user, otp_verified=True).access_token)()
    ws, connected, _ = await connect(f"/ws/notifications/?token={access}")
    assert connected
    hello = await ws.receive_json_from()
    assert hello == {"type": "hello", "user": user.email, "unread": 0}
    await ws.send_json_to({"type": "ping"})
    assert await ws.receive_json_from() == {"type": "pong"}
    await ws.disconnect()

    await sync_to_async(access_token_revoke)(jti=access["jti"], expires_at=access["exp"])
    _, connected, code = await connect(f"/ws/notifications/?token={access}")
    assert not connected and code == 4401
    _, connected, code = await connect("/ws/notifications/?token=garbage")
    assert not connected and code == 4401


async def test_admin_session_without_second_factor_is_refused(make_user):
    admin = await sync_to_async(make_user)(Role.ADMIN)
    _, connected, code = await connect(
        "/ws/notifications/", await sync_to_async(session_headers)(admin)
    )
    assert not connected and code == 4401


async def test_foreign_origin_is_refused(make_user):
    user = await sync_to_async(make_user)(Role.DESIGNER)
    headers = [
        (b"origin", b"http://evil.example"),
        *[h for h in await sync_to_async(session_headers)(user) if h[0] != b"origin"],
    ]
    ws, connected, code = await connect("/ws/notifications/", headers)
    assert ws.handshake_accepted and not connected and code == 4403


async def test_mark_read_over_the_socket(make_user):
    user = await sync_to_async(make_user)(Role.DESIGNER)
    note = await sync_to_async(notification_send)(user=user, title="Hello")
    access = await sync_to_async(lambda: tokens_issue(user=user, otp_verified=True).access_token)()
    ws, connected, _ = await connect(f"/ws/notifications/?token={access}")
    assert (await ws.receive_json_from())["unread"] == 1
    await ws.send_json_to({"type": "mark_read", "ids": [note.pk]})
    assert await ws.receive_json_from() == {"type": "marked_read", "count": 1}
    await ws.send_json_to({"type": "mark_read", "ids": "all"})
    assert (await ws.receive_json_from())["code"] == "invalid"
    await ws.disconnect()


@pytest.mark.parametrize("role", [r for r in Role if r != Role.ADMIN])
async def test_audit_stream_refuses_non_admin_roles(make_user, role):
    user = await sync_to_async(make_user)(role)
    access = await sync_to_async(lambda: tokens_issue(user=user, otp_verified=True).access_token)()
    _, connected, code = await connect(f"/ws/audit/?token={access}")
    assert not connected and code == 4403


async def test_audit_stream_refuses_anonymous():
    _, connected, code = await connect("/ws/audit/")
    assert not connected and code == 4401


async def test_audit_stream_pushes_new_entries_to_admins(make_user):
    admin = await sync_to_async(make_user)(Role.ADMIN)
    access = await sync_to_async(lambda: tokens_issue(user=admin, otp_verified=True).access_token)()
    ws, connected, _ = await connect(f"/ws/audit/?token={access}")
    assert connected
    # when: someone is denied a portal page
    viewer = await sync_to_async(make_user)(Role.VIEWER)
    while not await ws.receive_nothing(timeout=0.2):  # drop the entries of creating the viewer
        await ws.receive_json_from()
    response = await sync_to_async(lambda: session_client(viewer).get("/ops/"))()
    assert response.status_code == 403
    received = [await ws.receive_json_from(timeout=5) for _ in range(2)]  # login, then denial
    assert [m["action"] for m in received] == ["auth.login", "perm.denied"]
    assert all(m["type"] == "audit" and m["actor_email"] == viewer.email for m in received)
    await ws.disconnect()
