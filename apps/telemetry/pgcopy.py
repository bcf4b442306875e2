"""PostgreSQL's binary COPY format for a CleanBatch, built a column at a time with numpy.

psycopg's `write_row` formats each value of each row in Python (and Jsonb through the json
module): it was a fifth of the ingest process's time. Here the rows that have the same columns
NULL share one numpy record layout, each column is written into it at once, and only the jsonb
text of a non-empty `extra` is joined row by row. Row order within a COPY does not matter.

Format: https://www.postgresql.org/docs/current/sql-copy.html#id-1.9.3.55.9.4 (a signature,
then per row the field count and per field its byte length, -1 for NULL, and its value in
network byte order; a -1 field count ends the data).
"""

from __future__ import annotations

import numpy as np

from apps.telemetry.validation import EMPTY_JSON, SIGNALS, CleanBatch

SIGNATURE = b"PGCOPY\n\xff\r\n\x00" + b"\x00\x00\x00\x00" + b"\x00\x00\x00\x00"  # no flags
TRAILER = b"\xff\xff"
COLUMNS = ("node_id", "time", "job_id", *SIGNALS, "extra")
# timestamptz is microseconds since 2000-01-01 UTC; CleanBatch counts from 1970-01-01
POSTGRES_EPOCH_MICROS = 946_684_800_000_000
JSONB_VERSION = 1  # jsonb's binary form: a version byte, then the JSON text


def copy_data(batch: CleanBatch) -> bytes:
    """The whole COPY ... FROM STDIN (FORMAT BINARY) input for `batch`: columns COLUMNS."""
    if not len(batch):
        return SIGNATURE + TRAILER
    absent = np.isnan(batch.values)
    # One layout per combination of NULL columns and of "extra is empty"
    layout_keys = absent @ (1 << np.arange(len(SIGNALS), dtype=np.int64))
    layout_keys |= (batch.job_ids == 0).astype(np.int64) << len(SIGNALS)
    # "{}" is the only JSON object of 2 bytes
    no_extra = np.fromiter(map(len, batch.extras_json), np.int64, len(batch)) == len(EMPTY_JSON)
    layout_keys |= no_extra.astype(np.int64) << (len(SIGNALS) + 1)
    parts = [SIGNATURE]
    for key in np.unique(layout_keys).tolist():
        rows = np.flatnonzero(layout_keys == key)
        parts.append(_rows(batch, rows, absent[rows[0]], bool(no_extra[rows[0]])))
    parts.append(TRAILER)
    return b"".join(parts)


def _rows(batch: CleanBatch, rows: np.ndarray, absent: np.ndarray, no_extra: bool) -> bytes:
    """Rows `rows` of `batch`, which have the same NULL columns (`absent`, and the job id)."""
    with_job = bool(batch.job_ids[rows[0]])
    fields: list[tuple[str, str]] = [("count", ">i2"), ("node_n", ">i4"), ("node", ">i8")]
    fields += [("time_n", ">i4"), ("time", ">i8"), ("job_n", ">i4")]
    if with_job:
        fields.append(("job", ">i8"))
    signals = [i for i in range(len(SIGNALS)) if not absent[i]]
    for i in range(len(SIGNALS)):
        fields.append((f"s{i}_n", ">i4"))
        if i in signals:
            fields.append((f"s{i}", ">f8"))
    fields += [("extra_n", ">i4"), ("extra_version", "u1")]
    if no_extra:
        fields.append(("extra", f"S{len(EMPTY_JSON)}"))
    out = np.empty(len(rows), dtype=np.dtype(fields))
    out["count"] = len(COLUMNS)
    out["node_n"] = out["time_n"] = 8
    out["node"] = batch.node_id
    out["time"] = batch.times[rows] - POSTGRES_EPOCH_MICROS
    out["job_n"] = 8 if with_job else -1
    if with_job:
        out["job"] = batch.job_ids[rows]
    for i in range(len(SIGNALS)):
        if i in signals:
            out[f"s{i}_n"] = 8
            out[f"s{i}"] = batch.values[rows, i]
        else:
            out[f"s{i}_n"] = -1
    out["extra_version"] = JSONB_VERSION
    if no_extra:
        out["extra_n"] = 1 + len(EMPTY_JSON)
        out["extra"] = EMPTY_JSON
        return out.tobytes()
    texts = [batch.extras_json[i] for i in rows.tolist()]
    out["extra_n"] = np.fromiter((len(t) for t in texts), np.int32, len(texts)) + 1
    fixed, size = out.tobytes(), out.itemsize
    return b"".join(
        fixed[start : start + size] + text
        for start, text in zip(range(0, len(fixed), size), texts, strict=True)
    )
