"""`manage.py node_cadence --node ID [--seconds S | --learn]`

Shows a node's reporting cadence (configured and learned) and the limits that follow from it;
--seconds configures it, --learn goes back to learning it from the node's telemetry."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import timezone

from apps.maintenance.cadence import anomaly_window, cadence_learn, offline_after, sustain_for
from apps.maintenance.models import NodeHealth
from apps.maintenance.services.monitor import node_cadence_set
from apps.vendors.models import FabricationNode


class Command(BaseCommand):
    help = "Show or configure how often a node reports (offline and anomaly limits follow)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--node", type=int, required=True)
        group = parser.add_mutually_exclusive_group()
        group.add_argument("--seconds", type=float, help="configure the cadence")
        group.add_argument("--learn", action="store_true", help="learn it from telemetry")

    def handle(self, *args: Any, **options: Any) -> None:
        node = FabricationNode.objects.filter(pk=options["node"]).first()
        if node is None:
            raise CommandError(f"No node {options['node']}.")
        if options["seconds"] is not None or options["learn"]:
            try:
                node_cadence_set(node=node, expected_s=options["seconds"])
            except ValidationError as exc:
                raise CommandError("; ".join(exc.messages)) from exc
        health = NodeHealth.objects.filter(node=node).first()
        configured = health.expected_cadence_s if health else None
        learned = cadence_learn(node_id=node.pk, now=timezone.now())
        cadence = configured or learned
        self.stdout.write(
            f"Node {node.pk} ({node.name}): configured "
            f"{f'{configured:g} s' if configured else 'no'}, learned "
            f"{f'{learned:g} s' if learned else 'not yet'}; offline after "
            f"{offline_after(cadence).total_seconds() / 60:g} min of silence, an anomaly "
            f"sustained after {sustain_for(cadence).total_seconds() / 60:g} min; the anomaly "
            f"detector reads windows of {anomaly_window(cadence).width_s / 60:g} min."
        )
