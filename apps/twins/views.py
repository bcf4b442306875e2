"""Portal pages of the twins: list, detail (live editor, 3D view, history), simulations and the
mixer. The live parts talk to the API and the /ws/twins/<id>/ socket from static/js/twin_*.js."""

from __future__ import annotations

import json
from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.paginator import Paginator
from django.http import Http404, HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.views.decorators.http import require_POST

from apps.core.exceptions import Conflict, error_messages
from apps.core.labels import alert_sentence, is_code, label_with_unit
from apps.twins import mixer
from apps.twins.forms import (
    AgeingForm,
    ModelUploadForm,
    RevertForm,
    ScenarioForm,
    ShareForm,
    TwinCreateForm,
)
from apps.twins.models import DigitalTwin, Simulation, TwinVersion
from apps.twins.selectors import (
    recipe_list,
    simulation_list,
    twin_can_edit,
    twin_can_manage,
    twin_get_for_user,
    twin_list,
)
from apps.twins.services import (
    simulation_start,
    twin_create,
    twin_diff,
    twin_model_upload,
    twin_revert,
    twin_share,
)
from apps.users.models import User
from apps.users.roles import Action, scope_for, user_can
from apps.users.types import AuthenticatedHttpRequest
from apps.vendors.selectors import node_list

SERVICE_ERRORS = (ValidationError, PermissionDenied, Conflict)


def _problems(form: Any) -> str:
    return "; ".join(f"{k}: {' '.join(str(e) for e in v)}" for k, v in form.errors.items())


@login_required
def twin_list_view(request: AuthenticatedHttpRequest) -> HttpResponse:
    twins = twin_list(user=request.user)
    twin_type = request.GET.get("type", "")
    search = request.GET.get("q", "").strip()
    if twin_type in DigitalTwin.Type.values:
        twins = twins.filter(twin_type=twin_type)
    if search:
        twins = twins.filter(name__icontains=search)
    page = Paginator(twins, 25).get_page(request.GET.get("page"))
    can_create = scope_for(request.user, Action.TWIN_EDIT) is not None
    form = TwinCreateForm(nodes=node_list(user=request.user)) if can_create else None
    query = "&".join(f"{k}={v}" for k, v in (("type", twin_type), ("q", search)) if v)
    return render(
        request,
        "twins/twin_list.html",
        {
            "page": page,
            "types": DigitalTwin.Type.choices,
            "type": twin_type,
            "q": search,
            "query": query,
            "form": form,
        },
    )


@require_POST
@login_required
def twin_create_view(request: AuthenticatedHttpRequest) -> HttpResponse:
    form = TwinCreateForm(request.POST, nodes=node_list(user=request.user))
    if not form.is_valid():
        messages.error(request, f"The twin was not created: {_problems(form)}")
        return redirect("twins:list")
    try:
        twin = twin_create(
            by=request.user,
            name=form.cleaned_data["name"],
            twin_type=form.cleaned_data["twin_type"],
            node=form.cleaned_data["node"],
            tags=form.cleaned_data["tags"],
        )
    except SERVICE_ERRORS as exc:
        messages.error(request, "The twin was not created: " + "; ".join(error_messages(exc)))
        return redirect("twins:list")
    messages.success(request, f"Twin “{twin.name}” created.")
    return redirect("twins:detail", pk=twin.pk)


@login_required
def twin_detail_view(request: AuthenticatedHttpRequest, pk: int) -> HttpResponse:
    twin = twin_get_for_user(user=request.user, pk=pk)
    versions = Paginator(
        TwinVersion.objects.filter(twin=twin).select_related("author").order_by("-number"), 15
    ).get_page(request.GET.get("page"))
    can_manage = twin_can_manage(user=request.user, twin=twin)
    return render(
        request,
        "twins/twin_detail.html",
        {
            "twin": twin,
            "versions": versions,
            "can_edit": twin_can_edit(user=request.user, twin=twin),
            "can_manage": can_manage,
            "can_simulate": user_can(request.user, Action.SIMULATION_RUN),
            "share_form": ShareForm() if can_manage else None,
            "upload_form": ModelUploadForm() if can_manage else None,
            "simulations": simulation_list(twin=twin)[:5],
            "wear_hint": _wear_now(twin),
            "live": _node_now(request.user, twin),
            "key_labels": _key_labels(twin.properties),
        },
    )


def _key_labels(properties: Any) -> dict[str, str]:
    """Labels of the property keys that are codes ("temperature_c" -> "Temperature (°C)"): the
    editor shows them in words, the path itself on hover (it is what the Path field takes)."""
    keys: set[str] = set()

    def walk(value: Any) -> None:
        if isinstance(value, dict):
            for key, inner in value.items():
                keys.add(str(key))
                walk(inner)
        elif isinstance(value, list):
            for inner in value:
                walk(inner)

    walk(properties)
    return {key: label_with_unit(key) for key in sorted(keys) if is_code(key)}


