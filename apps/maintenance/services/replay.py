"""Replaying the maintenance agent over a node's stored telemetry (manage.py score_history):
what it would have caught, and when, before a plant trusts it with live tickets.

The replay runs the agent's own code in time order: the threshold rules on every reading (as
ingest runs them on the newest reading of each request), and the models' scoring at the
periodic run's interval (apps.maintenance.services.scoring.node_score_run), with ticketing as
it is. It runs on a stand-in of the node (same kind, vendor, site, rated power, node rules,
cadence and planned horizon) holding a copy of the node's telemetry, inside one transaction
that is rolled back at the end. So:

- nothing is sent: notifications, e-mails and live broadcasts all go out on commit, and there
  is none; the report is the only result;
- live tickets, alerts and the node's health are never read, touched or locked: the stand-in
  starts with no state, as the node did when its history began;
- replayed tickets are numbered R1, R2, ... in the report and never stored.

What differs from production, on purpose: the models are the registry's active ones today (not
the ones active back then); a scoring run is skipped while no reading arrived since the last
one (it would score the same readings again); the ticket's own created_at is the replay's wall
clock, so the 24-hour dedup window of ticket_raise sees every replayed ticket as recent."""

from __future__ import annotations

import uuid
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from typing import Any

from django.db import connection, transaction

from apps.core.labels import alert_sentence
from apps.core.models import TrainedModel
from apps.maintenance.cadence import cadence_learn
from apps.maintenance.models import Alert, NodeHealth, ThresholdRule, Ticket
from apps.maintenance.services.alerts import alerts_evaluate
from apps.maintenance.services.scoring import node_score_run
from apps.telemetry.models import TelemetryPoint
from apps.telemetry.pgcopy import COLUMNS
from apps.telemetry.validation import SIGNALS
from apps.vendors.models import FabricationNode

SCORE_EVERY = timedelta(minutes=2)  # the periodic scoring run's interval (Celery beat)
PREDICTED = (
    Ticket.IssueType.ANOMALY,
    Ticket.IssueType.FAILURE_RISK,
    Ticket.IssueType.LOW_RUL,
)
CHUNK = 5000


@dataclass
class Finding:
    """The start of one episode the agent noticed: a threshold alert opened or escalated, a
    sustained anomaly, a failure risk or a short remaining life (until it clears)."""

    at: datetime
    source: str  # "threshold" or the issue type of a prediction
    severity: str
    text: str
    ticket: str = ""  # "R3": the replayed ticket it went to, if any


@dataclass
class ReplayTicket:
    number: str
    issue_type: str
    severity: str
    title: str
    opened_at: datetime
    last_seen: datetime
    occurrences: int
    findings: list[str] = field(default_factory=list)  # issue types folded into it


@dataclass
class ReplayReport:
    node: int
    node_name: str
    start: datetime | None = None
    end: datetime | None = None
    points: int = 0
    scorings: int = 0
    cadence_s: float | None = None
    findings: list[Finding] = field(default_factory=list)
    tickets: list[ReplayTicket] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


class _Discard(Exception):
    """Rolls the replay's transaction back; carries its report out."""

    def __init__(self, report: ReplayReport) -> None:
        self.report = report


def history_replay(
    *,
    node: FabricationNode,
    start: datetime | None = None,
    end: datetime | None = None,
    score_every: timedelta = SCORE_EVERY,
    rules: bool = True,
    models: bool = True,
    rules_every: timedelta | None = None,
) -> ReplayReport:
    """Replay the agent over the node's telemetry between `start` and `end` (inclusive; all of
    it by default). Writes nothing that outlives the call. The rules see every reading, or with
    `rules_every` the newest reading of each such interval (as ingest runs them on the newest
    reading of each request: a gateway's batch interval), which a dense history needs."""
    if score_every <= timedelta(0):
        raise ValueError("score_every must be positive.")
    if rules_every is not None and rules_every <= timedelta(0):
        raise ValueError("rules_every must be positive.")
    if start is not None and end is not None and end < start:
        raise ValueError("The replay's end is before its start.")
    try:
        with transaction.atomic():
            report = _replay(
                node,
                start=start,
                end=end,
                score_every=score_every,
                rules=rules,
                models=models,
                rules_every=rules_every,
            )
            raise _Discard(report)
    except _Discard as discarded:
        return discarded.report


