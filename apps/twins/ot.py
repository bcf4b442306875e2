"""Edit operations on a twin's properties document and their operational transformation.

The document is a JSON object. A path is a list of keys (dict keys are strings, list positions
ints); on the wire it is a slash-separated string ("spindle/bearings/0/type", "~1" for a "/" in a
key, "~0" for "~", as in RFC 6901). Four operations:

    {"op": "set", "path": P, "value": V}      create or replace a dict key; replace a list item
    {"op": "remove", "path": P}               delete a dict key or a list item
    {"op": "insert", "path": L/i, "value": V} insert into the list L before position i (i may be
                                              its length: append)
    {"op": "move", "from": F, "path": T}      take the value at F out, then put it at T (T read in
                                              the document without F, as JSON Patch does)

The server orders operations per twin. An operation made against an older version is transformed
against each operation applied since (`transform`): list positions shift past concurrent inserts
and removals; an edit inside a subtree that a concurrent operation removed, replaced or moved
cannot keep its meaning and is rejected with the reason, so the client rebases. Concurrent `set`s
of the same path: the later one in the server's order wins. This module is pure (no Django).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, replace
from typing import Any

import jsonpatch
from jsonpointer import JsonPointer, JsonPointerException

Path = tuple[str | int, ...]
OPS = ("set", "remove", "insert", "move")
MAX_DEPTH = 32


class OpError(ValueError):
    """An operation that is malformed or does not fit the document."""


@dataclass(frozen=True)
class Op:
    kind: str
    path: Path
    value: Any = None
    source: Path | None = None  # move's "from"

    def as_json(self) -> dict[str, Any]:
        """The wire and storage form: text paths, and typed ones (list positions as numbers)
        under "parts" / "from_parts" so a stored operation can be transformed again."""
        out: dict[str, Any] = {
            "op": self.kind,
            "path": path_text(self.path),
            "parts": list(self.path),
        }
        if self.kind in ("set", "insert"):
            out["value"] = self.value
        if self.kind == "move":
            assert self.source is not None
            out["from"] = path_text(self.source)
            out["from_parts"] = list(self.source)
        return out


@dataclass(frozen=True)
class Rejected:
    reason: str


# --- Paths ---------------------------------------------------------------------------------


def parse_path(text: Any) -> tuple[str, ...]:
    """ "a/b/0" -> ("a", "b", "0"); positions become ints once applied to the document."""
    if not isinstance(text, str) or not text.strip("/"):
        raise OpError("A path is a non-empty string like 'spindle/bearing_01'.")
    parts = tuple(JsonPointer("/" + text.strip("/")).parts)
    if len(parts) > MAX_DEPTH:
        raise OpError(f"Paths are at most {MAX_DEPTH} levels deep.")
    return parts


def path_text(path: Path) -> str:
    return JsonPointer.from_parts([str(p) for p in path]).path.lstrip("/")


def _typed(doc: Any, raw: tuple[str, ...], *, insert: bool = False) -> Path:
    """Gives list positions their int type by walking the document."""
    typed: list[str | int] = []
    node = doc
    for depth, part in enumerate(raw):
        last = depth == len(raw) - 1
        if isinstance(node, list):
            if not part.isdigit():
                raise OpError(f"'{path_text(tuple(typed))}' is a list: '{part}' is no position.")
            index = int(part)
            limit = len(node) if (insert and last) else len(node) - 1
            if index > limit:
                raise OpError(f"Position {index} is past the end of '{path_text(tuple(typed))}'.")
            typed.append(index)
            node = node[index] if index < len(node) else None
        elif isinstance(node, dict):
            typed.append(part)
            if part not in node and not last:
                raise OpError(f"'{path_text(tuple(typed))}' does not exist.")
            node = node.get(part)
        else:
            where = path_text(tuple(typed)) or "the document"
            raise OpError(f"'{where}' holds a value, not an object or a list.")
    return tuple(typed)


def parse_op(raw: Any, doc: dict[str, Any]) -> Op:
    """Checks an operation from a client against `doc` (the version it was based on)."""
    if not isinstance(raw, dict):
        raise OpError("An operation is an object with 'op' and 'path'.")
    kind = raw.get("op")
    if kind not in OPS:
        raise OpError(f"'op' is one of {', '.join(OPS)}.")
    path = parse_path(raw.get("path"))
    if kind in ("set", "insert") and "value" not in raw:
        raise OpError(f"'{kind}' needs a 'value'.")
    if kind == "insert":
        parent = _get(doc, _typed(doc, path[:-1])) if len(path) > 1 else doc
        if not isinstance(parent, list):
            raise OpError("'insert' works on a list position, like 'tools/0'.")
        return Op("insert", _typed(doc, path, insert=True), copy.deepcopy(raw["value"]))
    if kind == "set":
        typed = _typed(doc, path)
        return Op("set", typed, copy.deepcopy(raw["value"]))
    if kind == "remove":
        typed = _typed(doc, path)
        if not _exists(doc, typed):
            raise OpError(f"'{path_text(typed)}' does not exist.")
        return Op("remove", typed)
    source = _typed(doc, parse_path(raw.get("from")))
    if not _exists(doc, source):
        raise OpError(f"'{path_text(source)}' does not exist.")
    if len(path) > len(source) and path[: len(source)] == tuple(str(p) for p in source):
        raise OpError("A value cannot move inside itself.")
    without = apply(doc, [Op("remove", source)])
    return Op("move", _typed(without, path, insert=True), source=source)


def parse_stored(stored: dict[str, Any]) -> Op:
    """An operation as `Op.as_json` stored it (already checked and typed)."""
    source = stored.get("from_parts")
    return Op(
        stored["op"],
        tuple(stored["parts"]),
        stored.get("value"),
        tuple(source) if source is not None else None,
    )


def ops_between(before: dict[str, Any], after: dict[str, Any]) -> list[Op]:
    """Operations turning `before` into `after` (a revert), from jsonpatch's diff."""
    doc = before
    ops: list[Op] = []
    for step in jsonpatch.make_patch(before, after):
        raw = tuple(JsonPointer(step["path"]).parts)
        kind = step["op"]
        if kind == "test":
            continue
        if kind in ("add", "copy"):
            value = (
                _get(doc, _typed(doc, tuple(JsonPointer(step["from"]).parts)))
                if kind == "copy"
                else step["value"]
            )
            parent = _get(doc, _typed(doc, raw[:-1])) if len(raw) > 1 else doc
            if isinstance(parent, list):
                op = Op("insert", _typed(doc, raw, insert=True), copy.deepcopy(value))
            else:
                op = Op("set", _typed(doc, raw), copy.deepcopy(value))
        elif kind == "replace":
            op = Op("set", _typed(doc, raw), copy.deepcopy(step["value"]))
        elif kind == "remove":
            op = Op("remove", _typed(doc, raw))
        else:  # move
            source = _typed(doc, tuple(JsonPointer(step["from"]).parts))
            without = apply(doc, [Op("remove", source)])
            op = Op("move", _typed(without, raw, insert=True), source=source)
        doc = apply(doc, [op])
        ops.append(op)
    if doc != after:  # jsonpatch's diff is exact; this guards the conversion
        raise OpError("The versions' difference could not be expressed as operations.")
    return ops


