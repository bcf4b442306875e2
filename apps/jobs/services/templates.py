"""Job templates: saved part sets with scale and quantity parameters, and jobs made from them."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction

from apps.jobs.cad import MAX_SIZE_MM
from apps.jobs.models import Job, JobTemplate
from apps.jobs.services.submission import PART_FIELDS, _organization_for, _part_specs, job_submit
from apps.users.models import Organization, User
from apps.users.roles import Action, Scope, scope_for

TEMPLATE_PARAMETERS = {"scale": (0.01, 100.0, 1.0), "quantity": (1, 10000, 1)}


def _template_parameters(raw: Any) -> dict[str, dict[str, float]]:
    """{"scale": {"default", "min", "max"}, "quantity": {...}}: the two parameters a template
    has (sizes scale, quantities multiply); bounds must lie in the platform's limits."""
    if not isinstance(raw, dict):
        raise ValidationError({"parameters": ["An object of parameters."]})
    out: dict[str, dict[str, float]] = {}
    for name, spec in raw.items():
        if name not in TEMPLATE_PARAMETERS:
            raise ValidationError(
                {
                    "parameters": [
                        f"Unknown parameter {name!r}: use {', '.join(TEMPLATE_PARAMETERS)}."
                    ]
                }
            )
        low, high, default = TEMPLATE_PARAMETERS[name]
        try:
            lo = float(spec.get("min", low))
            hi = float(spec.get("max", high))
            value = float(spec.get("default", default))
        except (AttributeError, TypeError, ValueError):
            raise ValidationError({"parameters": [f"{name}: numbers min, max, default."]}) from None
        if not low <= lo <= value <= hi <= high:
            raise ValidationError(
                {"parameters": [f"{name}: need {low} <= min <= default <= max <= {high}."]}
            )
        out[name] = {"min": lo, "max": hi, "default": value}
    return out


def template_parameters_for(*, max_scale: float, max_quantity: int) -> dict[str, Any]:
    """The parameters a template gets from "largest scale" and "largest quantity multiplier":
    sizes from half (or the largest, if smaller) up to that scale, quantities from 1 up."""
    return {
        "scale": {"min": min(0.5, max_scale), "max": max_scale, "default": 1.0},
        "quantity": {"min": 1, "max": max_quantity, "default": 1},
    }


def template_spec_check(
    *, parts: Sequence[dict[str, Any]], parameters: Any
) -> tuple[list[dict[str, Any]], dict[str, dict[str, float]]]:
    """A template's parts and parameters checked as `template_create` checks them, for a part
    set kept outside a JobTemplate (a marketplace listing's version): no CAD uploads, every
    bad part reported by index, the parameters within the platform's limits, and no part
    that the largest scale or quantity would push past what a job can hold."""
    errors: dict[str, list[str]] = {}
    cleaned_parameters: dict[str, dict[str, float]] = {}
    try:
        cleaned_parameters = _template_parameters(parameters or {})
    except ValidationError as exc:
        errors.update(exc.message_dict)
    cleaned_parts: list[dict[str, Any]] = []
    try:
        cleaned_parts = _part_specs(
            by=None, parts=[{k: v for k, v in p.items() if k != "cad_file"} for p in parts]
        )
    except ValidationError as exc:
        errors.update(exc.message_dict)
    if not errors:
        errors = _template_reach_problems(cleaned_parts, cleaned_parameters)
    if errors:
        raise ValidationError(errors)
    return cleaned_parts, cleaned_parameters


def _template_reach_problems(
    parts: list[dict[str, Any]], parameters: dict[str, dict[str, float]]
) -> dict[str, list[str]]:
    """Where the largest scale or quantity a template offers makes a part no job can hold
    (more than a part's quantity limit, larger than any machine), by part index."""
    most_scale = parameters.get("scale", {}).get("max", 1.0)
    most_sets = parameters.get("quantity", {}).get("max", 1.0)
    quantity_limit = 10000  # Part.quantity's validator
    problems: dict[str, list[str]] = {}
    for index, part in enumerate(parts):
        reasons = []
        if int(part.get("quantity", 1)) * most_sets > quantity_limit:
            reasons.append(
                f"quantity: {part.get('quantity', 1)} x the largest quantity multiplier "
                f"{most_sets:g} is over {quantity_limit}; lower one of them."
            )
        largest = max(float(part[axis]) for axis in ("size_x_mm", "size_y_mm", "size_z_mm"))
        if largest * most_scale > MAX_SIZE_MM:
            reasons.append(
                f"size: {largest:g} mm at the largest scale {most_scale:g} is over "
                f"{MAX_SIZE_MM:g} mm; lower one of them."
            )
        if reasons:
            problems[f"parts[{index}]"] = reasons
    return problems


