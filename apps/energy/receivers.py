"""The energy app's hooks into jobs and telemetry (connected from EnergyConfig.ready):
- part finished -> consumption recorded (in Celery; the daily reconciliation catches misses);
- the jobs scheduler's energy provider -> apps.energy.outlook.energy_outlook_for;
- the job page's energy panel ("This job: 1.2 kWh, 0.3 kg CO2e");
- the Live pages' power-cap flags (apps.telemetry.site_power: a site drawing over its cap);
- telemetry with `battery_soc_pct` in its extras -> the node's batteries' state of charge;
- audit of the sources, factors and caps from every entry point."""

from __future__ import annotations

import logging
from typing import Any

logger = logging.getLogger(__name__)

PANEL_TEMPLATE = "energy/_job_panel.html"


def connect() -> None:
    from apps.core.audit import audit_track_model
    from apps.energy.models import EmissionFactor, EnergySource, SitePowerCap
    from apps.energy.outlook import energy_outlook_for
    from apps.jobs.providers import part_finished, register_energy_provider, register_job_panel
    from apps.telemetry.services import telemetry_ingested
    from apps.telemetry.site_power import register_site_power_provider

    part_finished.connect(_on_part_finished, dispatch_uid="energy.consumption")
    telemetry_ingested.connect(_on_ingest, dispatch_uid="energy.battery_soc")
    register_energy_provider(energy_outlook_for)
    register_job_panel(job_energy_panel)
    register_site_power_provider(live_site_power)
    for model in (EnergySource, EmissionFactor, SitePowerCap):
        audit_track_model(model)


def _on_part_finished(
    sender: Any, part_id: int, report: dict[str, Any] | None = None, **kwargs: Any
) -> None:
    """Sent after commit: queue the recording; if the broker is away the daily reconciliation
    records it instead (the node's report is kept on the part)."""
    from apps.core.background import task_enqueue
    from apps.energy.tasks import consumption_record_task

    try:
        # fire-and-forget: `delay()` waited ~20 s for the result backend while Redis was down,
        # on the node's work API request that finished the part
        task_enqueue(consumption_record_task, part_id, report or {})
    except Exception:
        logger.exception("energy: could not queue consumption of part %s", part_id)


def _on_ingest(sender: Any, node_id: int, point: Any, **kwargs: Any) -> None:
    soc = (getattr(point, "extra", None) or {}).get("battery_soc_pct")
    if isinstance(soc, int | float) and not isinstance(soc, bool):
        from apps.energy.services import node_battery_soc_update

        node_battery_soc_update(node_id=node_id, soc_pct=float(soc))


def live_site_power(user: Any, nodes: Any) -> Any:
    """The Live pages' cap flags (apps.telemetry.site_power)."""
    from apps.energy.selectors import site_power_live

    return site_power_live(user=user, nodes=nodes)


def job_energy_panel(job: Any, user: Any) -> tuple[str, dict[str, Any]]:
    from django.conf import settings

    from apps.energy.selectors import job_energy, job_machine_time_kwh

    scale = settings.DEMO_TIME_SCALE
    context = {"energy": job_energy(job=job), "energy_job": job, "demo_time_scale": None}
    if scale > 1:  # measured over compressed demo runs: say so, and what it is in machine time
        context["demo_time_scale"] = scale
        context["machine_time_kwh"] = job_machine_time_kwh(job=job, time_scale=scale)
    return PANEL_TEMPLATE, context