def _node_now(user: Any, twin: DigitalTwin) -> dict[str, Any] | None:
    """The twin's machine as it is now, beside its properties: the newest reading of each
    signal (for those who may watch the node's telemetry) and the maintenance agent's health,
    remaining life and open alerts (for those who maintain it). None for a twin of no node."""
    from apps.maintenance.models import Alert, NodeHealth
    from apps.maintenance.selectors import maintenance_can_view
    from apps.telemetry.selectors import SIGNALS, latest_points, telemetry_can_view

    node = twin.node
    if node is None:
        return None
    watch = telemetry_can_view(user=user, node_id=node.pk)
    maintain = maintenance_can_view(user=user, node=node)
    latest = None
    if watch:
        found = latest_points(node_ids=[node.pk])
        latest = found[0] if found else None
    readings = [
        {"signal": s, "label": label_with_unit(s, "signal"), "value": getattr(latest, s, None)}
        for s in SIGNALS
        if latest is not None and getattr(latest, s, None) is not None
    ]
    health = NodeHealth.objects.filter(node=node).first() if maintain else None
    alerts = (
        list(
            Alert.objects.select_related("rule")
            .filter(node=node, resolved_at=None)
            .order_by("first_seen")
        )
        if maintain
        else []
    )
    return {
        "node": node,
        "watch": watch,
        "maintain": maintain,
        "latest": latest,
        "readings": readings,
        "health": health,
        "alerts": [
            {
                "alert": a,
                "text": alert_sentence(
                    signal=a.signal,
                    value=a.value,
                    threshold=a.threshold,
                    mode=a.mode,
                    severity=a.severity,
                ),
            }
            for a in alerts
        ],
    }


def _wear_now(twin: DigitalTwin) -> dict[str, Any] | None:
    """The wear the latest ageing simulation predicts for the twin's time in service so far
    (hours since it was created), interpolated on the trajectory."""
    latest = (
        simulation_list(twin=twin)
        .filter(kind=Simulation.Kind.AGEING, status=Simulation.Status.SUCCEEDED)
        .first()
    )
    if latest is None or not latest.result:
        return None
    age_h = (timezone.now() - twin.created_at).total_seconds() / 3600
    points = latest.result["trajectory"]
    wear = points[-1]["wear_percent"]
    for before, after in zip(points, points[1:], strict=False):
        if before["time_hours"] <= age_h <= after["time_hours"]:
            span = after["time_hours"] - before["time_hours"] or 1.0
            share = (age_h - before["time_hours"]) / span
            wear = before["wear_percent"] + share * (after["wear_percent"] - before["wear_percent"])
            break
    return {"simulation": latest.pk, "age_hours": age_h, "wear_percent": round(wear, 2)}


@login_required
def twin_diff_view(request: AuthenticatedHttpRequest, pk: int) -> HttpResponse:
    twin = twin_get_for_user(user=request.user, pk=pk)
    raw = {k: request.GET.get(k, "") for k in ("from", "to")}
    if not all(v.isdigit() for v in raw.values()):
        messages.error(request, "Choose two version numbers to compare.")
        return redirect("twins:detail", pk=pk)
    a, b = int(raw["from"]), int(raw["to"])
    try:
        patch = twin_diff(twin=twin, a=a, b=b)
    except SERVICE_ERRORS as exc:
        messages.error(request, "; ".join(error_messages(exc)))
        return redirect("twins:detail", pk=pk)
    return render(
        request,
        "twins/twin_diff.html",
        {
            "twin": twin,
            "a": a,
            "b": b,
            "patch": [
                {**op, "shown": json.dumps(op["value"]) if "value" in op else None} for op in patch
            ],
            "can_edit": twin_can_edit(user=request.user, twin=twin),
        },
    )


@require_POST
@login_required
def twin_revert_view(request: AuthenticatedHttpRequest, pk: int) -> HttpResponse:
    twin = twin_get_for_user(user=request.user, pk=pk)
    form = RevertForm(request.POST)
    if not form.is_valid():
        messages.error(request, f"Not reverted: {_problems(form)}")
        return redirect("twins:detail", pk=pk)
    to = form.cleaned_data["version"]
    try:
        result = twin_revert(
            by=request.user, twin=twin, to=to, message=form.cleaned_data["message"]
        )
    except SERVICE_ERRORS as exc:
        messages.error(request, "Not reverted: " + "; ".join(error_messages(exc)))
        return redirect("twins:detail", pk=pk)
    messages.success(request, f"Reverted to version {to}: this is version {result.version}.")
    return redirect("twins:detail", pk=pk)