@transaction.atomic
def template_create(
    *,
    by: User,
    name: str,
    parts: Sequence[dict[str, Any]],
    parameters: Any = None,
    description: str = "",
    organization: Organization | None = None,
) -> JobTemplate:
    if scope_for(by, Action.JOB_CREATE) is None:
        raise PermissionDenied("Your role does not allow creating jobs or templates.")
    if not name.strip():
        raise ValidationError({"name": ["Give the template a name."]})
    org = _organization_for(by=by, organization=organization)
    cleaned = _part_specs(by=by, parts=parts)
    stored = []
    for part in cleaned:
        cad = part.pop("cad_file", None)
        stored.append({**part, **({"cad_file": cad.pk} if cad else {})})
    return JobTemplate.objects.create(
        owner=by,
        organization=org,
        name=name.strip(),
        description=description,
        parameters=_template_parameters(parameters or {}),
        parts=stored,
    )


@transaction.atomic
def template_from_job(
    *,
    by: User,
    job: Job,
    name: str,
    description: str = "",
    max_scale: float = 2.0,
    max_quantity: int = 100,
) -> JobTemplate:
    """Saves a job's parts as a template of its organization, with scale 0.5-`max_scale`
    and quantity 1-`max_quantity`. CAD files are kept where they are the caller's own."""
    parts: list[dict[str, Any]] = []
    first_lot: dict[tuple[Any, ...], dict[str, Any]] = {}
    for part in job.parts.select_related("cad_file").order_by("id"):
        fields = {f: getattr(part, f) for f in PART_FIELDS}
        if part.cad_file is not None and part.cad_file.owner_id == by.pk:
            fields["cad_file"] = part.cad_file.pk
        if part.lots > 1:  # lots of one part become that part again
            key = (*(fields[f] for f in PART_FIELDS if f != "quantity"), part.lots)
            if key in first_lot:
                first_lot[key]["quantity"] += part.quantity
                continue
            first_lot[key] = fields
        parts.append(fields)
    return template_create(
        by=by,
        name=name,
        description=description or f"From job #{job.pk} {job.title}",
        parts=parts,
        parameters=template_parameters_for(max_scale=max_scale, max_quantity=max_quantity),
        organization=job.organization,
    )


@transaction.atomic
def template_delete(*, by: User, template: JobTemplate) -> None:
    if not (scope_for(by, Action.JOB_CREATE) == Scope.ALL or template.owner_id == by.pk):
        raise PermissionDenied("Only the template's author or an admin may delete it.")
    template.delete()


def template_parts(*, template: JobTemplate, values: dict[str, Any]) -> list[dict[str, Any]]:
    """The template's parts with `values` applied (defaults for what is not given)."""
    chosen: dict[str, float] = {}
    for name, spec in template.parameters.items():
        raw = values.get(name, spec["default"])
        try:
            value = float(raw)
        except (TypeError, ValueError):
            raise ValidationError({f"parameters.{name}": ["A number."]}) from None
        if not spec["min"] <= value <= spec["max"]:
            raise ValidationError(
                {f"parameters.{name}": [f"Between {spec['min']:g} and {spec['max']:g}."]}
            )
        chosen[name] = value
    unknown = set(values) - set(template.parameters)
    if unknown:
        raise ValidationError(
            {"parameters": [f"This template has no parameter {', '.join(sorted(unknown))}."]}
        )
    scale, times = chosen.get("scale", 1.0), int(chosen.get("quantity", 1))
    parts = []
    for spec in template.parts:
        part = dict(spec)
        for axis in ("size_x_mm", "size_y_mm", "size_z_mm"):
            if axis in part:
                part[axis] = round(float(part[axis]) * scale, 3)
        if scale != 1.0:
            part.pop("cad_file", None)  # the stored model no longer matches the scaled size
        part["quantity"] = int(part.get("quantity", 1)) * times
        parts.append(part)
    return parts


def template_instantiate(
    *, template: JobTemplate, by: User, values: dict[str, Any], **job: Any
) -> Job:
    """A job from the template, in the caller's organization, validated and scheduled like
    any other."""
    parts = template_parts(template=template, values=values)
    job.setdefault("title", template.name)
    created = job_submit(by=by, parts=parts, **job)
    created.template = template
    created.save(update_fields=["template", "updated_at"])
    return created
