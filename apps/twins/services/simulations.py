"""Simulation runs on twins: validated and queued on request, computed by a Celery task that
reports its progress to the row (the API and page poll it) and to the twin's room."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import fields, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from celery import Task
from django.conf import settings
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.utils import timezone

from apps.core.background import task_enqueue
from apps.core.exceptions import Conflict
from apps.core.labels import label
from apps.core.realtime import broadcast, broadcast_on_commit
from apps.twins import ageing, physics
from apps.twins.models import DigitalTwin, Simulation
from apps.twins.selectors import node_seed_window
from apps.twins.services.edits import twin_group
from apps.users.models import User
from apps.users.roles import Action, scope_for
from apps.vendors.models import FabricationNode

logger = logging.getLogger(__name__)

# A twin of one of these types is a machine whose physics scenarios can run without naming one.
MACHINE_KIND_OF_TYPE = {
    DigitalTwin.Type.PRINTER: "fdm_printer",
    DigitalTwin.Type.MILL: "cnc_mill",
    DigitalTwin.Type.LATHE: "cnc_lathe",
    DigitalTwin.Type.LASER: "laser_cutter",
    DigitalTwin.Type.SPINDLE: "cnc_mill",
}
SEED_LABELS = {
    "temperature_c": "temperature",
    "vibration_mm_s": "vibration",
    "power_kw": "power",
    "spindle_rpm": "speed",
}
AGEING_PARAMS = ("avg_rpm", "load_n", "temperature_c", "duty_cycle", "horizon_h", "threshold")


def _field_errors(message: str) -> ValidationError:
    """The pure models' "field: what is allowed; ..." messages as a per-field ValidationError."""
    errors: dict[str, list[str]] = {}
    for part in message.split("; "):
        name, sep, text = part.partition(": ")
        errors.setdefault(name if sep else "params", []).append(text if sep else part)
    return ValidationError(errors)


def _ageing_setup(twin: DigitalTwin, params: dict[str, Any]) -> dict[str, Any]:
    component = params.get("component") or (
        twin.twin_type if twin.twin_type in ageing.DEFAULTS else None
    )
    if component not in ageing.DEFAULTS:
        raise ValidationError(
            {"component": [f"Choose one of {', '.join(ageing.DEFAULTS)} for a {twin.twin_type}."]}
        )
    missing = [name for name in AGEING_PARAMS[:4] if params.get(name) is None]
    if missing:
        raise ValidationError({name: ["This field is required."] for name in missing})
    conditions = ageing.Conditions(
        **{name: float(params[name]) for name in AGEING_PARAMS if params.get(name) is not None},
        steps=int(params.get("steps") or 200),
    )
    try:
        conditions.check()
    except ageing.AgeingError as exc:
        raise _field_errors(str(exc)) from exc
    constants, source = _constants(twin, component)
    return {
        "component": component,
        "conditions": conditions,
        "constants": constants,
        "source": source,
        "samples": int(params.get("samples") or 500),
    }


def _constants(twin: DigitalTwin, component: str) -> tuple[ageing.Constants, str]:
    """The component's defaults, overridden by the twin's own `ageing_constants` (numbers by
    field name) when it has them. A materials catalog (apps.materials) will come before both."""
    base = ageing.DEFAULTS[component]
    overrides = (
        twin.properties.get("ageing_constants") if isinstance(twin.properties, dict) else None
    )
    if not overrides:
        return base, f"defaults for a {component}"
    if not isinstance(overrides, dict):
        raise ValidationError({"ageing_constants": ["The twin's ageing_constants is an object."]})
    known = {f.name for f in fields(ageing.Constants)} - {"zones"}
    unknown = sorted(set(overrides) - known)
    bad = sorted(
        k
        for k, v in overrides.items()
        if k in known and not isinstance(v, int | float) or v is True
    )
    if unknown or bad:
        problems = [f"unknown constants {', '.join(unknown)}"] if unknown else []
        problems += [f"{', '.join(bad)} must be numbers"] if bad else []
        raise ValidationError(
            {"ageing_constants": ["The twin's ageing_constants: " + "; ".join(problems) + "."]}
        )
    changed: dict[str, Any] = {str(k): float(v) for k, v in overrides.items()}
    names = ", ".join(sorted(changed))
    return replace(base, **changed), (
        f"defaults for a {component}, with the twin's ageing_constants ({names})"
    )