def _get(doc: Any, path: Path) -> Any:
    node = doc
    for part in path:
        node = node[part]
    return node


def _exists(doc: Any, path: Path) -> bool:
    try:
        _get(doc, path)
    except (KeyError, IndexError, TypeError):
        return False
    return True


# --- Applying ------------------------------------------------------------------------------


def _patch(doc: Any, op: Op) -> list[dict[str, Any]]:
    pointer = "/" + path_text(op.path)
    if op.kind == "set":
        parent = _get(doc, op.path[:-1])
        return [
            {
                "op": "replace" if isinstance(parent, list) else "add",
                "path": pointer,
                "value": op.value,
            }
        ]
    if op.kind == "insert":
        return [{"op": "add", "path": pointer, "value": op.value}]
    if op.kind == "remove":
        return [{"op": "remove", "path": pointer}]
    assert op.source is not None
    return [{"op": "move", "from": "/" + path_text(op.source), "path": pointer}]


def apply(doc: dict[str, Any], ops: list[Op]) -> dict[str, Any]:
    """A new document with `ops` applied in order (the input is not changed)."""
    out = copy.deepcopy(doc)
    for op in ops:
        try:
            out = jsonpatch.apply_patch(out, _patch(out, op), in_place=True)
        except (
            jsonpatch.JsonPatchException,
            JsonPointerException,
            KeyError,
            IndexError,
            TypeError,
        ) as exc:
            where = path_text(op.path)
            raise OpError(f"{op.kind} '{where}' does not fit the document: {exc}") from None
    if not isinstance(out, dict):
        raise OpError("The document must stay an object.")
    return out


