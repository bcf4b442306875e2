"""Rollouts: forwarding settings, gateway software, or both, shipped to a vendor's gateways in
waves (Eclipse hawkBit's model). Targets are the vendor's gateways at `target_site` (if given)
carrying every tag of `target_tags`, split into waves by `wave_sizes` (the last wave takes the
rest).

A wave starts by setting each of its gateways' `rollout_overlay` (the settings) and
`rollout_release` (the software): its next configuration version carries them (the target
remembers that version); a gateway applies a version that names other software by installing it
and switching to it first (edge/software.py). The gateway's own reports move
its target along: queued -> downloading (it pulled that version) -> applied (it reports running
it or a later one, on the software shipped) or failed (it reports that version refused, or runs
it on other software: a gateway too old to update itself). After each report the wave is
judged: a failed share above `error_threshold_pct` stops the rollout: no later wave starts and
the failed gateways are rolled back (their overlay removed: the next version is the old
configuration again, which they apply as any other). The rest of the stopped wave was handed the
settings already and finishes on its own reports, as in hawkBit: each that applies them keeps
them, each that fails is rolled back. An applied share of at least `success_threshold_pct`
starts the next wave, or completes the rollout after the last. Pause holds the next wave; cancel
ends the rollout and rolls back every gateway of it that has not applied the settings yet
(later waves were never touched). When a rollout ends, the gateways that applied it keep the
settings as their own (`forwarding`), so their configuration does not change again.
"""

from __future__ import annotations

from typing import Any

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.db.models import Q, QuerySet

from apps.core.exceptions import Conflict
from apps.users.models import Organization, User
from apps.users.roles import Action, Scope, scope_for
from apps.vendors.gateway_config import forwarding_clean
from apps.vendors.gateway_services import gateway_config_current
from apps.vendors.models import EdgeRelease, Gateway, Rollout, RolloutTarget

ACTIVE = (Rollout.Status.RUNNING, Rollout.Status.PAUSED)
PENDING = (RolloutTarget.State.QUEUED, RolloutTarget.State.DOWNLOADING)
MAX_WAVES = 20


def _open() -> Q:
    """Targets whose gateway's outcome still counts: all of a running or paused rollout's, and
    those a stopped rollout handed out before it stopped (they finish on their own reports)."""
    return Q(rollout__status__in=ACTIVE) | Q(
        rollout__status=Rollout.Status.STOPPED, state__in=PENDING, version__isnull=False
    )


def rollout_list(*, user: User) -> QuerySet[Rollout]:
    qs = Rollout.objects.select_related("vendor", "target_site")
    scope = scope_for(user, Action.NODE_MANAGE)
    if scope == Scope.ALL:
        return qs
    if scope == Scope.OWN_NODES:
        return qs.filter(vendor__memberships__user=user).distinct()
    return qs.none()


def _require_vendor(by: User, vendor: Organization) -> None:
    scope = scope_for(by, Action.NODE_MANAGE)
    if scope != Scope.ALL and not (
        scope == Scope.OWN_NODES and vendor.memberships.filter(user=by).exists()
    ):
        raise PermissionDenied("Only the vendor's members or an admin run its rollouts.")


def rollout_targets_select(
    *, vendor: Organization, site: Organization | None, tags: list[str]
) -> list[Gateway]:
    gateways = Gateway.objects.filter(vendor=vendor).order_by("name")
    if site is not None:
        gateways = gateways.filter(site=site)
    return [g for g in gateways if set(tags) <= set(g.tags)]


def _waves_clean(wave_sizes: Any) -> list[int]:
    if (
        not isinstance(wave_sizes, list)
        or not 1 <= len(wave_sizes) <= MAX_WAVES
        or not all(isinstance(n, int) and not isinstance(n, bool) and n >= 1 for n in wave_sizes)
    ):
        raise ValidationError(
            {"wave_sizes": f"Give 1-{MAX_WAVES} wave sizes, each a whole number >= 1."}
        )
    return wave_sizes


