"""A hot query's SQL, built by the ORM once per shape and process instead of on every request.

Building a queryset and compiling it costs Python time that the database never sees: the job
detail's version query (aggregates over parts, nodes and history behind the access filter) took
~2 ms of CPU to compile against well under a millisecond to run, on every poll of every client.
A `PrecompiledQuery` builds its queryset with stand-in values for its parameters, compiles it
once per `shape` (whatever else decides the SQL text, e.g. the caller's scope), remembers where
each stand-in landed among the SQL parameters, and from then on only executes that SQL with the
real values. The queryset still comes from the same ORM code (and the same access rules); only
its compilation is kept.

A stand-in must reach the SQL as a parameter, unchanged, never inlined into its text or
converted: checked when a shape is compiled, and a query that breaks the rule fails there,
loudly.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Hashable
from typing import Any

from django.db import connections
from django.db.models import QuerySet

# far outside any primary key or count the platform makes; each name gets its own
_STAND_IN_BASE = -7_340_000_001


class PrecompiledQuery:
    def __init__(self, build: Callable[..., QuerySet[Any]], *names: str) -> None:
        """`build(shape, **{name: value})` returns the queryset for those values; `names` are
        the values that change between calls with the same shape (ids, mostly)."""
        self.build = build
        self.names = names
        self._compiled: dict[Hashable, tuple[str, str, list[tuple[str | None, Any]]]] = {}
        self._lock = threading.Lock()

    def _compile(self, shape: Hashable) -> tuple[str, str, list[tuple[str | None, Any]]]:
        stand_ins = {name: _STAND_IN_BASE - i for i, name in enumerate(self.names)}
        queryset = self.build(shape, **stand_ins)
        sql, params = queryset.query.sql_with_params()
        for named, value in stand_ins.items():
            if str(value) in sql:
                raise ValueError(f"{named} was written into the SQL text, not a parameter")
        by_value = {value: named for named, value in stand_ins.items()}
        # each parameter: (name, None) for a call's value, (None, constant) otherwise; a shape
        # may leave a value out (an admin's scope needs no user id)
        slots: list[tuple[str | None, Any]] = []
        for param in params:
            name = by_value.get(param) if type(param) is int else None
            if name is None and any(str(v) in str(param) for v in stand_ins.values()):
                raise ValueError(f"a stand-in reached the parameters changed: {param!r}")
            slots.append((name, None if name is not None else param))
        return queryset.db, sql, slots

    def rows(self, shape: Hashable, **values: Any) -> list[tuple[Any, ...]]:
        """The rows of the query of `shape` with `values`, as the cursor returns them (no
        model instances, no field converters: plain values)."""
        compiled = self._compiled.get(shape)
        if compiled is None:
            with self._lock:
                compiled = self._compiled.get(shape) or self._compile(shape)
                self._compiled[shape] = compiled
        alias, sql, slots = compiled
        params = [values[name] if name is not None else constant for name, constant in slots]
        with connections[alias].cursor() as cursor:
            cursor.execute(sql, params)
            return list(cursor.fetchall())
