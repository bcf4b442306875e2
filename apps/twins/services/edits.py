"""Twins: creation, edits (ordered, transformed, versioned), diff and revert, sharing, and the
component locks that keep people from editing the same part of a twin at once."""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.contrib.auth.models import Group
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.utils import timezone
from guardian.shortcuts import assign_perm, remove_perm

from apps.core.exceptions import Conflict
from apps.core.realtime import broadcast_on_commit
from apps.twins import mixer, ot
from apps.twins.models import DigitalTwin, TwinLock, TwinVersion
from apps.twins.selectors import EDIT, VIEW, lock_list, twin_can_edit, twin_can_manage
from apps.users.models import Organization, User
from apps.users.roles import Action, Scope, scope_for
from apps.users.selectors import user_organization_ids
from apps.users.services import team_group
from apps.vendors.models import FabricationNode

MAX_DOCUMENT_BYTES = 256 * 1024
MAX_OPS_PER_EDIT = 100


def twin_group(twin_id: int) -> str:
    return f"twin.{twin_id}"


def _check_document(doc: Any) -> None:
    if not isinstance(doc, dict):
        raise ValidationError({"properties": ["The properties are a JSON object."]})
    if len(json.dumps(doc)) > MAX_DOCUMENT_BYTES:
        raise ValidationError(
            {"properties": [f"The properties may take at most {MAX_DOCUMENT_BYTES // 1024} KiB."]}
        )


# --- Twins -------------------------------------------------------------------------------------


@transaction.atomic
def twin_create(
    *,
    by: User,
    name: str,
    twin_type: str,
    properties: dict[str, Any] | None = None,
    tags: list[str] | None = None,
    node: FabricationNode | None = None,
    organization: Organization | None = None,
) -> DigitalTwin:
    scope = scope_for(by, Action.TWIN_EDIT)
    if scope is None:
        raise PermissionDenied("Your role does not allow creating twins.")
    orgs = user_organization_ids(user=by)
    if organization is None:
        if len(orgs) != 1:
            raise ValidationError({"organization": ["Say which organization the twin is for."]})
        organization = Organization.objects.get(pk=orgs[0])
    elif scope != Scope.ALL and organization.pk not in orgs:
        raise PermissionDenied("You are not a member of that organization.")
    if node is not None and scope == Scope.OWN_NODES and node.vendor_id not in orgs:
        raise PermissionDenied("Vendors link twins to their own nodes only.")
    doc = copy.deepcopy(properties or {})
    if twin_type == DigitalTwin.Type.MIXER and not doc:
        doc = mixer.session_defaults()  # a mixing session is usable from its first version
    _check_document(doc)
    clean_tags = sorted({str(t).strip()[:40] for t in (tags or []) if str(t).strip()})
    twin = DigitalTwin(
        name=name.strip(),
        twin_type=twin_type,
        node=node,
        owner=by,
        organization=organization,
        properties=doc,
        tags=clean_tags,
    )
    twin.full_clean(exclude=["model_file"])
    twin.save()
    TwinVersion.objects.create(
        twin=twin, number=1, author=by, message="Created", ops=[], document=doc
    )
    return twin


@dataclass(frozen=True)
class EditResult:
    version: int
    ops: list[dict[str, Any]]  # as applied, after transformation


class EditRejected(Conflict):
    """The edit could not be applied; `details` say why, so the client can rebase."""


def _locked_by_others(twin: DigitalTwin, by: User, paths: list[ot.Path]) -> str | None:
    for lock in lock_list(twin=twin, now=timezone.now()).filter(mode=TwinLock.Mode.EXCLUSIVE):
        if lock.holder_id == by.pk:
            continue
        held = ot.parse_path(lock.path)
        for path in paths:
            as_text = tuple(str(p) for p in path)
            if as_text[: len(held)] == held or held[: len(as_text)] == as_text:
                until = timezone.localtime(lock.expires_at).strftime("%H:%M:%S")
                return (
                    f"'{ot.path_text(path)}' is locked by {lock.holder.email} "
                    f"('{lock.path}', until {until})."
                )
    return None