@transaction.atomic
def rollout_start(
    *,
    by: User,
    vendor: Organization,
    name: str,
    forwarding: dict[str, Any] | None = None,
    wave_sizes: list[int],
    success_threshold_pct: int,
    error_threshold_pct: int,
    site: Organization | None = None,
    tags: list[str] | None = None,
    release: EdgeRelease | None = None,
) -> Rollout:
    _require_vendor(by, vendor)
    settings = forwarding_clean(forwarding or {})
    if not settings and release is None:
        raise ValidationError(
            {"forwarding": "Say which settings or which software release the rollout ships."}
        )
    waves = _waves_clean(wave_sizes)
    if not 1 <= success_threshold_pct <= 100:
        raise ValidationError({"success_threshold_pct": "Give 1-100 (%)."})
    if not 0 <= error_threshold_pct <= 100:
        raise ValidationError({"error_threshold_pct": "Give 0-100 (%)."})
    tags = sorted({t.strip().lower() for t in tags or []})
    gateways = rollout_targets_select(vendor=vendor, site=site, tags=tags)
    if not gateways:
        raise ValidationError("No gateway of this vendor matches the site and tags.")
    busy = RolloutTarget.objects.filter(_open(), gateway__in=gateways).select_related(
        "gateway", "rollout"
    )
    if busy:
        names = ", ".join(sorted({f"{t.gateway.name} ({t.rollout.name})" for t in busy}))
        raise Conflict(f"Already in a running rollout: {names}.")
    rollout = Rollout.objects.create(
        vendor=vendor,
        name=name.strip() or "Rollout",
        forwarding=settings,
        release=release,
        target_site=site,
        target_tags=tags,
        wave_sizes=waves,
        success_threshold_pct=success_threshold_pct,
        error_threshold_pct=error_threshold_pct,
        created_by=by,
    )
    start = 0
    for number, size in enumerate(waves, start=1):
        last = number == len(waves)
        chunk = gateways[start:] if last else gateways[start : start + size]
        start += len(chunk)
        RolloutTarget.objects.bulk_create(
            RolloutTarget(rollout=rollout, gateway=g, wave=number) for g in chunk
        )
    _wave_start(rollout, 1)
    return rollout


def _wave_start(rollout: Rollout, wave: int) -> None:
    rollout.current_wave = wave
    rollout.save(update_fields=["current_wave", "updated_at"])
    for target in rollout.targets.filter(wave=wave).select_related("gateway"):
        gateway = target.gateway
        gateway.rollout_overlay = dict(rollout.forwarding)
        gateway.rollout_release_id = rollout.release_id
        gateway.save(update_fields=["rollout_overlay", "rollout_release", "updated_at"])  # audited
        target.version = gateway_config_current(gateway=gateway).version
        target.save(update_fields=["version", "updated_at"])


def _waves(rollout: Rollout) -> int:
    return max(rollout.targets.values_list("wave", flat=True), default=1)


def rollout_gateway_pulled(*, gateway: Gateway, version: int) -> None:
    """The gateway fetched `version`: the rollouts that wait for it see it downloading."""
    RolloutTarget.objects.filter(
        _open(),
        gateway=gateway,
        state=RolloutTarget.State.QUEUED,
        version=version,
    ).update(state=RolloutTarget.State.DOWNLOADING)


@transaction.atomic
def rollout_gateway_reported(*, gateway: Gateway) -> None:
    """The gateway reported what it runs: move its targets and judge their waves (or, in a
    stopped rollout, settle the gateway on its own)."""
    targets = RolloutTarget.objects.select_for_update(of=("self",)).filter(
        _open(), gateway=gateway, state__in=PENDING, version__isnull=False
    )
    for target in targets.select_related("rollout__release"):
        assert target.version is not None
        release = target.rollout.release
        if gateway.applied_version is not None and gateway.applied_version >= target.version:
            if release is None or gateway.software_version == release.software_version:
                target.state = RolloutTarget.State.APPLIED
            else:
                target.state = RolloutTarget.State.FAILED
                runs = gateway.software_version or "unnamed software"
                target.error = (
                    f"It applied version {target.version} on {runs}, not "
                    f"{release.software_version}: its software does not update itself."
                )
        elif gateway.apply_error.startswith(f"version {target.version}:"):
            target.state = RolloutTarget.State.FAILED
            target.error = gateway.apply_error
        else:
            continue
        target.save(update_fields=["state", "error", "updated_at"])
        if target.rollout.status == Rollout.Status.STOPPED:
            _settle(target)
        else:
            rollout_evaluate(rollout=target.rollout)


def rollout_evaluate(*, rollout: Rollout) -> Rollout:
    rollout = Rollout.objects.select_for_update().get(pk=rollout.pk)
    if rollout.status != Rollout.Status.RUNNING:
        return rollout
    wave = list(rollout.targets.filter(wave=rollout.current_wave).select_related("gateway"))
    size = len(wave)
    failed = sum(t.state == RolloutTarget.State.FAILED for t in wave)
    applied = sum(t.state == RolloutTarget.State.APPLIED for t in wave)
    if failed * 100 > rollout.error_threshold_pct * size:
        for target in wave:
            if target.state == RolloutTarget.State.FAILED:
                _roll_back(target)
        _end(rollout, Rollout.Status.STOPPED)
    elif applied * 100 >= rollout.success_threshold_pct * size:
        if rollout.current_wave < _waves(rollout):
            _wave_start(rollout, rollout.current_wave + 1)
        elif not any(t.state in PENDING for t in wave):
            _end(rollout, Rollout.Status.COMPLETED)
    return rollout