def _stand_in(node: FabricationNode) -> FabricationNode:
    original_pk = node.pk
    shadow = FabricationNode.objects.get(pk=original_pk)
    shadow.pk = None
    shadow._state.adding = True
    shadow.name = f"{node.name} (replay {uuid.uuid4().hex[:8]})"[:120]
    shadow.save()
    for rule in ThresholdRule.objects.filter(node_id=original_pk):
        rule.pk = None
        rule._state.adding = True
        rule.node = shadow
        rule.save()
    health = NodeHealth.objects.filter(node_id=original_pk).first()
    NodeHealth.objects.create(
        node=shadow,
        expected_cadence_s=health.expected_cadence_s if health else None,
        planned_horizon_h=health.planned_horizon_h if health else 168.0,
    )
    return shadow


def _copy_telemetry(
    node: FabricationNode, shadow: FabricationNode, start: datetime | None, end: datetime | None
) -> int:
    rest = ", ".join(COLUMNS[1:])
    where = ["node_id = %s"]
    params: list[int | datetime] = [node.pk]
    if start is not None:
        where.append("time >= %s")
        params.append(start)
    if end is not None:
        where.append("time <= %s")
        params.append(end)
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO telemetry_point ({', '.join(COLUMNS)}) "  # noqa: S608 (our columns)
            f"SELECT %s, {rest} FROM telemetry_point WHERE {' AND '.join(where)}",
            [shadow.pk, *params],
        )
        copied: int = cursor.rowcount
        return copied