@transaction.atomic
def twin_edit(
    *, by: User, twin: DigitalTwin, base_version: int, ops: list[Any], message: str = ""
) -> EditResult:
    """Applies `ops` (made against version `base_version`) as the next version. An edit based
    on an older version is transformed against the versions since (one operation at a time);
    what cannot keep its meaning, or touches a path someone else holds an exclusive lock on, is
    rejected with the reason. Edits of one twin are serialised by a row lock."""
    twin = DigitalTwin.objects.select_for_update().get(pk=twin.pk)
    if not twin_can_edit(user=by, twin=twin):
        raise PermissionDenied("You may view this twin but not edit it.")
    if not isinstance(ops, list) or not ops:
        raise ValidationError({"ops": ["A non-empty list of operations."]})
    if len(ops) > MAX_OPS_PER_EDIT:
        raise ValidationError({"ops": [f"At most {MAX_OPS_PER_EDIT} operations per edit."]})
    if not isinstance(base_version, int) or not 1 <= base_version <= twin.version:
        raise ValidationError(
            {"base_version": [f"A version of this twin, from 1 to {twin.version}."]}
        )
    if base_version < twin.version and len(ops) > 1:
        raise EditRejected(
            f"Based on version {base_version}, now {twin.version}: send one operation at a time "
            "or rebase on the latest version.",
            details={"reason": "rebase", "version": twin.version},
        )
    base_doc = (
        twin.properties
        if base_version == twin.version
        else TwinVersion.objects.get(twin=twin, number=base_version).document
    )
    parsed: list[ot.Op] = []
    working = base_doc
    for index, raw in enumerate(ops):
        try:
            op = ot.parse_op(raw, working)
            working = ot.apply(working, [op])
        except ot.OpError as exc:
            raise ValidationError({f"ops[{index}]": [str(exc)]}) from None
        parsed.append(op)
    if base_version < twin.version:
        since = [
            ot.parse_stored(stored)
            for version in TwinVersion.objects.filter(twin=twin, number__gt=base_version).order_by(
                "number"
            )
            for stored in version.ops
        ]
        result = ot.transform(parsed[0], since)
        if isinstance(result, ot.Rejected):
            raise EditRejected(
                result.reason, details={"reason": "conflict", "version": twin.version}
            )
        parsed = [result]
    locked = _locked_by_others(
        twin, by, [p for op in parsed for p in (op.path, op.source) if p is not None]
    )
    if locked:
        raise EditRejected(locked, details={"reason": "locked", "version": twin.version})
    try:
        document = ot.apply(twin.properties, parsed)
    except ot.OpError as exc:
        raise EditRejected(
            str(exc), details={"reason": "conflict", "version": twin.version}
        ) from None
    _check_document(document)
    applied = [op.as_json() for op in parsed]
    version = _new_version(
        twin=twin,
        by=by,
        ops=applied,
        document=document,
        based_on=base_version,
        message=message,
    )
    return EditResult(version=version.number, ops=applied)


def _new_version(
    *,
    twin: DigitalTwin,
    by: User,
    ops: list[dict[str, Any]],
    document: dict[str, Any],
    based_on: int,
    message: str,
) -> TwinVersion:
    """Appends a version (the caller holds the twin's row lock) and tells the twin's room."""
    TwinVersion.objects.filter(twin=twin, is_latest=True).update(is_latest=False)
    version = TwinVersion.objects.create(
        twin=twin,
        number=twin.version + 1,
        parent_number=twin.version,
        based_on=based_on,
        author=by,
        message=message.strip()[:300],
        ops=ops,
        document=document,
    )
    twin.version = version.number
    twin.properties = document
    twin.save(update_fields=["version", "properties", "updated_at"])
    broadcast_on_commit(
        twin_group(twin.pk),
        {
            "type": "twin.edit",
            "version": version.number,
            "ops": ops,
            "author": by.email,
            "message": version.message,
        },
    )
    return version