def _roll_back(target: RolloutTarget, why: str = "") -> None:
    gateway = target.gateway
    gateway.rollout_overlay = {}
    gateway.rollout_release = None
    gateway.save(update_fields=["rollout_overlay", "rollout_release", "updated_at"])
    target.state = RolloutTarget.State.ROLLED_BACK
    target.error = target.error or why
    target.save(update_fields=["state", "error", "updated_at"])


def _keep(target: RolloutTarget, rollout: Rollout) -> None:
    """The gateway applied the rollout's settings and software: they become its own (the same
    document, so no new version)."""
    gateway = target.gateway
    if (
        gateway.rollout_overlay == rollout.forwarding
        and gateway.rollout_release_id == rollout.release_id
    ):
        gateway.forwarding = {**gateway.forwarding, **gateway.rollout_overlay}
        gateway.rollout_overlay = {}
        if rollout.release_id is not None:
            gateway.software_release_id = rollout.release_id
        gateway.rollout_release = None
        gateway.save(
            update_fields=[
                "forwarding",
                "rollout_overlay",
                "software_release",
                "rollout_release",
                "updated_at",
            ]
        )


def _settle(target: RolloutTarget) -> None:
    """A stopped rollout's gateway finished: it keeps what it applied, or goes back."""
    if target.state == RolloutTarget.State.APPLIED:
        _keep(target, target.rollout)
    elif target.state == RolloutTarget.State.FAILED:
        _roll_back(target)


def _end(rollout: Rollout, status: str, *, call_back: bool = False) -> None:
    """The gateways that applied the rollout keep its settings; with `call_back` (cancel), those
    that have not applied them yet go back (a stop lets them finish, see `_settle`)."""
    for target in rollout.targets.filter(state=RolloutTarget.State.APPLIED).select_related(
        "gateway"
    ):
        _keep(target, rollout)
    if call_back:
        handed_out = rollout.targets.filter(state__in=PENDING, version__isnull=False)
        for target in handed_out.select_related("gateway"):
            _roll_back(target, "The rollout was cancelled before this gateway applied it.")
    rollout.status = status
    rollout.save(update_fields=["status", "updated_at"])


@transaction.atomic
def rollout_pause(*, rollout: Rollout, by: User) -> Rollout:
    _require_vendor(by, rollout.vendor)
    if rollout.status != Rollout.Status.RUNNING:
        raise Conflict(f"Only a running rollout pauses; this one is {rollout.status}.")
    rollout.status = Rollout.Status.PAUSED
    rollout.save(update_fields=["status", "updated_at"])
    return rollout


@transaction.atomic
def rollout_resume(*, rollout: Rollout, by: User) -> Rollout:
    _require_vendor(by, rollout.vendor)
    if rollout.status != Rollout.Status.PAUSED:
        raise Conflict(f"Only a paused rollout resumes; this one is {rollout.status}.")
    rollout.status = Rollout.Status.RUNNING
    rollout.save(update_fields=["status", "updated_at"])
    return rollout_evaluate(rollout=rollout)  # what happened meanwhile counts now


def rollout_has_handed_out(*, rollout: Rollout) -> bool:
    """Whether gateways of the rollout were handed its settings and have not answered yet."""
    return rollout.targets.filter(state__in=PENDING, version__isnull=False).exists()


@transaction.atomic
def rollout_cancel(*, rollout: Rollout, by: User) -> Rollout:
    """End a running or paused rollout; on a stopped one, call back what it still has out (it
    stays stopped: that is its story)."""
    _require_vendor(by, rollout.vendor)
    rollout = Rollout.objects.select_for_update().get(pk=rollout.pk)
    if rollout.status == Rollout.Status.STOPPED and rollout_has_handed_out(rollout=rollout):
        _end(rollout, Rollout.Status.STOPPED, call_back=True)
        return rollout
    if rollout.status not in ACTIVE:
        raise Conflict(f"This rollout is already {rollout.get_status_display().lower()}.")
    _end(rollout, Rollout.Status.CANCELLED, call_back=True)
    return rollout
