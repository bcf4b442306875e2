"""/ws/twins/<id>/ through the real ASGI application and channel layer: presence, cursors,
edits (acknowledged, broadcast in order, transformed, rejected), locks, catch-up, denials."""

from __future__ import annotations

import asyncio

import pytest
from asgiref.sync import sync_to_async

from apps.twins.services import twin_share
from tests.fixtures.studio import Studio
from tests.websockets import ws_open, ws_open_as

pytestmark = [pytest.mark.asyncio, pytest.mark.django_db(transaction=True)]


async def connect(user, twin_id, query=""):
    path = f"/ws/twins/{twin_id}/" + (f"?{query.lstrip('&')}" if query else "")
    return await ws_open_as(user, path)


async def until(ws, kind, **match):
    """The next message of `kind` (and matching fields), skipping others."""
    for _ in range(20):
        message = await ws.receive_json_from(timeout=5)
        if message["type"] == kind and all(message.get(k) == v for k, v in match.items()):
            return message
    raise AssertionError(f"no {kind} {match}")


async def test_two_editors_see_each_other_and_converge(studio: Studio):
    twin = studio.twin
    await sync_to_async(twin_share)(
        by=studio.designer, twin=twin, level="edit", user=studio.colleague
    )
    alice, ok, _ = await connect(studio.designer, twin.pk)
    assert ok
    snap_a = await until(alice, "snapshot")
    assert snap_a["version"] == 1 and snap_a["can_edit"] and snap_a["properties"]["tools"]

    bob, ok, _ = await connect(studio.colleague, twin.pk)
    snap_b = await until(bob, "snapshot")
    joined = await until(alice, "presence", event="join")
    assert (
        joined["peer"]["user"] == "colleague@f.test"
        and joined["peer"]["id"] == snap_b["peer"]["id"]
    )
    here = await until(bob, "presence", event="here")  # who was here already
    assert here["peer"]["user"] == "designer@f.test"

    await bob.send_json_to({"type": "cursor", "path": "spindle/bearing"})
    cursor = await until(alice, "cursor")
    assert cursor == {"type": "cursor", "peer": snap_b["peer"]["id"], "path": "spindle/bearing"}
    await alice.send_json_to({"type": "cursor", "position": [1, 2.5, "x"]})
    assert (await until(alice, "error"))["code"] == "invalid"

    # both edit version 1 at once: the server orders them, transforms the second
    await alice.send_json_to(
        {
            "type": "edit",
            "id": "a1",
            "base_version": 1,
            "ops": [{"op": "insert", "path": "tools/0", "value": "probe"}],
        }
    )
    await bob.send_json_to(
        {
            "type": "edit",
            "id": "b1",
            "base_version": 1,
            "ops": [{"op": "set", "path": "tools/2", "value": "T3"}],
        }
    )
    ack_a = await until(alice, "ack", id="a1")
    ack_b = await until(bob, "ack", id="b1")
    assert {ack_a["version"], ack_b["version"]} == {2, 3}
    seen_a = [await until(alice, "twin.edit", version=v) for v in (2, 3)]
    seen_b = [await until(bob, "twin.edit", version=v) for v in (2, 3)]
    assert [e["ops"] for e in seen_a] == [e["ops"] for e in seen_b]  # same order for all

    from apps.twins.ot import apply, parse_stored

    doc = snap_a["properties"]
    for event in seen_a:
        doc = apply(doc, [parse_stored(op) for op in event["ops"]])
    fresh = await sync_to_async(lambda: type(twin).objects.get(pk=twin.pk).properties)()
    assert doc == fresh and fresh["tools"] == ["probe", "t1", "t2", "T3"]

    # an edit that lost its target is rejected with the reason and the current version
    await alice.send_json_to(
        {
            "type": "edit",
            "id": "a2",
            "base_version": 3,
            "ops": [{"op": "remove", "path": "spindle"}],
        }
    )
    await until(alice, "ack", id="a2")
    await bob.send_json_to(
        {
            "type": "edit",
            "id": "b2",
            "base_version": 3,
            "ops": [{"op": "set", "path": "spindle/max_rpm", "value": 1}],
        }
    )
    rejected = await until(bob, "reject", id="b2")
    assert rejected["reason"] == "conflict" and rejected["version"] == 4
    assert "'spindle/max_rpm' was removed" in rejected["message"]

    await bob.disconnect()
    left = await until(alice, "presence", event="leave")
    assert left["peer"]["user"] == "colleague@f.test"
    await alice.disconnect()


