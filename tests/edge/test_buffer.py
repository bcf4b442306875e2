"""The store-and-forward buffer on its own (no Django, no network)."""

from __future__ import annotations

from edge.buffer import SqliteBuffer


def test_points_replay_in_order_and_survive_a_restart(tmp_path):
    path = tmp_path / "buffer.sqlite3"
    buffer = SqliteBuffer(path)
    buffer.append([{"n": i} for i in range(5)])
    buffer.close()
    reopened = SqliteBuffer(path)  # the gateway process restarted
    last_id, batch = reopened.peek(3)
    assert [p["n"] for p in batch] == [0, 1, 2]
    reopened.ack(last_id)
    assert [p["n"] for p in reopened.peek(10)[1]] == [3, 4]


def test_full_buffer_drops_the_oldest_and_counts_them(tmp_path):
    buffer = SqliteBuffer(tmp_path / "b.sqlite3", max_points=10)
    buffer.append([{"n": i} for i in range(8)])
    buffer.append([{"n": i} for i in range(8, 14)])
    assert len(buffer) == 10 and buffer.dropped == 4
    assert [p["n"] for p in buffer.peek(100)[1]] == list(range(4, 14))
