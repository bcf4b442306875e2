"""Portal pages for rollouts (vendor portal): the list, a rollout's waves with each gateway's
state (refreshed every few seconds while anything can still move), starting one, and pause,
resume and cancel. The same selector as the API decides who sees which: another vendor's
rollout is a 404."""

from __future__ import annotations

from collections.abc import Callable
from itertools import groupby

from django.contrib import messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST

from apps.core.exceptions import Conflict, error_messages
from apps.users.access import action_required, portal_required
from apps.users.models import Organization
from apps.users.roles import Action
from apps.users.types import AuthenticatedHttpRequest
from apps.vendors.forms import FORWARDING_LABELS, RolloutForm
from apps.vendors.models import Rollout, RolloutTarget
from apps.vendors.rollouts import (
    ACTIVE,
    rollout_cancel,
    rollout_has_handed_out,
    rollout_list,
    rollout_pause,
    rollout_resume,
    rollout_start,
)
from apps.vendors.selectors import vendor_organizations_for

# how often an open rollout page asks for the states again
REFRESH_S = 3


def _get(request: AuthenticatedHttpRequest, pk: int) -> Rollout:
    return get_object_or_404(rollout_list(user=request.user).select_related("release"), pk=pk)


def _context(rollout: Rollout) -> dict[str, object]:
    targets = list(rollout.targets.select_related("gateway").order_by("wave", "gateway__name"))
    waves = []
    for number, group in groupby(targets, key=lambda t: t.wave):
        members = list(group)
        waves.append(
            {
                "number": number,
                "targets": members,
                "applied": sum(t.state == RolloutTarget.State.APPLIED for t in members),
                "failed": sum(
                    t.state in (RolloutTarget.State.FAILED, RolloutTarget.State.ROLLED_BACK)
                    for t in members
                ),
                "started": any(t.version is not None for t in members),
            }
        )
    handed_out = rollout_has_handed_out(rollout=rollout)
    return {
        "rollout": rollout,
        "waves": waves,
        "settings": [
            *(
                [("Gateway software", f"imewe-edge {rollout.release.version}")]
                if rollout.release is not None
                else []
            ),
            *(
                (FORWARDING_LABELS.get(key, (key, ""))[0], value)
                for key, value in rollout.forwarding.items()
            ),
        ],
        "live": rollout.status in ACTIVE or handed_out,
        "can_cancel": rollout.status in ACTIVE
        or (rollout.status == Rollout.Status.STOPPED and handed_out),
        "refresh_s": REFRESH_S,
    }


@portal_required("vendor")
def rollout_list_view(request: AuthenticatedHttpRequest) -> HttpResponse:
    rollouts = list(
        rollout_list(user=request.user).select_related("release").prefetch_related("targets")[:200]
    )
    rows = []
    for rollout in rollouts:
        states = [t.state for t in rollout.targets.all()]
        rows.append(
            {
                "rollout": rollout,
                "gateways": len(states),
                "applied": states.count(RolloutTarget.State.APPLIED),
                "failed": states.count(RolloutTarget.State.FAILED)
                + states.count(RolloutTarget.State.ROLLED_BACK),
                "waves": len(rollout.wave_sizes),
            }
        )
    return render(request, "vendors/rollout_list.html", {"rows": rows})


@portal_required("vendor")
@action_required(Action.NODE_MANAGE)
def rollout_start_view(request: AuthenticatedHttpRequest) -> HttpResponse:
    vendors = vendor_organizations_for(user=request.user)
    if not vendors.exists():
        raise PermissionDenied("You are not a member of any vendor company.")
    sites = Organization.objects.filter(
        kind=Organization.Kind.OPERATOR_SITE, operated_gateways__vendor__in=vendors
    ).distinct()
    form = RolloutForm(request.POST or None, vendors=vendors, sites=sites)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            rollout = rollout_start(
                by=request.user,
                vendor=form.chosen_vendor(),
                name=data["name"],
                forwarding=form.forwarding(),
                release=data["release"],
                wave_sizes=data["wave_sizes"],
                success_threshold_pct=data["success_threshold_pct"],
                error_threshold_pct=data["error_threshold_pct"],
                site=data["site"],
                tags=data["tags"],
            )
        except (Conflict, ValidationError) as exc:
            _errors_to_form(form, exc)
        else:
            messages.success(request, f"{rollout.name} started: its first wave is being handed it.")
            return redirect("vendors:rollout-detail", pk=rollout.pk)
    return render(
        request, "vendors/rollout_form.html", {"form": form}, status=400 if form.errors else 200
    )


def _errors_to_form(form: RolloutForm, exc: Exception) -> None:
    if isinstance(exc, ValidationError) and hasattr(exc, "error_dict"):
        for key, errors in exc.message_dict.items():
            field = key.removeprefix("forwarding.")
            form.add_error(field if field in form.fields else None, errors)
    else:
        for line in error_messages(exc):
            form.add_error(None, line)


@portal_required("vendor")
def rollout_detail_view(request: AuthenticatedHttpRequest, pk: int) -> HttpResponse:
    return render(request, "vendors/rollout_detail.html", _context(_get(request, pk)))


@portal_required("vendor")
def rollout_live_view(request: AuthenticatedHttpRequest, pk: int) -> HttpResponse:
    """The part of the rollout's page that changes, for its periodic refresh."""
    return render(request, "vendors/_rollout_live.html", _context(_get(request, pk)))


def _act(
    request: AuthenticatedHttpRequest, pk: int, act: Callable[..., Rollout], done: str
) -> HttpResponse:
    rollout = _get(request, pk)
    try:
        rollout = act(rollout=rollout, by=request.user)
    except (Conflict, PermissionDenied) as exc:
        for line in error_messages(exc):
            messages.error(request, line)
    else:
        messages.success(request, f"{rollout.name}: {done}")
    return redirect("vendors:rollout-detail", pk=pk)


@require_POST
@portal_required("vendor")
def rollout_pause_view(request: AuthenticatedHttpRequest, pk: int) -> HttpResponse:
    return _act(request, pk, rollout_pause, "paused; no further wave starts until you resume.")


@require_POST
@portal_required("vendor")
def rollout_resume_view(request: AuthenticatedHttpRequest, pk: int) -> HttpResponse:
    return _act(request, pk, rollout_resume, "resumed.")


@require_POST
@portal_required("vendor")
def rollout_cancel_view(request: AuthenticatedHttpRequest, pk: int) -> HttpResponse:
    return _act(request, pk, rollout_cancel, "cancelled; gateways that had not applied it go back.")
