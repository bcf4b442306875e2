"""What a listing sells, per kind: a template's parts and parameters, a playbook's steps, and
the nodes behind capacity; with the materials and processes each one is for."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError

from apps.jobs.models import JobTemplate
from apps.jobs.services import template_spec_check
from apps.marketplace.services.listing_checks import (
    MAX_FACET_CHARS,
    MAX_FACETS,
    Errors,
    _add,
    _catalogue_values,
    _pairing,
)
from apps.users.models import Organization
from apps.vendors.models import FabricationNode

MAX_STEPS = 50
MAX_SETTING_CHARS = 60


def template_snapshot(template: JobTemplate) -> dict[str, Any]:
    """What a template listing's version holds: its parameters and parts, without the CAD
    uploads (those stay the seller's)."""
    return {
        "parameters": dict(template.parameters or {}),
        "parts": [{k: v for k, v in part.items() if k != "cad_file"} for part in template.parts],
    }


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def template_content_check(content: Any) -> dict[str, Any]:
    """A template version's content: at least one part with a name, material, process and
    positive sizes, then the parts and parameters (scale, quantity) checked as a job
    template's are (`template_spec_check`)."""
    errors: Errors = {}
    if not isinstance(content, dict):
        raise ValidationError({"content": ["An object with parameters and parts."]})
    parameters = content.get("parameters") or {}
    parts = content.get("parts")
    if not isinstance(parts, list) or not parts:
        _add(errors, "parts", "At least one part.")
        parts = []
    cleaned_parts = []
    for index, part in enumerate(parts):
        if not isinstance(part, dict):
            _add(errors, f"parts[{index}]", "An object describing the part.")
            continue
        for key in ("name", "material", "process"):
            if not isinstance(part.get(key), str) or not part[key].strip():
                _add(errors, f"parts[{index}].{key}", "Required.")
        for key in ("size_x_mm", "size_y_mm", "size_z_mm"):
            size = _number(part.get(key))
            if size is None or size <= 0:
                _add(errors, f"parts[{index}].{key}", "A size in mm above 0.")
        cleaned_parts.append({k: v for k, v in part.items() if k != "cad_file"})
    if errors:
        raise ValidationError(errors)
    # then as a job template would be checked: the platform's parameter limits, part fields
    # a job can take (a listing typed by a seller without a job template must hold too)
    cleaned_parts, parameters = template_spec_check(parts=cleaned_parts, parameters=parameters)
    return {"parameters": parameters, "parts": cleaned_parts}


def playbook_content_check(content: Any) -> dict[str, Any]:
    """A playbook's content: at least one step, each with a title, instructions, settings of
    name -> number or short text, and checks (texts); the materials and processes it is for."""
    if not isinstance(content, dict):
        raise ValidationError({"content": ["An object with steps, materials and processes."]})
    errors: Errors = {}
    steps = content.get("steps")
    if not isinstance(steps, list) or not steps:
        raise ValidationError({"steps": ["A playbook needs at least one step."]})
    if len(steps) > MAX_STEPS:
        raise ValidationError({"steps": [f"At most {MAX_STEPS} steps."]})
    cleaned: list[dict[str, Any]] = []
    for index, step in enumerate(steps):
        where = f"steps[{index}]"
        if not isinstance(step, dict):
            _add(errors, where, "An object with title, instructions, settings and checks.")
            continue
        title = step.get("title")
        if not isinstance(title, str) or not title.strip():
            _add(errors, f"{where}.title", "Give the step a title.")
        elif len(title.strip()) > 200:
            _add(errors, f"{where}.title", "At most 200 characters.")
        instructions = step.get("instructions", "")
        if not isinstance(instructions, str):
            _add(errors, f"{where}.instructions", "Text.")
        settings_in = step.get("settings") or {}
        settings_out: dict[str, Any] = {}
        if not isinstance(settings_in, dict):
            _add(errors, f"{where}.settings", "An object of name -> number or short text.")
            settings_in = {}
        for name, value in settings_in.items():
            key = str(name).strip()
            if not key or len(key) > MAX_SETTING_CHARS:
                _add(errors, f"{where}.settings", f"Names of 1 to {MAX_SETTING_CHARS} characters.")
            elif isinstance(value, bool) or not isinstance(value, int | float | str):
                _add(errors, f"{where}.settings.{key}", "A number or a short text.")
            elif isinstance(value, str) and len(value.strip()) > MAX_SETTING_CHARS:
                _add(
                    errors,
                    f"{where}.settings.{key}",
                    f"Text of at most {MAX_SETTING_CHARS} characters.",
                )
            else:
                settings_out[key] = value.strip() if isinstance(value, str) else value
        checks = step.get("checks") or []
        if not isinstance(checks, list) or not all(isinstance(c, str) for c in checks):
            _add(errors, f"{where}.checks", "A list of texts.")
            checks = []
        cleaned.append(
            {
                "title": title.strip() if isinstance(title, str) else "",
                "instructions": instructions.strip() if isinstance(instructions, str) else "",
                "settings": settings_out,
                # the order the seller gave (PostgreSQL's jsonb keeps object keys its own way)
                "setting_order": list(settings_out),
                "checks": [c.strip() for c in checks if c.strip()],
            }
        )
    materials = _catalogue_values(content.get("materials") or [], "materials", errors)
    processes = _catalogue_values(content.get("processes") or [], "processes", errors)
    _pairing(processes, materials, errors)
    if errors:
        raise ValidationError(errors)
    return {"steps": cleaned, "materials": materials, "processes": processes}


def playbook_step_settings(step: dict[str, Any]) -> list[tuple[str, Any]]:
    """A playbook step's settings as (name, value) in the seller's order; names missing from
    `setting_order` (content written before it was kept) follow in name order."""
    values = step.get("settings") or {}
    order = [name for name in step.get("setting_order") or [] if name in values]
    order += sorted(name for name in values if name not in order)
    return [(name, values[name]) for name in order]


def capacity_nodes(*, organization: Organization, node_kind: str) -> Any:
    """The seller's approved, working nodes of `node_kind`."""
    return FabricationNode.objects.filter(
        vendor=organization, kind=node_kind, approval=FabricationNode.Approval.APPROVED
    ).exclude(status=FabricationNode.Status.DECOMMISSIONED)


def capacity_kinds(*, organization: Organization) -> list[tuple[str, str]]:
    """The node kinds the organization could sell capacity of (it has approved nodes)."""
    kinds = set(
        FabricationNode.objects.filter(
            vendor=organization, approval=FabricationNode.Approval.APPROVED
        )
        .exclude(status=FabricationNode.Status.DECOMMISSIONED)
        .values_list("kind", flat=True)
    )
    return [(value, label) for value, label in FabricationNode.Kind.choices if value in kinds]


def _capacity_check(*, organization: Organization, node_kind: str, errors: Errors) -> list[Any]:
    if node_kind not in FabricationNode.Kind.values:
        _add(errors, "node_kind", f"One of {', '.join(FabricationNode.Kind.values)}.")
        return []
    nodes = list(capacity_nodes(organization=organization, node_kind=node_kind))
    if not nodes:
        label = FabricationNode.Kind(node_kind).label
        _add(
            errors,
            "node_kind",
            f"{organization.name} has no approved {label} node: capacity is sold only on "
            "approved nodes.",
        )
    return nodes


def _node_facets(nodes: list[FabricationNode], attribute: str) -> list[str]:
    values: list[str] = []
    for node in nodes:
        for value in getattr(node, attribute) or []:
            clean = " ".join(str(value).split()).lower()[:MAX_FACET_CHARS]
            if clean and clean not in values:
                values.append(clean)
    return values[:MAX_FACETS]


def _template_of(raw: Any, organization: Organization, errors: Errors) -> JobTemplate | None:
    if raw is None or raw == "":
        _add(
            errors,
            "template",
            "Choose the job template to sell, or give its parts and parameters as content.",
        )
        return None
    template = raw if isinstance(raw, JobTemplate) else None
    if template is None:
        try:
            template = JobTemplate.objects.filter(pk=int(raw)).first()
        except (TypeError, ValueError):
            template = None
    if template is None or template.organization_id != organization.pk:
        _add(errors, "template", f"Choose a job template of {organization.name}.")
        return None
    return template


def _part_facets(content: dict[str, Any], key: str) -> list[str]:
    values: list[str] = []
    for part in content.get("parts", []):
        value = " ".join(str(part.get(key, "")).split()).lower()[:MAX_FACET_CHARS]
        if value and value not in values:
            values.append(value)
    return values[:MAX_FACETS]
