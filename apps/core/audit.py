"""The audit log service: every entry is written here, by services and by the receivers that
track key models (`audit_track_model`)."""

from __future__ import annotations

import datetime as dt
import decimal
import re
import uuid
from typing import Any

from django.apps import apps as django_apps
from django.core.exceptions import FieldDoesNotExist
from django.db import models
from django.db.models.signals import post_delete, post_init, post_save
from django.http import HttpRequest

from apps.core.client_ip import request_client_address
from apps.core.labels import label, label_with_unit, words
from apps.core.middleware import current_request
from apps.core.models import AuditLog
from apps.core.realtime import broadcast_on_commit

# Websocket group that receives every new entry (the ops portal's live audit feed).
AUDIT_GROUP = "audit"
SECRET_FIELDS = {"password", "key", "secret", "token", "token_hash", "bin_key"}


def client_ip(request: HttpRequest) -> str | None:
    # REMOTE_ADDR as ClientAddressMiddleware resolved it from the trusted proxies only.
    return request_client_address(request)


def audit_log(
    *,
    action: str,
    actor: Any = None,
    obj: models.Model | None = None,
    object_type: str = "",
    object_id: str = "",
    object_repr: str = "",
    changes: dict[str, Any] | None = None,
    request: HttpRequest | None = None,
    actor_email: str = "",
) -> AuditLog:
    request = request if request is not None else current_request.get()
    if actor is None and request is not None:
        user = getattr(request, "user", None)
        if user is not None and user.is_authenticated:
            actor = user
    if obj is not None:
        object_type = object_type or obj._meta.label_lower
        object_id = object_id or str(obj.pk)
        object_repr = object_repr or str(obj)[:200]
    entry = AuditLog(
        action=action,
        actor=actor if getattr(actor, "pk", None) else None,
        actor_email=actor_email or getattr(actor, "email", "") or "",
        object_type=object_type,
        object_id=object_id,
        object_repr=object_repr[:200],
        changes=_jsonable(changes or {}),
    )
    if request is not None:
        entry.ip_address = client_ip(request)
        entry.user_agent = request.META.get("HTTP_USER_AGENT", "")[:300]
        entry.path = request.path[:300]
    entry.save()
    broadcast_on_commit(
        AUDIT_GROUP,
        {
            "type": "audit",
            "id": entry.pk,
            "created_at": entry.created_at.isoformat(),
            "actor_email": entry.actor_email,
            "action": entry.action,
            "action_label": entry.get_action_display(),
            "object_type": entry.object_type,
            "object_label": audit_object_label(entry.object_type),
            "object_repr": entry.object_repr,
            "ip_address": entry.ip_address,
        },
    )
    return entry


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set):
        return [_jsonable(v) for v in value]
    if isinstance(value, dt.datetime | dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, decimal.Decimal | uuid.UUID):
        return str(value)
    return value


def _snapshot(instance: models.Model) -> dict[str, Any]:
    # Deferred fields (.only()/.defer()) are left out: reading them would load the row again.
    deferred = instance.get_deferred_fields()
    return {
        f.attname: getattr(instance, f.attname, None)
        for f in instance._meta.concrete_fields
        if f.attname not in {"updated_at", "last_login"} and f.attname not in deferred
    }


def _masked(name: str, value: Any) -> Any:
    return "***" if name in SECRET_FIELDS else value


# Each audited instance carries its last saved values in `_audit_snapshot`, an attribute of our
# own on every audited model (the stubs know only the fields).
def _on_init(sender: type[models.Model], instance: models.Model, **kwargs: Any) -> None:
    instance._audit_snapshot = _snapshot(instance)  # type: ignore[attr-defined]


def _on_save(
    sender: type[models.Model], instance: models.Model, created: bool, raw: bool, **kwargs: Any
) -> None:
    if raw:  # fixtures
        return
    now = _snapshot(instance)
    if created:
        changes = {k: [None, _masked(k, v)] for k, v in now.items() if v not in (None, "")}
        audit_log(action=AuditLog.Action.CREATE, obj=instance, changes=changes)
    else:
        before = getattr(instance, "_audit_snapshot", {})
        changes = {
            k: [_masked(k, before.get(k)), _masked(k, v)]
            for k, v in now.items()
            if k in before and before[k] != v
        }
        if changes:
            audit_log(action=AuditLog.Action.UPDATE, obj=instance, changes=changes)
    instance._audit_snapshot = now  # type: ignore[attr-defined]


