"""Who may see and edit which twin.

View: admins; the twin's owner; members of its organization; vendors of its node and operators of
the node's site; anyone it is shared with (guardian `view_digitaltwin` or `change_digitaltwin`,
directly or through a team). Edit: the role matrix's TWIN_EDIT scope: all (admin), own and shared
(designers, engineers: owner or shared for editing), own nodes (vendors: twins of their nodes,
their own, or shared for editing). Viewers and operators never edit.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timedelta

import numpy as np
from django.db.models import Q, QuerySet
from django.shortcuts import get_object_or_404
from guardian.shortcuts import get_objects_for_user

from apps.telemetry.models import TelemetryPoint
from apps.twins.models import DigitalTwin, MixRecipe, Simulation, TwinLock
from apps.users.models import User
from apps.users.roles import Action, Scope, scope_for
from apps.users.selectors import user_organization_ids
from apps.vendors.models import FabricationNode

VIEW = "twins.view_digitaltwin"
EDIT = "twins.change_digitaltwin"


def _shared(user: User, perms: list[str]) -> QuerySet[DigitalTwin]:
    return get_objects_for_user(
        user, perms, klass=DigitalTwin, any_perm=True, accept_global_perms=False
    )


def twin_list(*, user: User) -> QuerySet[DigitalTwin]:
    twins = DigitalTwin.objects.select_related("owner", "organization", "node")
    if not user.is_authenticated or not user.is_active:
        return twins.none()
    if scope_for(user, Action.TWIN_EDIT) == Scope.ALL:
        return twins
    visible = (
        Q(owner=user)
        | Q(organization__memberships__user=user)
        | Q(node__vendor__memberships__user=user)
        | Q(node__site__memberships__user=user)
        | Q(pk__in=_shared(user, [VIEW, EDIT]).values("pk"))
    )
    return twins.filter(visible).distinct()


def twin_get_for_user(*, user: User, pk: int) -> DigitalTwin:
    """404 for twins the caller may not see, so ids don't leak."""
    return get_object_or_404(twin_list(user=user), pk=pk)


def twin_can_edit(*, user: User, twin: DigitalTwin) -> bool:
    scope = scope_for(user, Action.TWIN_EDIT)
    if scope is None:
        return False
    if scope == Scope.ALL or twin.owner_id == user.pk:
        return True
    if _shared(user, [EDIT]).filter(pk=twin.pk).exists():
        return True
    return (
        scope == Scope.OWN_NODES
        and twin.node is not None
        and twin.node.vendor.memberships.filter(user=user).exists()
    )


def twin_can_manage(*, user: User, twin: DigitalTwin) -> bool:
    """Share, upload a model, delete: the owner or an admin."""
    return scope_for(user, Action.TWIN_EDIT) == Scope.ALL or (
        twin.owner_id == user.pk and scope_for(user, Action.TWIN_EDIT) is not None
    )


def lock_list(*, twin: DigitalTwin, now: datetime) -> QuerySet[TwinLock]:
    """The twin's live locks (not released, not expired)."""
    return (
        TwinLock.objects.filter(twin=twin, released_at__isnull=True, expires_at__gt=now)
        .select_related("holder")
        .order_by("path", "acquired_at")
    )


# The readings a physics scenario starts from, and the Seed fields they fill.
SEED_SIGNALS = {
    "temperature_c": "temperature_c",
    "vibration_mm_s": "vibration_mm_s",
    "power_kw": "power_kw",
    "spindle_rpm": "spindle_rpm",
}


@dataclass(frozen=True)
class SeedWindow:
    """A node's readings in (start, end], summed up for a physics seed: per Seed field the
    median of the readings it is taken over, and how many those were."""

    start: datetime
    end: datetime
    points: int  # readings in the window
    running: int  # of them taken running (power above running_kw, the spindle turning)
    medians: dict[str, float]
    readings: dict[str, int]
    newest: datetime | None  # the node's newest reading up to `end` (set when the window is empty)


def node_seed_window(
    *, node: FabricationNode, end: datetime, minutes: float, running_kw: float
) -> SeedWindow:
    """The load profile of the `minutes` before `end`, by robust statistics: one reading
    (a mill between two cuts, or mid-cut) does not decide the seed. Power, speed and vibration
    are the medians of the readings taken running (drawing more than `running_kw`, with the
    spindle turning where it reports one: what a scenario's duty cycle runs at; vibration over
    every reading when none was), temperature the median of every reading. Signals without
    a reading are absent from `medians`."""
    start = end - timedelta(minutes=minutes)
    fields = list(SEED_SIGNALS.values())
    rows = np.array(
        [
            [math.nan if v is None else float(v) for v in row]
            for row in TelemetryPoint.objects.filter(
                node=node, time__gt=start, time__lte=end
            ).values_list(*fields)
        ],
        dtype=float,
    ).reshape(-1, len(fields))
    column = {name: rows[:, fields.index(signal)] for name, signal in SEED_SIGNALS.items()}
    power, rpm = column["power_kw"], column["spindle_rpm"]
    running = (power > running_kw) & ~(rpm <= 0)  # NaN compares False: unknown speed counts
    taken = {
        "temperature_c": column["temperature_c"],
        "power_kw": power[running],
        "spindle_rpm": rpm[running],
        "vibration_mm_s": column["vibration_mm_s"][running]
        if running.any()
        else column["vibration_mm_s"],
    }
    medians: dict[str, float] = {}
    readings: dict[str, int] = {}
    for name, values in taken.items():
        values = values[~np.isnan(values)]
        if len(values):
            medians[name] = float(np.median(values))
            readings[name] = len(values)
    newest = None
    if not len(rows):
        newest = (
            TelemetryPoint.objects.filter(node=node, time__lte=end)
            .order_by("-time")
            .values_list("time", flat=True)
            .first()
        )
    return SeedWindow(start, end, len(rows), int(running.sum()), medians, readings, newest)


def simulation_list(*, twin: DigitalTwin) -> QuerySet[Simulation]:
    """A twin's simulations, newest first (callers have checked the twin is visible)."""
    return Simulation.objects.filter(twin=twin).select_related("created_by")


def recipe_list(*, user: User) -> QuerySet[MixRecipe]:
    """Mixing recipes of the caller's organizations (all of them for admins)."""
    recipes = MixRecipe.objects.select_related("author", "organization")
    if not user.is_authenticated or not user.is_active:
        return recipes.none()
    if scope_for(user, Action.TWIN_EDIT) == Scope.ALL:
        return recipes
    return recipes.filter(organization_id__in=user_organization_ids(user=user))