async def test_locks_over_the_socket_and_their_events(studio: Studio):
    twin = studio.twin
    await sync_to_async(twin_share)(
        by=studio.designer, twin=twin, level="edit", user=studio.colleague
    )
    alice, _, _ = await connect(studio.designer, twin.pk)
    await until(alice, "snapshot")
    bob, _, _ = await connect(studio.colleague, twin.pk)
    await until(bob, "snapshot")

    await alice.send_json_to({"type": "lock", "action": "acquire", "path": "spindle/bearing"})
    ok = await until(alice, "lock.ok")
    event = await until(bob, "lock.acquired")
    assert event["path"] == "spindle/bearing" and event["holder"] == "designer@f.test"
    await bob.send_json_to({"type": "lock", "action": "acquire", "path": "spindle"})
    refused = await until(bob, "error")
    assert refused["code"] == "conflict" and "designer@f.test" in refused["message"]
    await bob.send_json_to(
        {
            "type": "edit",
            "id": "b1",
            "base_version": 1,
            "ops": [{"op": "set", "path": "spindle/bearing/type", "value": "x"}],
        }
    )
    assert (await until(bob, "reject", id="b1"))["reason"] == "locked"
    await bob.send_json_to({"type": "lock", "action": "release", "lock": ok["lock"]})
    assert (await until(bob, "error"))["code"] == "forbidden"
    await alice.send_json_to({"type": "lock", "action": "release", "lock": ok["lock"]})
    await until(bob, "lock.released", lock=ok["lock"])
    await alice.disconnect()
    await bob.disconnect()


async def test_a_reconnecting_client_catches_up_and_viewers_cannot_edit(studio: Studio):
    twin = studio.twin
    alice, _, _ = await connect(studio.designer, twin.pk)
    await until(alice, "snapshot")
    for i, value in enumerate([10, 20], start=1):
        await alice.send_json_to(
            {
                "type": "edit",
                "id": f"e{i}",
                "base_version": i,
                "ops": [{"op": "set", "path": "speed", "value": value}],
            }
        )
        await until(alice, "ack", id=f"e{i}")
    await alice.disconnect()

    back, _, _ = await connect(studio.designer, twin.pk, "&after=1")
    snapshot = await until(back, "snapshot")
    assert snapshot["version"] == 3
    missed = await until(back, "twin.edit")
    assert missed["version"] == 2 and missed["ops"][0]["value"] == 10
    assert (await until(back, "twin.edit"))["version"] == 3
    await back.disconnect()

    viewer, ok, _ = await connect(studio.viewer, twin.pk)  # same organization: may watch
    assert ok and (await until(viewer, "snapshot"))["can_edit"] is False
    await viewer.send_json_to(
        {"type": "edit", "id": "v1", "base_version": 3, "ops": [{"op": "remove", "path": "speed"}]}
    )
    assert (await until(viewer, "reject", id="v1"))["reason"] == "forbidden"
    await viewer.send_json_to({"type": "edit", "id": "v2", "ops": "nope"})
    assert (await until(viewer, "reject", id="v2"))["reason"] == "invalid"
    await viewer.send_json_to({"type": "dance"})
    assert (await until(viewer, "error"))["code"] == "unknown_type"
    await viewer.disconnect()


async def test_strangers_and_anonymous_are_turned_away(studio: Studio):
    twin = studio.twin
    _, ok, code = await connect(studio.outsider, twin.pk)
    assert not ok and code == 4403
    _, ok, code = await connect(studio.designer, 999999)
    assert not ok and code == 4403
    _, ok, code = await ws_open(f"/ws/twins/{twin.pk}/")
    assert not ok and code == 4401


async def test_silent_clients_are_dropped_and_their_peers_told(studio: Studio, monkeypatch):
    from apps.twins import consumers

    monkeypatch.setattr(consumers, "HEARTBEAT_S", 0.3)
    monkeypatch.setattr(consumers, "STALE_AFTER_S", 0.8)
    twin = studio.twin
    alice, _, _ = await connect(studio.designer, twin.pk)
    await until(alice, "snapshot")
    quiet, _, _ = await connect(studio.colleague, twin.pk)
    await until(quiet, "snapshot")
    await until(alice, "presence", event="join")

    async def beat() -> None:  # alice keeps beating; the other says nothing
        while True:
            await alice.send_json_to({"type": "heartbeat"})
            await asyncio.sleep(0.1)

    beating = asyncio.create_task(beat())
    output = {"type": ""}
    while output["type"] != "websocket.close":  # (presence messages first)
        output = await quiet.receive_output(timeout=3)
    assert output["code"] == 4408 and output["reason"]
    left = await until(alice, "presence", event="leave")
    assert left["peer"]["user"] == "colleague@f.test"
    beating.cancel()
    await alice.disconnect()


async def test_a_revoked_share_closes_the_outsiders_socket_with_4403(studio: Studio, settings):
    settings.WS_RECHECK_SECONDS = 0.05
    twin = studio.twin
    await sync_to_async(twin_share)(
        by=studio.designer, twin=twin, level="view", user=studio.outsider
    )
    outsider, ok, _ = await connect(studio.outsider, twin.pk)
    assert ok
    await until(outsider, "snapshot")
    assert await outsider.receive_nothing(timeout=0.3)  # re-checks pass while the share holds
    await sync_to_async(twin_share)(
        by=studio.designer, twin=twin, level="none", user=studio.outsider
    )
    close = await outsider.receive_close()
    assert close["code"] == 4403 and close["reason"]
    await outsider.disconnect()