def diff(before: dict[str, Any], after: dict[str, Any]) -> list[dict[str, Any]]:
    """RFC 6902 operations turning `before` into `after` (for showing two versions apart)."""
    return list(jsonpatch.make_patch(before, after))


# --- Transformation ------------------------------------------------------------------------


def _is_prefix(prefix: Path, path: Path) -> bool:
    return len(prefix) <= len(path) and path[: len(prefix)] == prefix


def _shift(path: Path, at: Path, delta: int) -> Path:
    """Moves the position under list `at[:-1]` in `path` by `delta` if it is at or after
    `at[-1]` (insert: delta +1) or after it (remove: delta -1)."""
    depth = len(at) - 1
    if len(path) <= depth or path[:depth] != at[:depth]:
        return path
    mine, theirs = path[depth], at[depth]
    if not isinstance(mine, int) or not isinstance(theirs, int):
        return path
    if (delta > 0 and mine >= theirs) or (delta < 0 and mine > theirs):
        return (*path[:depth], mine + delta, *path[depth + 1 :])
    return path


def _after_insert(path: Path, at: Path) -> Path:
    return _shift(path, at, +1)


def _after_remove(path: Path, at: Path, *, inserting: bool) -> Path | None:
    """`path` once `at` is removed; None when `path` was inside what was removed."""
    if _is_prefix(at, path):
        # an insertion point equal to a removed list position stays valid (same place)
        if inserting and path == at and isinstance(at[-1], int):
            return path
        return None
    return _shift(path, at, -1)


def _is_list_slot(doc_path: Path) -> bool:
    return bool(doc_path) and isinstance(doc_path[-1], int)


def _placing(path: Path) -> Op:
    """The operation that puts a value at `path`: an insert into a list, else a key set."""
    return Op("insert" if _is_list_slot(path) else "set", path)


def _single(op: Op, applied: Op) -> Op | Rejected:
    """A set, insert or remove through an applied set, insert or remove."""
    path = op.path
    if applied.kind == "insert":
        return replace(op, path=_after_insert(path, applied.path))
    if applied.kind == "remove":
        after = _after_remove(path, applied.path, inserting=op.kind == "insert")
        if after is not None:
            return replace(op, path=after)
        if op.kind == "set" and path == applied.path and not _is_list_slot(path):
            return op  # setting a key that was just removed creates it again
        return Rejected(f"'{path_text(path)}' was removed by a concurrent edit.")
    if _is_prefix(applied.path, path) and path != applied.path:
        return Rejected(f"'{path_text(applied.path)}' was replaced by a concurrent edit.")
    return op  # the same path set twice: the later one wins


def _through(op: Op, applied: Op) -> Op | Rejected:
    """`op` rewritten to apply after `applied` (both based on the same document)."""
    if applied.kind == "move":
        assert applied.source is not None
        step = _through(op, Op("remove", applied.source))
        if isinstance(step, Rejected):
            return Rejected(step.reason.replace("removed", "moved"))
        return _through(step, _placing(applied.path))
    if op.kind != "move":
        return _single(op, applied)
    # a move is a removal at its source, then a placing at its target (which is read in the
    # document without the source, so the applied operation is read there too)
    assert op.source is not None
    source = _single(Op("remove", op.source), applied)
    if isinstance(source, Rejected):
        return source
    target = op.path
    relative = _through(applied, Op("remove", op.source))
    if not isinstance(relative, Rejected):  # (an edit inside the moved value travels with it)
        placed = _through(_placing(op.path), relative)
        if isinstance(placed, Rejected):
            return placed
        target = placed.path
    return Op("move", target, source=source.path)


def transform(op: Op, since: list[Op]) -> Op | Rejected:
    """`op`, made against an older version, rewritten to apply after `since` (the operations
    applied since that version, in order), or why it cannot be."""
    current: Op | Rejected = op
    for applied in since:
        if isinstance(current, Rejected):
            break
        current = _through(current, applied)
    return current