def _scenarios_setup(twin: DigitalTwin, params: dict[str, Any]) -> dict[str, Any]:
    names = params.get("scenarios") or list(physics.SCENARIOS)
    unknown = [n for n in names if n not in physics.SCENARIOS]
    if unknown:
        raise ValidationError(
            {
                "scenarios": [
                    f"Unknown {', '.join(unknown)}; choose from {', '.join(physics.SCENARIOS)}."
                ]
            }
        )
    kind = params.get("machine_kind") or (
        twin.node.kind if twin.node else MACHINE_KIND_OF_TYPE.get(DigitalTwin.Type(twin.twin_type))
    )
    if not kind:
        raise ValidationError(
            {"machine_kind": ["Link the twin to a node or name the machine kind to simulate."]}
        )
    hours = float(params.get("hours") or 720)
    step = float(params.get("step_minutes") or 10)
    seed_minutes = params.get("seed_minutes") or physics.SEED_MINUTES
    low, high = physics.SEED_MINUTES_RANGE
    if (
        not isinstance(seed_minutes, int | float)
        or isinstance(seed_minutes, bool)
        or not low <= seed_minutes <= high
    ):
        raise ValidationError({"seed_minutes": [f"A number of minutes from {low:g} to {high:g}."]})
    try:
        spec = physics.spec_for(kind, twin.node.rated_power_kw if twin.node else None)
        physics.check(spec, names[0], hours, step_minutes=step)
    except physics.PhysicsError as exc:
        raise _field_errors(str(exc)) from exc
    return {
        "names": list(dict.fromkeys(names)),
        "spec": spec,
        "hours": hours,
        "step": step,
        "seed_minutes": float(seed_minutes),
    }


def simulation_start(
    *, by: User, twin: DigitalTwin, kind: str, params: dict[str, Any]
) -> Simulation:
    """Checks the parameters now (so mistakes come back at once) and queues the run. The
    caller has fetched `twin` through twin_get_for_user: anyone whose role runs simulations
    may run them on twins they can see (they change nothing on the twin)."""
    if scope_for(by, Action.SIMULATION_RUN) is None:
        raise PermissionDenied("Your role does not allow running simulations.")
    if kind == Simulation.Kind.AGEING:
        _ageing_setup(twin, params)
    elif kind == Simulation.Kind.SCENARIOS:
        _scenarios_setup(twin, params)
    else:
        raise ValidationError({"kind": [f"One of {', '.join(Simulation.Kind.values)}."]})
    limit = settings.TWINS_SIMULATIONS_PER_USER
    recent = timezone.now() - timedelta(hours=1)
    unfinished = Simulation.objects.filter(
        created_by=by,
        created_at__gte=recent,
        status__in=[Simulation.Status.QUEUED, Simulation.Status.RUNNING],
    ).count()
    if unfinished >= limit:
        raise Conflict(
            f"You have {unfinished} simulations queued or running; start another when one finishes."
        )
    simulation = Simulation.objects.create(twin=twin, kind=kind, params=params, created_by=by)
    _tell(simulation, on_commit=True)
    from apps.twins.tasks import simulation_run_task

    simulation_id = simulation.pk
    transaction.on_commit(lambda: _queue_run(simulation_run_task, simulation_id))
    return simulation


def _queue_run(task: Task[[int], str], simulation_id: int) -> None:
    if not task_enqueue(task, simulation_id):
        # Said at once, not left "queued" for ever; the user may start it again.
        Simulation.objects.filter(pk=simulation_id, status=Simulation.Status.QUEUED).update(
            status=Simulation.Status.FAILED,
            error="The background workers are unreachable right now; start it again shortly.",
            finished_at=timezone.now(),
        )


def _tell(simulation: Simulation, *, on_commit: bool = False) -> None:
    payload = {
        "type": "twin.simulation",
        "id": simulation.pk,
        "kind": simulation.kind,
        "status": simulation.status,
        "progress": round(simulation.progress, 3),
        "stage": simulation.stage,
    }
    if on_commit:
        broadcast_on_commit(twin_group(simulation.twin_id), payload)
    else:
        broadcast(twin_group(simulation.twin_id), payload)


class _Progress:
    """Saves and announces progress at most every `every_s` seconds (and at 100%)."""

    def __init__(self, simulation: Simulation, every_s: float = 0.5) -> None:
        self.simulation = simulation
        self.every_s = every_s
        self.last = 0.0

    def __call__(self, fraction: float, stage: str | None = None) -> None:
        sim = self.simulation
        sim.progress = max(sim.progress, min(1.0, fraction))
        if stage is not None:
            sim.stage = stage[:200]
        now = time.monotonic()
        if now - self.last >= self.every_s or fraction >= 1.0:
            self.last = now
            sim.save(update_fields=["progress", "stage", "updated_at"])
            _tell(sim)


def simulation_run(*, pk: int) -> Simulation:
    """Computes a queued simulation (a redelivered task finds it claimed and does nothing)."""
    claimed = Simulation.objects.filter(pk=pk, status=Simulation.Status.QUEUED).update(
        status=Simulation.Status.RUNNING, started_at=timezone.now(), updated_at=timezone.now()
    )
    simulation = Simulation.objects.select_related("twin", "twin__node").get(pk=pk)
    if not claimed:
        return simulation
    progress = _Progress(simulation)
    try:
        if simulation.kind == Simulation.Kind.AGEING:
            result = _run_ageing(simulation, progress)
        else:
            result = _run_scenarios(simulation, progress)
    except (ValidationError, ageing.AgeingError, physics.PhysicsError) as exc:
        from apps.core.exceptions import error_messages

        _finish(simulation, error="; ".join(error_messages(exc)))
    except Exception:
        logger.exception("simulation %s failed", pk)
        _finish(simulation, error="The simulation stopped on an internal error; it was logged.")
    else:
        _finish(simulation, result=result)
    return simulation