def twin_diff(*, twin: DigitalTwin, a: int, b: int) -> list[dict[str, Any]]:
    """RFC 6902 operations from version `a` to version `b` (either order)."""
    docs = dict(
        TwinVersion.objects.filter(twin=twin, number__in=[a, b]).values_list("number", "document")
    )
    missing = [n for n in (a, b) if n not in docs]
    if missing:
        raise ValidationError(
            {"version": [f"No version {missing[0]}: versions run from 1 to {twin.version}."]}
        )
    return ot.diff(docs[a], docs[b])


@transaction.atomic
def twin_revert(*, by: User, twin: DigitalTwin, to: int, message: str = "") -> EditResult:
    """Makes the document what it was at version `to`, as a new version (nothing is lost)."""
    twin = DigitalTwin.objects.select_for_update().get(pk=twin.pk)
    if not twin_can_edit(user=by, twin=twin):
        raise PermissionDenied("You may view this twin but not edit it.")
    target = TwinVersion.objects.filter(twin=twin, number=to).first()
    if target is None:
        raise ValidationError({"version": [f"No version {to}: 1 to {twin.version}."]})
    ops = ot.ops_between(twin.properties, target.document)
    if not ops:
        raise Conflict(f"The twin already is as it was at version {to}.")
    paths = [p for op in ops for p in (op.path, op.source) if p is not None]
    locked = _locked_by_others(twin, by, paths)
    if locked:
        raise EditRejected(locked, details={"reason": "locked", "version": twin.version})
    applied = [op.as_json() for op in ops]
    version = _new_version(
        twin=twin,
        by=by,
        ops=applied,
        document=ot.apply(twin.properties, ops),
        based_on=twin.version,
        message=message or f"Revert to version {to}",
    )
    return EditResult(version=version.number, ops=applied)


# --- Sharing -------------------------------------------------------------------------------------

LEVELS = {"view": [VIEW], "edit": [VIEW, EDIT]}


@transaction.atomic
def twin_share(
    *,
    by: User,
    twin: DigitalTwin,
    level: str,
    user: User | None = None,
    team: Organization | None = None,
) -> None:
    """Shares the twin for viewing or editing with a user or a team (an organization's members);
    level "none" takes the share back. Editing still needs a role that may edit twins."""
    if not twin_can_manage(user=by, twin=twin):
        raise PermissionDenied("Only the twin's owner or an admin may share it.")
    if (user is None) == (team is None):
        raise ValidationError({"user": ["Share with one user or one team."]})
    if level not in (*LEVELS, "none"):
        raise ValidationError({"level": ["view, edit or none."]})
    if user is not None:
        who: User | Group = user
    else:
        assert team is not None  # exactly one of the two, checked above
        who = team_group(organization=team)
    for perm in (VIEW, EDIT):
        remove_perm(perm, who, twin)
    for perm in LEVELS.get(level, []):
        assign_perm(perm, who, twin)


# --- Locks ---------------------------------------------------------------------------------------


def _lock_ttl() -> timedelta:
    return timedelta(seconds=settings.TWINS_LOCK_TTL_SECONDS)


def _related(a: str, b: str) -> bool:
    pa, pb = ot.parse_path(a), ot.parse_path(b)
    return pa[: len(pb)] == pb or pb[: len(pa)] == pa


def _lock_event(kind: str, lock: TwinLock) -> None:
    broadcast_on_commit(
        twin_group(lock.twin_id),
        {
            "type": f"lock.{kind}",
            "lock": lock.pk,
            "path": lock.path,
            "mode": lock.mode,
            "holder": lock.holder.email,
            "expires_at": lock.expires_at.isoformat(),
        },
    )


