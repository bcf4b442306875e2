"""The model registry: every trained version with its metrics, and rollback."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import HttpResponse
from django.shortcuts import redirect
from django.views.decorators.http import require_POST

from apps.core import labels
from apps.core.exceptions import error_messages
from apps.core.ml import model_rollback
from apps.core.models import TrainedModel
from apps.maintenance.selectors import (
    registry_can_view,
    registry_list,
)
from apps.maintenance.views._base import (
    CHART_METRICS,
    METRIC_ORDER,
    SERVICE_ERRORS,
    _maybe_int,
    _readable,
    _render,
)
from apps.users.roles import Action, Scope, scope_for
from apps.users.types import AuthenticatedHttpRequest

# --- 6. Model registry ------------------------------------------------------------------------


def _metric_value(value: Any) -> str:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return _readable(value)
    return f"{value:.3f}" if isinstance(value, float) else str(value)


def _in_sentence(label: str) -> str:
    """A label inside a sentence: "Rows" -> "rows", "MAE (h)" stays."""
    first = label.split(" ", 1)[0]
    return label[0].lower() + label[1:] if first[1:].islower() else label


def _calibration_text(report: dict[str, Any]) -> str:
    """A failure model's held-out reliability: what its probabilities' intervals rest on."""
    head = (
        f"Brier {_metric_value(report.get('brier'))} (always the failure rate: "
        f"{_metric_value(report.get('brier_baseline'))}), expected calibration error "
        f"{_metric_value(report.get('expected_calibration_error'))}, over "
        f"{report.get('rows')} held-out rows"
    )
    bins = [
        f"scored {b['start']:.0%}-{b['end']:.0%}: {b['failures']} of {b['rows']} failed "
        f"({b['low']:.0%}-{b['high']:.0%})"
        for b in report.get("bins") or []
    ]
    return head + ("; " + "; ".join(bins) if bins else "")


def _metric_rows(metrics: dict[str, Any]) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    """Numeric metrics (known ones first) and the nested ones (baseline, comparison) as text."""
    keys = [k for k in METRIC_ORDER if k in metrics] + sorted(
        k for k in metrics if k not in METRIC_ORDER
    )
    scores, other = [], []
    for key in keys:
        value = metrics[key]
        label = labels.label_with_unit(key, "metric")
        if key == "calibration" and isinstance(value, dict):
            other.append((label, _calibration_text(value)))
        elif isinstance(value, dict):
            # (an empty text, e.g. no refusal reason, says nothing: left out)
            text = ", ".join(
                f"{_in_sentence(labels.label_with_unit(k, 'metric'))} {_metric_value(v)}"
                for k, v in value.items()
                if v != ""
            )
            other.append((label, text))
        else:
            scores.append((label, _metric_value(value)))
    return scores, other


def _main_metric(versions: list[TrainedModel]) -> str | None:
    """The metric the registry compared versions on, when the versions report it; else the
    first of the usual headline metrics they report."""

    def reported(key: str) -> bool:
        return any(isinstance((m.metrics or {}).get(key), int | float) for m in versions)

    for model in versions:
        compared = (model.metrics or {}).get("comparison")
        if isinstance(compared, dict) and reported(str(compared.get("metric"))):
            return str(compared["metric"])
    return next((key for key in CHART_METRICS if reported(key)), None)


def _model_title(name: str) -> str:
    """ "maintenance.anomaly.cnc_mill" -> "Anomaly detector: CNC mill"."""
    prefix = "maintenance.anomaly."
    if name.startswith(prefix):
        return f"Anomaly detector: {labels.label(name[len(prefix) :], 'node_kind')}"
    return labels.label(name, "model")


@login_required
def registry_view(request: AuthenticatedHttpRequest) -> HttpResponse:
    if not registry_can_view(user=request.user):
        raise PermissionDenied("The model registry is for the ops portal's roles.")
    by_name: dict[str, list[TrainedModel]] = defaultdict(list)
    for model in registry_list():
        by_name[model.name].append(model)
    groups = []
    for index, (name, versions) in enumerate(sorted(by_name.items())):
        metric = _main_metric(versions)
        oldest_first = sorted(versions, key=lambda m: m.version)
        chart = None
        if metric and len(versions) > 1:
            values = [(m.metrics or {}).get(metric) for m in oldest_first]
            chart = {
                "id": f"chart-model-{index}",
                "x": "category",
                "labels": [f"v{m.version}" for m in oldest_first],
                "series": [
                    {
                        "label": labels.label_with_unit(metric, "metric"),
                        "data": [v if isinstance(v, int | float) else None for v in values],
                        "axis": "y",
                    }
                ],
                "axes": {"y": labels.label_with_unit(metric, "metric")},
            }
        groups.append(
            {
                "name": name,
                "title": _model_title(name),
                "versions": versions,
                # (model, its numeric metrics, its nested ones as text), in the order of versions
                "rows": [(m, *_metric_rows(m.metrics or {})) for m in versions],
                "metric": metric,
                "chart": chart,
            }
        )
    return _render(
        request,
        "maintenance/registry.html",
        {
            "groups": groups,
            "can_rollback": scope_for(request.user, Action.SYSTEM_ADMIN) == Scope.ALL,
        },
    )


@require_POST
@login_required
def registry_rollback_view(request: AuthenticatedHttpRequest) -> HttpResponse:
    if scope_for(request.user, Action.SYSTEM_ADMIN) != Scope.ALL:
        raise PermissionDenied("Only administrators roll models back.")
    name = request.POST.get("name", "")
    version = _maybe_int(request.POST.get("version"))
    if not name or version is None:
        messages.error(request, "Choose a model version to make active.")
        return redirect("maintenance:models")
    try:
        model = model_rollback(name=name, version=version)
    except SERVICE_ERRORS as exc:
        messages.error(request, "Not changed: " + "; ".join(error_messages(exc)))
    else:
        messages.success(
            request, f"{_model_title(model.name)} v{model.version} is now the active version."
        )
    return redirect("maintenance:models")