def _finish(
    simulation: Simulation, *, result: dict[str, Any] | None = None, error: str = ""
) -> None:
    simulation.status = Simulation.Status.FAILED if error else Simulation.Status.SUCCEEDED
    simulation.error = error[:1000]
    simulation.result = result
    simulation.finished_at = timezone.now()
    if not error:
        simulation.progress = 1.0
        simulation.stage = "Done"
    simulation.save(
        update_fields=[
            "status",
            "error",
            "result",
            "finished_at",
            "progress",
            "stage",
            "updated_at",
        ]
    )
    _tell(simulation)


def _run_ageing(simulation: Simulation, progress: Callable[..., None]) -> dict[str, Any]:
    setup = _ageing_setup(simulation.twin, simulation.params)
    progress(0.02, "Trajectory")
    result = ageing.simulate(
        setup["component"], setup["conditions"], setup["constants"], source=setup["source"]
    )
    result["uncertainty"] = ageing.simulate_uncertainty(
        setup["component"],
        setup["conditions"],
        setup["constants"],
        samples=setup["samples"],
        progress=lambda f: progress(0.05 + 0.95 * f, "Uncertainty (Monte Carlo)"),
    )
    return result


def _share(
    progress: Callable[..., None], index: int, count: int, label: str
) -> Callable[[float], None]:
    """Progress of run `index` of `count` as its share of the whole."""
    return lambda fraction: progress((index + fraction) / count, label)


def _run_scenarios(simulation: Simulation, progress: Callable[..., None]) -> dict[str, Any]:
    twin = simulation.twin
    setup = _scenarios_setup(twin, simulation.params)
    seed, window = physics.Seed(), None
    use_telemetry = simulation.params.get("use_telemetry", True)
    if twin.node and use_telemetry:
        # The hour before the run was asked for: a run that waited in the queue starts from
        # the machine as it was when asked.
        seed, window = scenario_seed(
            node=twin.node,
            end=simulation.created_at,
            minutes=setup["seed_minutes"],
            spec=setup["spec"],
        )
    names = setup["names"]
    runs: dict[str, Any] = {}
    for i, name in enumerate(names):
        runs[name] = physics.run(
            setup["spec"],
            name,
            setup["hours"],
            seed,
            step_minutes=setup["step"],
            progress=_share(progress, i, len(names), physics.SCENARIOS[name].label),
        )
    return {
        "machine_kind": setup["spec"].kind,
        "machine_label": label(setup["spec"].kind, "node_kind"),
        "comparison_note": physics.compare_note(runs),
        "hours": setup["hours"],
        "seed_source": seed.source,
        "seed_window": window,
        "summary": [
            {
                "scenario": name,
                "label": run["label"],
                "health_score_end": run["health_score_end"],
                "rul_hours": run["rul_hours"],
                "explanation": run["explanation"],
                **run["events"],
            }
            for name, run in runs.items()
        ],
        "scenarios": runs,
    }


def _utc(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def scenario_seed(
    *, node: FabricationNode, end: datetime, minutes: float, spec: physics.MachineSpec
) -> tuple[physics.Seed, dict[str, Any]]:
    """The seed of a node's scenarios from the load profile of the `minutes` before `end`
    (apps.twins.selectors.node_seed_window), and what the result page says of it: the window,
    how many readings it held and which ones each value is the median of. An empty window
    seeds nothing (the scenarios' own conditions) and says so."""
    running_kw = physics.running_power_kw(spec)
    window = node_seed_window(node=node, end=end, minutes=minutes, running_kw=running_kw)
    span = f"the {minutes:g} minutes from {_utc(window.start)} to {_utc(window.end)}"
    described: dict[str, Any] = {
        "start": window.start.isoformat(),
        "end": window.end.isoformat(),
        "minutes": minutes,
        "points": window.points,
        "running": window.running,
        "running_above_kw": round(running_kw, 4),
        "medians": {name: round(value, 4) for name, value in window.medians.items()},
        "readings": window.readings,
    }
    if not window.points:
        newest = (
            f"Its newest reading is from {_utc(window.newest)}."
            if window.newest is not None
            else "It has never reported."
        )
        described["summary"] = (
            f"No telemetry from {node.name} in {span}: the scenarios start from their own "
            f"conditions. {newest}"
        )
        return physics.Seed(source=f"defaults (no telemetry from {node.name} in {span})"), (
            described
        )
    running = (
        f"{window.running} of them running (above {running_kw:.3g} kW)"
        if window.running
        else f"none of them running (above {running_kw:.3g} kW): the scenarios' own load applies"
    )
    medians = ", ".join(
        f"{SEED_LABELS[name]} over {window.readings[name]}" for name in window.medians
    )
    described["summary"] = (
        f"Started from {node.name}'s telemetry of {span}: {window.points} readings, {running}. "
        f"Each value is a median: {medians}."
    )
    seed = physics.Seed(
        **window.medians,
        source=(
            f"telemetry of {node.name} from {_utc(window.start)} to {_utc(window.end)} "
            f"(medians of {window.points} readings)"
        ),
    )
    return seed, described