@transaction.atomic
def lock_acquire(*, by: User, twin: DigitalTwin, path: str, mode: str) -> TwinLock:
    """An exclusive lock conflicts with every other holder's live lock on the path, its
    ancestors and descendants; a shared one only with exclusive ones. Acquisitions of one twin
    are serialised by its row lock, so racing clients get exactly one exclusive holder."""
    if mode not in TwinLock.Mode.values:
        raise ValidationError({"mode": ["exclusive or shared."]})
    try:
        clean = ot.path_text(ot.parse_path(path))
    except ot.OpError as exc:
        raise ValidationError({"path": [str(exc)]}) from None
    twin = DigitalTwin.objects.select_for_update().get(pk=twin.pk)
    if not twin_can_edit(user=by, twin=twin):
        raise PermissionDenied("Only people who may edit the twin may lock its parts.")
    now = timezone.now()
    for lock in lock_list(twin=twin, now=now):
        if not _related(lock.path, clean):
            continue
        if lock.holder_id == by.pk:
            if lock.path == clean and lock.mode == mode:  # acquiring again renews it
                lock.expires_at = now + _lock_ttl()
                lock.save(update_fields=["expires_at"])
                return lock
            continue
        if mode == TwinLock.Mode.EXCLUSIVE or lock.mode == TwinLock.Mode.EXCLUSIVE:
            raise Conflict(
                f"'{clean}' conflicts with the {lock.mode} lock of {lock.holder.email} on "
                f"'{lock.path}'.",
                details={"lock": lock.pk, "path": lock.path, "holder": lock.holder.email},
            )
    lock = TwinLock.objects.create(
        twin=twin, path=clean, mode=mode, holder=by, expires_at=now + _lock_ttl()
    )
    _lock_event("acquired", lock)
    return lock


def _live_lock(*, twin: DigitalTwin, pk: int) -> TwinLock:
    lock = (
        lock_list(twin=twin, now=timezone.now()).select_for_update(of=("self",)).filter(pk=pk)
    ).first()
    if lock is None:
        raise Conflict("That lock is no longer held (released or expired).")
    return lock


@transaction.atomic
def lock_heartbeat(*, by: User, twin: DigitalTwin, pk: int) -> TwinLock:
    lock = _live_lock(twin=twin, pk=pk)
    if lock.holder_id != by.pk:
        raise PermissionDenied("Only the lock's holder keeps it alive.")
    lock.expires_at = timezone.now() + _lock_ttl()
    lock.save(update_fields=["expires_at"])
    return lock


@transaction.atomic
def lock_release(*, by: User, twin: DigitalTwin, pk: int, force: bool = False) -> TwinLock:
    lock = _live_lock(twin=twin, pk=pk)
    if force:
        if scope_for(by, Action.TWIN_EDIT) != Scope.ALL:
            raise PermissionDenied("Only an admin may force a lock open.")
    elif lock.holder_id != by.pk:
        raise PermissionDenied("Only the lock's holder releases it (admins may force it).")
    lock.released_at = timezone.now()
    lock.released_by = by
    lock.release_reason = "forced" if force and lock.holder_id != by.pk else "released"
    lock.save(update_fields=["released_at", "released_by", "release_reason"])
    _lock_event("released", lock)
    return lock


def locks_expire(*, now: datetime | None = None) -> int:
    """Marks expired locks as such and tells their twins' rooms (Celery beat, every minute)."""
    now = now or timezone.now()
    expired = list(
        TwinLock.objects.filter(released_at__isnull=True, expires_at__lte=now).select_related(
            "holder"
        )
    )
    for lock in expired:
        lock.released_at = lock.expires_at
        lock.release_reason = "expired"
        lock.save(update_fields=["released_at", "release_reason"])
        _lock_event("expired", lock)
    return len(expired)


# --- 3D model ------------------------------------------------------------------------------------


@transaction.atomic
def twin_model_upload(*, by: User, twin: DigitalTwin, name: str, data: bytes) -> DigitalTwin:
    from django.core.files.base import ContentFile

    from apps.twins.models3d import model_check

    if not twin_can_edit(user=by, twin=twin):
        raise PermissionDenied("You may view this twin but not edit it.")
    fmt = model_check(name=name, data=data)
    old = twin.model_file.name if twin.model_file else ""
    twin.model_file.save(f"twin-{twin.pk}.{fmt}", ContentFile(data), save=False)
    twin.model_format = fmt
    twin.model_size_bytes = len(data)
    twin.save(update_fields=["model_file", "model_format", "model_size_bytes", "updated_at"])
    if old and old != twin.model_file.name:
        storage = twin.model_file.storage
        transaction.on_commit(lambda: storage.delete(old))
    return twin
