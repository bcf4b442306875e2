"""`manage.py score_history --node ID [--start ISO] [--end ISO] [--score-every-s 120]
[--rules-every-s S] [--no-rules] [--no-models] [--json FILE]`

Replays the maintenance agent over the node's stored telemetry in time order (threshold rules
on every reading, the active models at the periodic run's interval, ticketing as it is) and
prints what it would have caught and when. Nothing is stored or sent: the replay runs on a
stand-in of the node in a transaction that is rolled back (apps/maintenance/services/replay.py);
--json writes the report to a file."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
from django.core.management.base import BaseCommand, CommandError, CommandParser

from apps.core.labels import label
from apps.maintenance.services.replay import SCORE_EVERY, ReplayReport, history_replay
from apps.telemetry.validation import parse_time
from apps.vendors.models import FabricationNode


def _when(value: str | None, name: str) -> datetime | None:
    if value is None:
        return None
    try:
        return parse_time(value)
    except (ValueError, OverflowError) as exc:
        raise CommandError(f"--{name}: {exc}") from exc


def _source(code: str) -> str:
    return "Threshold rule" if code == "threshold" else label(code, "issue_type")


def report_lines(report: ReplayReport) -> list[str]:
    """The report as people read it: findings, issue types and severities in words, as the
    pages say them (the --json report keeps the codes)."""
    if not report.points:
        return [f"Node {report.node} ({report.node_name}): no telemetry in that range."]
    cadence = f"{report.cadence_s:g} s" if report.cadence_s else "unknown"
    lines = [
        f"Node {report.node} ({report.node_name}): {report.points} readings from "
        f"{report.start:%Y-%m-%d %H:%M:%S} to {report.end:%Y-%m-%d %H:%M:%S} UTC, "
        f"{report.scorings} scoring runs, cadence {cadence}.",
        f"{len(report.findings)} findings, {len(report.tickets)} tickets would have been opened.",
    ]
    for finding in report.findings:
        into = f" -> {finding.ticket}" if finding.ticket else ""
        lines.append(
            f"  {finding.at:%Y-%m-%d %H:%M:%S}  {_source(finding.source):<26} "
            f"{label(finding.severity, 'severity'):<8} {finding.text}{into}"
        )
    for ticket in report.tickets:
        also = ", ".join(_source(code).lower() for code in ticket.findings)
        also = f" (also: {also})" if also else ""
        lines.append(
            f"  {ticket.number}: {_source(ticket.issue_type)}, "
            f"{label(ticket.severity, 'severity').lower()}, opened "
            f"{ticket.opened_at:%Y-%m-%d %H:%M:%S}, "
            f"last seen {ticket.last_seen:%Y-%m-%d %H:%M:%S}, "
            f"{ticket.occurrences} findings{also}: {ticket.title}"
        )
    lines.append("Nothing was stored or sent (replayed tickets are numbered R1, R2, ...).")
    return lines


class Command(BaseCommand):
    help = "Replay the maintenance agent over a node's stored telemetry; prints what it catches."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--node", type=int, required=True)
        parser.add_argument("--start", help="ISO 8601 with a timezone (default: the first point)")
        parser.add_argument("--end", help="ISO 8601 with a timezone (default: the last point)")
        parser.add_argument(
            "--score-every-s",
            type=float,
            default=SCORE_EVERY.total_seconds(),
            help="the models' scoring interval (the periodic run's: 120)",
        )
        parser.add_argument(
            "--rules-every-s",
            type=float,
            help="the rules on the newest reading of each such interval (a gateway's batch "
            "interval) instead of on every reading: for dense histories",
        )
        parser.add_argument("--no-rules", action="store_true")
        parser.add_argument("--no-models", action="store_true")
        parser.add_argument("--json", type=Path, help="write the report to this file")

    def handle(self, *args: Any, **options: Any) -> None:
        node = FabricationNode.objects.filter(pk=options["node"]).first()
        if node is None:
            raise CommandError(f"No node {options['node']}.")
        if not options["score_every_s"] > 0:
            raise CommandError("--score-every-s must be positive.")
        rules_every_s = options["rules_every_s"]
        if rules_every_s is not None and not rules_every_s > 0:
            raise CommandError("--rules-every-s must be positive.")
        try:
            report = history_replay(
                node=node,
                start=_when(options["start"], "start"),
                end=_when(options["end"], "end"),
                score_every=timedelta(seconds=options["score_every_s"]),
                rules=not options["no_rules"],
                models=not options["no_models"],
                rules_every=timedelta(seconds=rules_every_s) if rules_every_s else None,
            )
        except ValueError as exc:
            raise CommandError(str(exc)) from exc
        for line in report_lines(report):
            self.stdout.write(line)
        if options["json"]:
            options["json"].write_bytes(orjson.dumps(report.as_dict(), option=orjson.OPT_INDENT_2))