@require_POST
@login_required
def twin_share_view(request: AuthenticatedHttpRequest, pk: int) -> HttpResponse:
    twin = twin_get_for_user(user=request.user, pk=pk)
    form = ShareForm(request.POST)
    if not form.is_valid():
        messages.error(request, f"Not shared: {_problems(form)}")
        return redirect("twins:detail", pk=pk)
    user = User.objects.filter(email__iexact=form.cleaned_data["user"]).first()
    if user is None:
        messages.error(request, "Not shared: no user with that e-mail.")
        return redirect("twins:detail", pk=pk)
    try:
        twin_share(by=request.user, twin=twin, level=form.cleaned_data["level"], user=user)
    except SERVICE_ERRORS as exc:
        messages.error(request, "Not shared: " + "; ".join(error_messages(exc)))
        return redirect("twins:detail", pk=pk)
    level = form.cleaned_data["level"]
    messages.success(
        request,
        f"{user.email} may no longer open this twin."
        if level == "none"
        else f"Shared with {user.email} for {'editing' if level == 'edit' else 'viewing'}.",
    )
    return redirect("twins:detail", pk=pk)


@require_POST
@login_required
def twin_model_view(request: AuthenticatedHttpRequest, pk: int) -> HttpResponse:
    twin = twin_get_for_user(user=request.user, pk=pk)
    form = ModelUploadForm(request.POST, request.FILES)
    if not form.is_valid():
        messages.error(request, f"No model uploaded: {_problems(form)}")
        return redirect("twins:detail", pk=pk)
    upload = form.cleaned_data["file"]
    try:
        twin_model_upload(by=request.user, twin=twin, name=upload.name, data=upload.read())
    except SERVICE_ERRORS as exc:
        messages.error(request, "No model uploaded: " + "; ".join(error_messages(exc)))
        return redirect("twins:detail", pk=pk)
    messages.success(request, f"3D model {upload.name} uploaded.")
    return redirect("twins:detail", pk=pk)


@login_required
def twin_simulate_view(request: AuthenticatedHttpRequest, pk: int) -> HttpResponse:
    """Start an ageing or scenario simulation, and list the twin's past ones."""
    twin = twin_get_for_user(user=request.user, pk=pk)
    can_run = user_can(request.user, Action.SIMULATION_RUN)
    ageing_form = AgeingForm(initial={"component": twin.twin_type}, prefix="ageing")
    scenario_form = ScenarioForm(prefix="scenario")
    if request.method == "POST":
        if not can_run:
            raise PermissionDenied("Your role does not allow running simulations.")
        kind = request.POST.get("kind")
        form: AgeingForm | ScenarioForm
        if kind == Simulation.Kind.AGEING:
            form = ageing_form = AgeingForm(request.POST, prefix="ageing")
        elif kind == Simulation.Kind.SCENARIOS:
            form = scenario_form = ScenarioForm(request.POST, prefix="scenario")
        else:
            raise Http404
        if form.is_valid():
            params = {k: v for k, v in form.cleaned_data.items() if v not in ("", None)}
            try:
                simulation = simulation_start(by=request.user, twin=twin, kind=kind, params=params)
            except SERVICE_ERRORS as exc:
                messages.error(request, "Not started: " + "; ".join(error_messages(exc)))
            else:
                return redirect("twins:simulation", pk=pk, sid=simulation.pk)
        else:
            messages.error(request, f"Not started: {_problems(form)}")
    page = Paginator(simulation_list(twin=twin), 15).get_page(request.GET.get("page"))
    return render(
        request,
        "twins/simulate.html",
        {
            "twin": twin,
            "can_run": can_run,
            "ageing_form": ageing_form,
            "scenario_form": scenario_form,
            "page": page,
        },
    )


@login_required
def twin_simulation_view(request: AuthenticatedHttpRequest, pk: int, sid: int) -> HttpResponse:
    twin = twin_get_for_user(user=request.user, pk=pk)
    simulation = simulation_list(twin=twin).filter(pk=sid).first()
    if simulation is None:
        raise Http404
    return render(request, "twins/simulation.html", {"twin": twin, "simulation": simulation})


@login_required
def twin_mixer_view(request: AuthenticatedHttpRequest, pk: int) -> HttpResponse:
    twin = twin_get_for_user(user=request.user, pk=pk)
    if twin.twin_type != DigitalTwin.Type.MIXER:
        messages.error(request, "Only mixing sessions have a mixer.")
        return redirect("twins:detail", pk=pk)
    recipes = recipe_list(user=request.user).filter(organization=twin.organization)[:50]
    return render(
        request,
        "twins/mixer.html",
        {
            "twin": twin,
            "can_edit": twin_can_edit(user=request.user, twin=twin),
            "catalog": mixer.catalog(),
            "recipes": recipes,
        },
    )