def _on_delete(sender: type[models.Model], instance: models.Model, **kwargs: Any) -> None:
    audit_log(action=AuditLog.Action.DELETE, obj=instance)


def audit_track_model(model: type[models.Model]) -> None:
    """Record create/update/delete of `model` from every entry point (services, admin, shell)."""
    uid = f"audit-{model._meta.label_lower}"
    post_init.connect(_on_init, sender=model, dispatch_uid=uid, weak=False)
    post_save.connect(_on_save, sender=model, dispatch_uid=uid, weak=False)
    post_delete.connect(_on_delete, sender=model, dispatch_uid=uid, weak=False)


# --- Audit entries in words (pages; the API keeps the raw codes) ---------------------------------

_ISO_MOMENT = re.compile(r"^(\d{4}-\d{2}-\d{2})T(\d{2}:\d{2}:\d{2})(?:\.\d+)?(?:\+00:00|Z)$")


def _model_of(object_type: str) -> type[models.Model] | None:
    try:
        return django_apps.get_model(object_type) if "." in object_type else None
    except (LookupError, ValueError):
        return None


def audit_object_label(object_type: str) -> str:
    """ "vendors.fabricationnode" -> "Fabrication node"; a type that names no model is spelled
    out ("auth.session" stays readable)."""
    model = _model_of(object_type)
    if model is not None:
        return str(model._meta.verbose_name).capitalize()
    return label(object_type.rsplit(".", 1)[-1]) if object_type else ""


def _field(model: type[models.Model] | None, key: str) -> Any:
    if model is None:
        return None
    for name in (key, key.removesuffix("_id")):
        try:
            return model._meta.get_field(name)
        except FieldDoesNotExist:
            continue
    return None


def audit_field_label(object_type: str, key: str) -> str:
    """A changed field's name in words: the model field's own label ("site_id" -> "Site",
    "max_kw" -> "Max kW"), else the "audit_field" labels, else the key spelled out."""
    field = _field(_model_of(object_type), key)
    if field is not None and getattr(field, "verbose_name", None):
        text = str(field.verbose_name)
        if text == key.replace("_", " ") or text == key.removesuffix("_id").replace("_", " "):
            # no verbose_name of its own: the labels spell it out, with its unit
            return label_with_unit(key.removesuffix("_id"), "audit_field")
        return text[:1].upper() + text[1:]
    return label_with_unit(key, "audit_field")


def audit_value_words(object_type: str, key: str, value: Any) -> str:
    """A changed value in words: a choice's label ("idle" -> "Idle"), a moment in UTC, a code
    through the labels; anything else as it is."""
    if value is None:
        return "—"
    field = _field(_model_of(object_type), key)
    choices = dict(getattr(field, "flatchoices", None) or ()) if field is not None else {}
    if isinstance(value, str):
        if value in choices:
            return str(choices[value])
        moment = _ISO_MOMENT.match(value)
        if moment:
            return f"{moment.group(1)} {moment.group(2)} UTC"
        return words(value)
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, list):
        return ", ".join(audit_value_words(object_type, key, v) for v in value)
    return str(value)


def audit_change_lines(entry: AuditLog) -> list[str]:
    """Readable lines: `Field: old → new` for updates, `Field: value` otherwise."""
    lines = []
    for key, value in (entry.changes or {}).items():
        name = audit_field_label(entry.object_type, key)
        if isinstance(value, list) and len(value) == 2:
            old, new = (audit_value_words(entry.object_type, key, v) for v in value)
            lines.append(f"{name}: {new}" if value[0] is None else f"{name}: {old} → {new}")
        else:
            lines.append(f"{name}: {audit_value_words(entry.object_type, key, value)}")
    return lines
