"""Operational transformation of twin property edits: worked cases, and a property-based test
(hypothesis) in which several simulated clients edit concurrently against a server that orders
and transforms their operations; every client ends with the server's document."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from apps.twins.ot import Op, OpError, Rejected, apply, diff, parse_op, path_text, transform

DOC = {
    "spindle": {"max_rpm": 60000, "bearing": {"type": "angular_contact", "preload_n": 300}},
    "tools": ["t1", "t2", "t3"],
    "name": "Mill",
}


def op(raw: dict[str, Any], doc: dict[str, Any] = DOC) -> Op:
    return parse_op(raw, doc)


def kept(edit: Op, since: list[Op]) -> Op:
    """`edit` transformed past `since`, which must keep it."""
    result = transform(edit, since)
    assert isinstance(result, Op), result
    return result


def refused(edit: Op, since: list[Op]) -> Rejected:
    """`edit` transformed past `since`, which must reject it."""
    result = transform(edit, since)
    assert isinstance(result, Rejected), result
    return result


def test_operations_apply_like_json_patch():
    doc = apply(
        DOC,
        [
            op({"op": "set", "path": "spindle/bearing/type", "value": "ceramic"}),
            op({"op": "insert", "path": "tools/1", "value": "probe"}),
            op({"op": "remove", "path": "name"}),
        ],
    )
    assert doc["spindle"]["bearing"]["type"] == "ceramic" and "name" not in doc
    moved = apply(doc, [parse_op({"op": "move", "from": "tools/0", "path": "tools/3"}, doc)])
    assert moved["tools"] == ["probe", "t2", "t3", "t1"]
    assert DOC["tools"] == ["t1", "t2", "t3"]  # inputs are never changed
    assert diff(DOC, doc) == [
        {"op": "remove", "path": "/name"},
        {"op": "replace", "path": "/spindle/bearing/type", "value": "ceramic"},
        {"op": "add", "path": "/tools/1", "value": "probe"},
    ]


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ({"op": "grow", "path": "a"}, "'op' is one of"),
        ({"op": "set", "path": ""}, "non-empty string"),
        ({"op": "set", "path": "spindle/max_rpm"}, "needs a 'value'"),
        ({"op": "remove", "path": "spindle/nothing"}, "does not exist"),
        ({"op": "set", "path": "missing/deep", "value": 1}, "'missing' does not exist"),
        ({"op": "insert", "path": "spindle/0", "value": 1}, "works on a list position"),
        ({"op": "insert", "path": "tools/9", "value": 1}, "past the end"),
        ({"op": "set", "path": "tools/x", "value": 1}, "no position"),
        ({"op": "set", "path": "name/x", "value": 1}, "holds a value"),
        ({"op": "move", "from": "tools/0", "path": "gone/x"}, "does not exist"),
        ({"op": "move", "from": "spindle", "path": "spindle/inner"}, "inside itself"),
    ],
)
def test_bad_operations_say_what_is_wrong(raw, message):
    with pytest.raises(OpError, match=message):
        parse_op(raw, DOC)


def test_list_positions_shift_past_concurrent_inserts_and_removals():
    first = op({"op": "insert", "path": "tools/0", "value": "new"})
    edit_t3 = op({"op": "set", "path": "tools/2", "value": "T3"})
    assert kept(edit_t3, [first]).path == ("tools", 3)
    gone = op({"op": "remove", "path": "tools/0"})
    assert kept(edit_t3, [gone]).path == ("tools", 1)
    same_slot = op({"op": "insert", "path": "tools/0", "value": "mine"})
    assert kept(same_slot, [first]).path == ("tools", 1)  # the earlier insert stays first
    append = op({"op": "insert", "path": "tools/3", "value": "t4"})
    assert kept(append, [gone]).path == ("tools", 2)


def test_edits_that_lost_their_target_are_rejected_with_the_reason():
    gone = op({"op": "remove", "path": "spindle/bearing"})
    preload = op({"op": "set", "path": "spindle/bearing/preload_n", "value": 500})
    assert transform(preload, [gone]) == Rejected(
        "'spindle/bearing/preload_n' was removed by a concurrent edit."
    )
    replaced = op({"op": "set", "path": "spindle", "value": {"max_rpm": 1}})
    assert "'spindle' was replaced" in refused(preload, [replaced]).reason
    moved = op({"op": "move", "from": "spindle/bearing", "path": "bearing"})
    assert "moved by a concurrent edit" in refused(preload, [moved]).reason
    item = op({"op": "set", "path": "tools/0", "value": "x"})
    assert isinstance(transform(item, [op({"op": "remove", "path": "tools/0"})]), Rejected)
    # setting a key someone removed creates it again; the same key set twice: the later wins
    name = op({"op": "set", "path": "name", "value": "Mill-2"})
    assert transform(name, [op({"op": "remove", "path": "name"})]) == name
    assert transform(name, [op({"op": "set", "path": "name", "value": "X"})]) == name


def test_a_move_follows_the_list_it_moves_in():
    move_last_first = op({"op": "move", "from": "tools/2", "path": "tools/0"})
    inserted = op({"op": "insert", "path": "tools/0", "value": "new"})
    moved = kept(move_last_first, [inserted])
    assert (moved.source, moved.path) == (("tools", 3), ("tools", 1))
    after = apply(apply(DOC, [inserted]), [moved])
    assert after["tools"] == ["new", "t3", "t1", "t2"]


# --- Property-based: concurrent clients converge -------------------------------------------------

VALUES = st.recursive(
    st.integers(-5, 5) | st.sampled_from(["a", "b", "c"]) | st.booleans(),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.sampled_from("xyz"), inner, max_size=3)
    ),
    max_leaves=5,
)


def _paths(doc: Any, prefix: tuple = ()) -> list[tuple]:
    out = []
    items = (
        doc.items() if isinstance(doc, dict) else enumerate(doc) if isinstance(doc, list) else []
    )
    for key, value in items:
        out.append((*prefix, key))
        out.extend(_paths(value, (*prefix, key)))
    return out


def _containers(doc: Any, prefix: tuple = ()) -> list[tuple[tuple, Any]]:
    out = [(prefix, doc)] if isinstance(doc, (dict, list)) else []
    items = (
        doc.items() if isinstance(doc, dict) else enumerate(doc) if isinstance(doc, list) else []
    )
    for key, value in items:
        out.extend(_containers(value, (*prefix, key)))
    return out


def _text(path: tuple) -> str:
    return path_text(path)


def draw_op(data: st.DataObject, doc: dict[str, Any]) -> dict[str, Any] | None:
    """A raw operation that is valid against `doc`, as a client would send it."""
    kind = data.draw(st.sampled_from(["set", "set", "remove", "insert", "move"]))
    paths = _paths(doc)
    containers = _containers(doc)
    if kind == "set":
        parent, node = data.draw(st.sampled_from(containers))
        if isinstance(node, list):
            if not node:
                return None
            key: Any = data.draw(st.integers(0, len(node) - 1))
        else:
            key = data.draw(st.sampled_from(["x", "y", "z", "name", "tools"]))
        return {"op": "set", "path": _text((*parent, key)), "value": data.draw(VALUES)}
    if kind == "remove":
        if not paths:
            return None
        return {"op": "remove", "path": _text(data.draw(st.sampled_from(paths)))}
    lists = [(p, n) for p, n in containers if isinstance(n, list)]
    if kind == "insert":
        if not lists:
            return None
        parent, node = data.draw(st.sampled_from(lists))
        index = data.draw(st.integers(0, len(node)))
        return {"op": "insert", "path": _text((*parent, index)), "value": data.draw(VALUES)}
    if not paths:
        return None
    source = data.draw(st.sampled_from(paths))
    without = apply(doc, [Op("remove", source)])
    targets = [
        (p, n)
        for p, n in _containers(without)
        if p[: len(source)] != source or len(p) < len(source)
    ]
    parent, node = data.draw(st.sampled_from(targets))
    key = (
        data.draw(st.integers(0, len(node)))
        if isinstance(node, list)
        else data.draw(st.sampled_from(["x", "y", "moved"]))
    )
    return {"op": "move", "from": _text(source), "path": _text((*parent, key))}


class Server:
    def __init__(self, doc: dict[str, Any]) -> None:
        self.doc = copy.deepcopy(doc)
        self.log: list[Op] = []  # op applied to reach version i + 1

    @property
    def version(self) -> int:
        return len(self.log)

    def receive(self, raw: dict[str, Any], base: int, base_doc: dict[str, Any]) -> Op | Rejected:
        parsed = parse_op(raw, base_doc)  # the client checked it against its base version
        result = transform(parsed, self.log[base:])
        if isinstance(result, Rejected):
            return result
        self.doc = apply(self.doc, [result])  # must never fail once transformed
        self.log.append(result)
        return result


class Client:
    def __init__(self, doc: dict[str, Any]) -> None:
        self.doc = copy.deepcopy(doc)  # the confirmed document
        self.log: list[Op] = []  # the server operations applied here, in order
        self.outbox: list[tuple[dict[str, Any], int, dict[str, Any]]] = []
        self.inbox: list[Op] = []  # server operations not yet applied here

    @property
    def version(self) -> int:
        return len(self.log)

    def view(self) -> dict[str, Any]:
        """What the user sees: the confirmed document and their unconfirmed edits, each
        transformed as the server will (against what this client has seen)."""
        doc, predicted = self.doc, list(self.log)
        for raw, base, base_doc in self.outbox:
            mine = transform(parse_op(raw, base_doc), predicted[base:])
            if not isinstance(mine, Rejected):
                doc = apply(doc, [mine])
                predicted.append(mine)
        return doc

    def receive(self) -> None:
        op = self.inbox.pop(0)
        self.doc = apply(self.doc, [op])
        self.log.append(op)


class Collaboration(RuleBasedStateMachine):
    """Three clients and a server; the network delivers messages in order per client but
    interleaves clients arbitrarily."""

    def __init__(self) -> None:
        super().__init__()
        self.server = Server(DOC)
        self.clients = [Client(DOC) for _ in range(3)]
        self.rejected = 0

    @rule(who=st.integers(0, 2), data=st.data())
    def edit(self, who: int, data: st.DataObject) -> None:
        client = self.clients[who]
        raw = draw_op(data, client.doc)
        if raw is not None:
            parse_op(raw, client.doc)  # valid where it was made
            client.outbox.append((raw, client.version, copy.deepcopy(client.doc)))

    @precondition(lambda self: any(c.outbox for c in self.clients))
    @rule(data=st.data())
    def server_receives(self, data: st.DataObject) -> None:
        who = data.draw(st.sampled_from([i for i, c in enumerate(self.clients) if c.outbox]))
        author = self.clients[who]
        up_to_date = author.version == self.server.version
        if up_to_date:  # the author has seen everything before its edit: it predicted right
            predicted = apply(author.doc, [])
            raw, base, base_doc = author.outbox[0]
            first = transform(parse_op(raw, base_doc), author.log[base:])
            if not isinstance(first, Rejected):
                predicted = apply(predicted, [first])
        raw, base, base_doc = author.outbox.pop(0)
        result = self.server.receive(raw, base, base_doc)
        if up_to_date:
            assert self.server.doc == predicted
        if isinstance(result, Rejected):
            self.rejected += 1
            assert result.reason  # the client learns why
            return
        for client in self.clients:
            client.inbox.append(result)

    @precondition(lambda self: any(c.inbox for c in self.clients))
    @rule(data=st.data())
    def deliver(self, data: st.DataObject) -> None:
        who = data.draw(st.sampled_from([i for i, c in enumerate(self.clients) if c.inbox]))
        self.clients[who].receive()

    @invariant()
    def clients_follow_the_server_and_their_views_apply(self) -> None:
        for client in self.clients:
            assert client.version + len(client.inbox) == self.server.version
            assert client.doc == apply(DOC, self.server.log[: client.version])
            client.view()  # predicted edits always apply

    def teardown(self) -> None:
        # flush: every edit reaches the server, every server operation every client
        while any(c.outbox for c in self.clients):
            for client in self.clients:
                if client.outbox:
                    raw, base, base_doc = client.outbox.pop(0)
                    result = self.server.receive(raw, base, base_doc)
                    if not isinstance(result, Rejected):
                        for other in self.clients:
                            other.inbox.append(result)
        for client in self.clients:
            while client.inbox:
                client.receive()
            assert client.doc == self.server.doc
            assert client.view() == self.server.doc


Collaboration.TestCase.settings = settings(
    max_examples=150,
    stateful_step_count=30,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
TestCollaboration = Collaboration.TestCase
