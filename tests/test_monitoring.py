"""The monitoring shipped with the stack: Prometheus's configuration and alert rules (checked and
unit-tested by promtool, Debian's `prometheus` package), the provisioned Grafana dashboard (valid
JSON on the provisioned data source, every query valid PromQL), and the metrics the platform
exports for them: each imewe_/django_ metric a dashboard or rule names is on /metrics, with the
figures the platform holds."""

from __future__ import annotations

import json
import re
import shutil
import socket
import subprocess
import time
import urllib.parse
import urllib.request
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from django.test import override_settings
from django.utils import timezone
from prometheus_client import REGISTRY, generate_latest

from tests.fixtures.live import Live

ROOT = Path(__file__).resolve().parent.parent
PROMETHEUS = ROOT / "deploy" / "prometheus"
DASHBOARDS = ROOT / "deploy" / "grafana" / "dashboards"
OUR_PREFIXES = ("imewe_", "django_")  # exporters' metrics (pg_, redis_, celery_) are theirs


def promtool(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    binary = shutil.which("promtool")
    assert binary, "install Debian's prometheus package (promtool checks the monitoring config)"
    return subprocess.run(
        [binary, *args], cwd=cwd, capture_output=True, text=True, timeout=120, check=False
    )


def test_prometheus_configuration_is_valid():
    result = promtool("check", "config", str(PROMETHEUS / "prometheus.yml"))
    assert result.returncode == 0, result.stdout + result.stderr


def test_alert_rules_are_valid_and_pass_their_unit_tests():
    rules = sorted((PROMETHEUS / "rules").glob("*.yml"))
    assert rules
    checked = promtool("check", "rules", *map(str, rules))
    assert checked.returncode == 0, checked.stdout + checked.stderr
    tested = promtool("test", "rules", "imewe_test.yml", cwd=PROMETHEUS / "tests")
    assert tested.returncode == 0, tested.stdout + tested.stderr
    assert "SUCCESS" in tested.stdout


def test_every_seed_alert_has_a_unit_test():
    rules = yaml.safe_load((PROMETHEUS / "rules" / "imewe.yml").read_text())
    alerts = {rule["alert"] for group in rules["groups"] for rule in group["rules"]}
    assert {
        "ServerErrorsAbove5Percent",
        "DatabaseDown",
        "NodeOffline",
        "IngestStalled",
        "CeleryQueueGrowing",
    } <= alerts
    tests = yaml.safe_load((PROMETHEUS / "tests" / "imewe_test.yml").read_text())
    tested = {case["alertname"] for t in tests["tests"] for case in t["alert_rule_test"]}
    assert alerts <= tested, alerts - tested


def dashboard_queries() -> list[tuple[str, str]]:
    queries = []
    for path in sorted(DASHBOARDS.glob("*.json")):
        dashboard = json.loads(path.read_text())
        for panel in dashboard["panels"]:
            queries += [(panel["title"], target["expr"]) for target in panel["targets"]]
    return queries


def test_dashboards_are_provisioned_on_the_provisioned_data_source(tmp_path):
    datasources = yaml.safe_load(
        (ROOT / "deploy/grafana/provisioning/datasources/prometheus.yml").read_text()
    )
    uid = datasources["datasources"][0]["uid"]
    provider = yaml.safe_load(
        (ROOT / "deploy/grafana/provisioning/dashboards/imewe.yml").read_text()
    )
    assert provider["providers"][0]["options"]["path"] == "/var/lib/grafana/dashboards"
    for path in sorted(DASHBOARDS.glob("*.json")):
        dashboard = json.loads(path.read_text())
        assert dashboard["uid"] and dashboard["title"] and dashboard["schemaVersion"] >= 36
        ids = [panel["id"] for panel in dashboard["panels"]]
        assert len(ids) == len(set(ids)), "panel ids are unique"
        for panel in dashboard["panels"]:
            assert panel["datasource"]["uid"] == uid, panel["title"]
            grid = panel["gridPos"]
            assert grid["x"] >= 0 and grid["x"] + grid["w"] <= 24, panel["title"]
            assert panel["targets"] and panel["fieldConfig"]["defaults"]["unit"], panel["title"]
    # every query parses as PromQL: promtool checks them as recording rules
    rules = {
        "groups": [
            {
                "name": "dashboard",
                "rules": [
                    {"record": f"dashboard:query_{n}", "expr": expr}
                    for n, (_, expr) in enumerate(dashboard_queries())
                ],
            }
        ]
    }
    target = tmp_path / "dashboard_queries.yml"
    target.write_text(yaml.safe_dump(rules))
    result = promtool("check", "rules", str(target))
    assert result.returncode == 0, result.stdout + result.stderr


def named_metrics() -> set[str]:
    """Our metric names that the dashboards and alert rules use."""
    texts = [expr for _, expr in dashboard_queries()]
    rules = yaml.safe_load((PROMETHEUS / "rules" / "imewe.yml").read_text())
    texts += [rule["expr"] for group in rules["groups"] for rule in group["rules"]]
    names = {m for text in texts for m in re.findall(r"\b[a-z_][a-z0-9_]*\b", text)}
    return {name for name in names if name.startswith(OUR_PREFIXES)}


def exported(text: str) -> set[str]:
    """Sample names, and the names a declared family will have once it has a sample (a gauge
    with labels has none until the first websocket opens)."""
    names = {line.split("{")[0].split(" ")[0] for line in text.splitlines() if line[:1] != "#"}
    suffixes = {"counter": ("_total",), "histogram": ("_bucket", "_sum", "_count"), "gauge": ("",)}
    for line in text.splitlines():
        if line.startswith("# TYPE "):
            _, _, name, kind = line.split(" ")
            base = name.removesuffix("_total")
            names |= {base + suffix for suffix in suffixes.get(kind, ("",))}
    return names


@pytest.mark.django_db
def test_the_metrics_the_dashboards_name_are_exported_with_the_platforms_figures(
    live: Live,
    client,
):
    from apps.telemetry.services import telemetry_ingest
    from tests.maintenance.factories import NodeHealthFactory, TicketFactory

    def value(name: str, **labels: str) -> float:
        return REGISTRY.get_sample_value(name, labels) or 0.0

    node = live.nodes[0]
    stored = value("imewe_telemetry_points_stored_total", path="live")
    dup = value("imewe_telemetry_points_duplicate_total", path="live")
    bad_time = value("imewe_telemetry_points_rejected_total", path="live", field="time")
    other = value("imewe_telemetry_points_rejected_total", path="live", field="other")
    now = timezone.now() - timedelta(minutes=1)
    good = [
        {"node": node.pk, "time": (now + timedelta(seconds=i)).isoformat(), "power_kw": 1.0}
        for i in range(3)
    ]
    report = telemetry_ingest(
        points=[
            *good,
            good[0],  # the same instant again: a duplicate
            {"node": node.pk, "time": "yesterday-ish", "power_kw": 1.0},
            {"node": node.pk, "time": now.isoformat(), "surprise_" + "x" * 40: 1},
        ],
        node_id=node.pk,
    )
    assert report.accepted == 3 and len(report.duplicates) == 1 and len(report.rejected) == 2
    assert value("imewe_telemetry_points_stored_total", path="live") == stored + 3
    assert value("imewe_telemetry_points_duplicate_total", path="live") == dup + 1
    assert value("imewe_telemetry_points_rejected_total", path="live", field="time") == bad_time + 1
    # a field name the sender made up is never a label of its own
    assert value("imewe_telemetry_points_rejected_total", path="live", field="other") == other + 1

    NodeHealthFactory.create(node=node, online=True, last_seen=timezone.now())
    NodeHealthFactory.create(node=live.nodes[1], online=False)
    TicketFactory.create(node=node, severity="critical")
    TicketFactory.create(node=node, severity="warning", status="resolved")
    assert client.get("/healthz").status_code == 200  # counted by django-prometheus
    with override_settings(ALLOWED_HOSTS=["imewe.example.com"]):
        # Prometheus asks each process by its address: answered on that Host, internal only
        response = client.get("/metrics", HTTP_HOST="10.0.3.7:8000", REMOTE_ADDR="10.0.3.9")
        refused = client.get("/metrics", HTTP_HOST="10.0.3.7:8000", REMOTE_ADDR="203.0.113.5")
    assert response.status_code == 200 and refused.status_code == 403
    text = response.content.decode()
    assert 'imewe_nodes_online{online="true"} 1.0' in text
    assert 'imewe_nodes_online{online="false"} 1.0' in text
    assert 'imewe_tickets_open{severity="critical"} 1.0' in text
    assert 'severity="warning"' not in text.split("imewe_tickets_open")[-1]  # resolved
    missing = named_metrics() - exported(generate_latest(REGISTRY).decode())
    # histograms appear as _bucket/_sum/_count, counters as _total
    assert not missing, missing


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def prometheus_api(base: str, path: str, **params: str) -> Any:
    url = f"{base}/api/v1/{path}"
    if params:
        url += "?" + urllib.parse.urlencode(params)
    with urllib.request.urlopen(url, timeout=5) as answer:
        body = json.loads(answer.read())
    assert body["status"] == "success", body
    return body["data"]


def wait_for(check: Callable[[], Any], what: str, timeout: float = 45.0) -> Any:
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        try:
            last = check()
        except (OSError, ValueError) as error:  # Prometheus still starting
            last = error
        else:
            if last:
                return last
        time.sleep(0.3)
    raise AssertionError(f"{what} did not happen in {timeout} s (last: {last!r})")


@pytest.mark.django_db(transaction=True)
def test_a_running_prometheus_scrapes_the_platform_and_evaluates_the_rules_on_it(
    live_server,
    live: Live,
    tmp_path,
):
    """Not promtool's reading of the files: Debian's Prometheus server scrapes a running platform
    with the shipped rules, every rule evaluates without error on the real metrics, every
    dashboard query runs, and NodeOffline goes pending for the node the platform holds offline."""
    from tests.maintenance.factories import NodeHealthFactory

    binary = shutil.which("prometheus")
    assert binary, "install Debian's prometheus package"
    NodeHealthFactory.create(node=live.nodes[0], online=True, last_seen=timezone.now())
    NodeHealthFactory.create(node=live.nodes[1], online=False)
    target = live_server.url.removeprefix("http://")
    config = {
        "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
        "rule_files": [str(path) for path in sorted((PROMETHEUS / "rules").glob("*.yml"))],
        "scrape_configs": [
            {
                "job_name": "imewe",
                "metrics_path": "/metrics",
                "static_configs": [{"targets": [target], "labels": {"role": "web"}}],
            }
        ],
    }
    (tmp_path / "prometheus.yml").write_text(yaml.safe_dump(config))
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    server = subprocess.Popen(
        [
            binary,
            f"--config.file={tmp_path / 'prometheus.yml'}",
            f"--storage.tsdb.path={tmp_path / 'data'}",
            f"--web.listen-address=127.0.0.1:{port}",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        targets = wait_for(
            lambda: [
                t for t in prometheus_api(base, "targets")["activeTargets"] if t["health"] == "up"
            ],
            "the platform's /metrics scraped",
        )
        assert targets[0]["labels"]["instance"] == target

        def evaluated() -> list[dict[str, Any]]:
            groups = prometheus_api(base, "rules")["groups"]
            rules = [rule for group in groups for rule in group["rules"]]
            done = all(rule["lastEvaluation"] > "2000" for rule in rules)
            return rules if rules and done else []

        rules = wait_for(evaluated, "every rule evaluated")
        assert {rule["name"] for rule in rules} >= {"NodeOffline", "IngestStalled"}
        assert [r["name"] for r in rules if r["health"] != "ok"] == [], rules

        # one node online, one offline: both fleet alerts start their 5 minutes
        def alert_states() -> dict[str, str]:
            alerts = prometheus_api(base, "alerts")["alerts"]
            return {alert["labels"]["alertname"]: alert["state"] for alert in alerts}

        alerts = wait_for(lambda: (s := alert_states()).get("NodeOffline") and s, "NodeOffline")
        assert alerts["NodeOffline"] == "pending", alerts
        offline = prometheus_api(base, "query", query='imewe_nodes_online{online="false"}')
        assert [float(s["value"][1]) for s in offline["result"]] == [1.0]
        for title, expr in dashboard_queries():
            # runs on the server (a parse error or a many-to-many match would be "error")
            prometheus_api(base, "query", query=expr)
            assert title
    finally:
        server.terminate()
        _, errors = server.communicate(timeout=20)
    assert server.returncode == 0, errors[-2000:]
