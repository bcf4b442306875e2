"""What one telemetry request or MQTT message may hold, checked on the raw bytes before any
Python object is built (shared by the batch API and the MQTT bridge)."""

from __future__ import annotations

import re

from apps.telemetry.services import MAX_BATCH

# A gateway's point is about 120 bytes of JSON (node, time, three signals), a point with every
# signal, a job and ten extra signals about 450: 512 bytes per point leaves room, and a batch
# larger than that is refused before it is parsed (the gateway then sends it in halves).
# The bound is what parsing costs: orjson builds about 14 bytes of Python objects per byte of
# JSON strings and 24 per byte of `{}` (20 MB of `{}` took +480 MB), so the body size caps the
# scalars (5 MB: under 75 MB) and MAX_CONTAINERS caps the objects and arrays.
POINT_BYTE_BUDGET = 512
MAX_BODY_BYTES = MAX_BATCH * POINT_BYTE_BUDGET  # after gzip inflation
MAX_CONTAINERS = 3 * MAX_BATCH + 2  # a point, its extra and units; the array and its wrapper
# Escapes go first, then what lies between quotes: two linear passes. One regex for a string
# with its escapes restarts at every quote of an unterminated string and went quadratic (a 5 KB
# gzip of `{`*40000 + `"` + `\\"`*N froze the process for hours).
_JSON_ESCAPE = re.compile(rb"\\.", re.DOTALL)
_JSON_STRING = re.compile(rb'"[^"]*"')


def json_containers(body: bytes) -> int:
    """How many JSON objects and arrays `body` opens. Braces inside strings do not count; they
    are removed (slower) only when the quick count says the body may be too large."""
    quick = body.count(b"{") + body.count(b"[")
    if quick <= MAX_CONTAINERS:
        return quick
    outside_strings = _JSON_STRING.sub(b"", _JSON_ESCAPE.sub(b"", body))
    return outside_strings.count(b"{") + outside_strings.count(b"[")