def _interval(at: datetime, every: timedelta) -> int:
    return int(at.timestamp() // every.total_seconds())


def _readings(point: TelemetryPoint) -> dict[str, float]:
    """What the ingest receiver hands the rules: the built-in signals, then numeric extras."""
    readings = {s: float(v) for s in SIGNALS if (v := getattr(point, s)) is not None}
    for key, value in (point.extra or {}).items():
        if isinstance(value, int | float) and not isinstance(value, bool):
            readings.setdefault(key, float(value))
    return readings


class _Observer:
    """Turns what the agent wrote on the stand-in into the report's findings and tickets."""

    def __init__(self, report: ReplayReport, shadow: FabricationNode) -> None:
        self.report, self.shadow = report, shadow
        self.numbers: dict[int, str] = {}
        self.tickets: dict[int, ReplayTicket] = {}
        self.alert_levels: dict[int, str] = {}
        self.anomaly_episodes: set[str] = set()
        self.raised_last_scoring: set[str] = set()

    def tickets_seen(self, at: datetime) -> None:
        for ticket in Ticket.objects.filter(node=self.shadow).order_by("pk"):
            known = self.tickets.get(ticket.pk)
            if known is None:
                number = f"R{len(self.numbers) + 1}"
                self.numbers[ticket.pk] = number
                known = self.tickets[ticket.pk] = ReplayTicket(
                    number=number,
                    issue_type=ticket.issue_type,
                    severity=ticket.severity,
                    title=ticket.title,
                    opened_at=at,
                    last_seen=ticket.last_seen,
                    occurrences=ticket.occurrences,
                )
            known.severity, known.title = ticket.severity, ticket.title
            known.last_seen, known.occurrences = ticket.last_seen, ticket.occurrences
            known.findings = sorted((ticket.evidence or {}).get("findings", {}))

    def alerts(self, touched: list[Alert], at: datetime) -> None:
        if not touched:
            return
        self.tickets_seen(at)
        for alert in touched:
            before = self.alert_levels.get(alert.pk)
            if alert.resolved_at is not None:
                self.alert_levels.pop(alert.pk, None)
                continue
            self.alert_levels[alert.pk] = alert.severity
            if before == alert.severity:
                continue
            ticket = self._ticket_of_alert(alert)
            self.report.findings.append(
                Finding(
                    at=at,
                    source="threshold",
                    severity=alert.severity,
                    # in words, as pages say it: "Temperature 90 °C above the critical limit..."
                    text=alert_sentence(
                        signal=alert.signal,
                        value=alert.value,
                        threshold=alert.threshold,
                        mode=alert.mode,
                        severity=alert.severity,
                    ),
                    ticket=ticket,
                )
            )

    def _ticket_of_alert(self, alert: Alert) -> str:
        for pk, ticket in Ticket.objects.filter(node=self.shadow).values_list("pk", "evidence"):
            evidence = ticket or {}
            if evidence.get("alert") == alert.pk or any(
                f.get("alert") == alert.pk for f in evidence.get("findings", {}).values()
            ):
                return self.numbers.get(pk, "")
        return ""

    def scoring(self, ticket_ids: list[int], at: datetime) -> None:
        raised: set[str] = set()
        if ticket_ids:
            self.tickets_seen(at)
        stamp = at.isoformat()
        for ticket in Ticket.objects.filter(pk__in=ticket_ids):
            evidence = ticket.evidence or {}
            for issue in PREDICTED:
                found = (
                    evidence
                    if ticket.issue_type == issue
                    else evidence.get("findings", {}).get(issue)
                )
                if not found or found.get("at") != stamp or issue in raised:
                    continue
                raised.add(issue)
                if issue == Ticket.IssueType.ANOMALY:
                    since = str(found.get("anomalous_since"))
                    if since in self.anomaly_episodes:
                        continue
                    self.anomaly_episodes.add(since)
                elif issue in self.raised_last_scoring:
                    continue  # the same episode, still going
                self.report.findings.append(
                    Finding(
                        at=at,
                        source=str(issue),
                        severity=ticket.severity,
                        text=_prediction_text(str(issue), found),
                        ticket=self.numbers.get(ticket.pk, ""),
                    )
                )
        self.raised_last_scoring = raised


def _prediction_text(issue: str, evidence: dict[str, Any]) -> str:
    if issue == Ticket.IssueType.ANOMALY:
        return (
            f"anomaly score {evidence.get('anomaly_score', 0):.3g} above "
            f"{evidence.get('anomaly_threshold', 0):.3g} since {evidence.get('anomalous_since')}"
        )
    if issue == Ticket.IssueType.FAILURE_RISK:
        return f"failure probability {evidence.get('failure_probability', 0):.2f}"
    remaining = evidence.get("rul_hours")
    if remaining is None:
        remaining = evidence.get("vibration_hours_to_limit")
    return f"about {remaining or 0:.0f} h of life left"


def _replay(
    node: FabricationNode,
    *,
    start: datetime | None,
    end: datetime | None,
    score_every: timedelta,
    rules: bool,
    models: bool,
    rules_every: timedelta | None,
) -> ReplayReport:
    report = ReplayReport(node=node.pk, node_name=node.name)
    shadow = _stand_in(node)
    if not _copy_telemetry(node, shadow, start, end):
        return report
    observer = _Observer(report, shadow)
    active: dict[str, TrainedModel | None] = {}
    step = score_every.total_seconds()
    next_scoring: datetime | None = None
    fresh = False  # a reading arrived since the last scoring
    last_time: datetime | None = None

    def score(at: datetime) -> None:
        health = NodeHealth.objects.get(node=shadow)
        health.cadence_s = cadence_learn(node_id=shadow.pk, now=at)
        health.last_seen = last_time
        health.save(update_fields=["cadence_s", "last_seen"])
        result = node_score_run(node=shadow, now=at, active=active)
        report.scorings += 1
        if result is not None:
            observer.scoring(result.tickets, at)

    def evaluate(point: TelemetryPoint) -> None:
        touched = alerts_evaluate(node_id=shadow.pk, at=point.time, readings=_readings(point))
        observer.alerts(touched, point.time)

    held: TelemetryPoint | None = None  # the newest reading of the rules' current interval
    points = TelemetryPoint.objects.filter(node_id=shadow.pk).order_by("time")
    for point in points.iterator(chunk_size=CHUNK):
        at = point.time
        if (
            rules
            and held is not None
            and rules_every is not None
            and _interval(at, rules_every) != _interval(held.time, rules_every)
        ):
            evaluate(held)
            held = None
        if models:
            if next_scoring is None:
                # the periodic run's grid: whole multiples of its interval (UTC epoch)
                epoch = at.timestamp()
                next_scoring = at + timedelta(seconds=step - epoch % step)
            while at > next_scoring:  # runs due before this reading
                if fresh:
                    score(next_scoring)
                    fresh = False
                    next_scoring += score_every
                else:  # nothing new since: jump to the run after this reading
                    behind = (at - next_scoring).total_seconds() // step
                    next_scoring += score_every * max(1, int(behind))
        report.start = report.start or at
        report.end = last_time = at
        report.points += 1
        fresh = True
        if rules and rules_every is None:
            evaluate(point)
        elif rules:
            held = point
    if held is not None:
        evaluate(held)
    if models and fresh and next_scoring is not None:
        score(next_scoring)
    report.cadence_s = NodeHealth.objects.get(node=shadow).cadence
    report.tickets = sorted(observer.tickets.values(), key=lambda t: t.opened_at)
    return report
