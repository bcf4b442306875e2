"""Imewe's own Prometheus metrics, beside django-prometheus's request and database figures on
/metrics. Each process of the production topology (web, ingest, ws) is scraped on its own
(deploy/prometheus/prometheus.yml), so counters are per process and dashboards sum them.

Labels are bounded: a rejected point counts under the first field its errors name (a signal,
time, node, extra...), never under the message.
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

POINTS_STORED = Counter(
    "imewe_telemetry_points_stored_total",
    "Telemetry points stored, by the path that took them (live or history import).",
    ["path"],
)
POINTS_DUPLICATE = Counter(
    "imewe_telemetry_points_duplicate_total",
    "Telemetry points skipped as already stored (a gateway resending a batch).",
    ["path"],
)
POINTS_REJECTED = Counter(
    "imewe_telemetry_points_rejected_total",
    "Telemetry points refused, by the first field their errors name.",
    ["path", "field"],
)
WEBSOCKET_CLIENTS = Gauge(
    "imewe_websocket_clients",
    "Open websockets of this process, by stream.",
    ["stream"],
)
LIVE_POINT_AGE = Histogram(
    "imewe_live_point_age_seconds",
    "Age of a telemetry point (its own time to now) when a live view is sent it: the gateway's "
    "forwarding, ingest, the coalescing window and the fan-out together.",
    buckets=(0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0),
)
