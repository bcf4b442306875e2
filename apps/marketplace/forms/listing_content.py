"""What a listing sells, as the seller types it on the listing pages: a playbook's steps and a
template's parts and limits, turned into the content the services check
(apps/marketplace/services/listing_content.py)."""

from __future__ import annotations

from typing import Any

from django import forms
from django.core.exceptions import ValidationError

from apps.core.forms import choice_pairs, form_field
from apps.jobs.forms import MATERIALS, PROCESSES
from apps.jobs.services import MAX_PARTS, template_parameters_for
from apps.marketplace.services.listing_content import MAX_STEPS, playbook_step_settings
from apps.vendors import catalog


def parse_settings(text: str) -> dict[str, Any]:
    """`name = value` lines: numbers become numbers, the rest stays text."""
    values: dict[str, Any] = {}
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        name, sep, raw = line.partition("=")
        if not sep or not name.strip():
            raise ValidationError(f"Line {number}: write name = value.")
        raw = raw.strip()
        try:
            value: Any = int(raw)
        except ValueError:
            try:
                value = float(raw)
            except ValueError:
                value = raw
        values[name.strip()] = value
    return values


class StepForm(forms.Form):
    title = forms.CharField(max_length=200, required=False)
    instructions = forms.CharField(widget=forms.Textarea(attrs={"rows": 3}), required=False)
    settings = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 3}),
        required=False,
        help_text="One per line: name = value (e.g. nozzle temperature = 210).",
    )
    checks = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 2}), required=False, help_text="One per line."
    )

    def clean_settings(self) -> dict[str, Any]:
        return parse_settings(self.cleaned_data.get("settings") or "")

    def clean_checks(self) -> list[str]:
        text = self.cleaned_data.get("checks") or ""
        return [line.strip() for line in text.splitlines() if line.strip()]

    @staticmethod
    def initial_for(step: dict[str, Any]) -> dict[str, Any]:
        return {
            "title": step.get("title", ""),
            "instructions": step.get("instructions", ""),
            "settings": "\n".join(f"{k} = {v}" for k, v in playbook_step_settings(step)),
            "checks": "\n".join(step.get("checks") or []),
        }


StepFormSet = forms.formset_factory(
    StepForm, extra=0, min_num=1, max_num=MAX_STEPS, validate_max=True
)


def filled_rows(rows: forms.BaseFormSet[Any], fields: tuple[str, ...]) -> list[int]:
    """The indexes of the row forms with anything typed in `fields` (blank rows are skipped,
    so a service's `parts[1]` is the second filled row, not the second on the page)."""
    return [
        index
        for index, form in enumerate(rows.forms)
        if any(form.cleaned_data.get(k) not in (None, "", [], {}) for k in fields)
    ]


STEP_FIELDS = ("title", "instructions", "settings", "checks")


def playbook_content(
    steps: forms.BaseFormSet[Any], materials: list[str], processes: list[str]
) -> dict[str, Any]:
    """The steps filled in (blank ones dropped) as a playbook's content; the service checks it."""
    chosen = []
    for index in filled_rows(steps, STEP_FIELDS):
        data = steps.forms[index].cleaned_data
        chosen.append(
            {
                "title": data.get("title", ""),
                "instructions": data.get("instructions", ""),
                "settings": data.get("settings") or {},
                "checks": data.get("checks") or [],
            }
        )
    return {
        "steps": chosen,
        "materials": list(materials),
        "processes": list(processes),
    }


class TemplatePartForm(forms.Form):
    """One part of a template typed for its listing (sizes at scale 1)."""

    name = forms.CharField(max_length=200, required=False)
    material = forms.ChoiceField(choices=[("", "—"), *MATERIALS], required=False)
    process = forms.ChoiceField(choices=[("", "—"), *PROCESSES], required=False)
    quantity = forms.IntegerField(min_value=1, max_value=10000, initial=1, required=False)
    size_x_mm = forms.FloatField(min_value=0.01, max_value=10000, required=False, label="X (mm)")
    size_y_mm = forms.FloatField(min_value=0.01, max_value=10000, required=False, label="Y (mm)")
    size_z_mm = forms.FloatField(min_value=0.01, max_value=10000, required=False, label="Z (mm)")
    complexity = forms.IntegerField(min_value=1, max_value=10, initial=5, required=False)
    # kept as it came (parts made in lots), not edited here
    batch_group = forms.CharField(max_length=60, required=False, widget=forms.HiddenInput)

    # a row with none of these typed is blank (quantity and complexity come filled in)
    FIELDS = ("name", "material", "process", "size_x_mm", "size_y_mm", "size_z_mm")
    ALL = (*FIELDS, "quantity", "complexity", "batch_group")

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # a value the list doesn't offer (an older listing's spelling, "PLA" for pla) stays
        # choosable; the service maps it to its catalogue code or says it is unknown
        for name in ("material", "process"):
            field = form_field(self, name, forms.ChoiceField)
            current = (self.data.get(self.add_prefix(name)) if self.is_bound else None) or (
                self.initial.get(name)
            )
            choices = choice_pairs(field)
            if current and current not in dict(choices):
                field.choices = [*choices, (current, current)]

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        process, material = data.get("process"), data.get("material")
        problem = catalog.pair_problem(process, material) if process and material else None
        if problem:
            self.add_error("material", problem)
        return data

    @staticmethod
    def initial_for(part: dict[str, Any]) -> dict[str, Any]:
        return {k: part.get(k) for k in TemplatePartForm.ALL}


TemplatePartFormSet = forms.formset_factory(
    TemplatePartForm, extra=0, min_num=1, max_num=MAX_PARTS, validate_max=True
)


class TemplateParametersForm(forms.Form):
    """How far a buyer may scale the parts and multiply their quantities (empty: the
    defaults)."""

    max_scale = forms.FloatField(
        min_value=0.01,
        max_value=100,
        initial=2.0,
        required=False,
        label="Largest scale",
        help_text="Buyers scale sizes up to this (from 0.5, or the listing's smallest scale).",
    )
    max_quantity = forms.IntegerField(
        min_value=1,
        max_value=10000,
        initial=100,
        required=False,
        label="Largest quantity multiplier",
    )

    @staticmethod
    def initial_for(content: dict[str, Any]) -> dict[str, Any]:
        parameters = content.get("parameters") or {}
        return {
            "max_scale": (parameters.get("scale") or {}).get("max", 1.0),
            "max_quantity": int((parameters.get("quantity") or {}).get("max", 1)),
        }


def _kept_parameter(previous: Any, most: float, *, low: float, default: float) -> dict[str, float]:
    """A parameter with a new largest value, keeping its smallest and default where they
    still fit under it."""
    previous = previous if isinstance(previous, dict) else {}
    smallest = min(float(previous.get("min", low)), most)
    value = min(max(float(previous.get("default", default)), smallest), most)
    return {"min": smallest, "max": most, "default": value}


def template_content(
    parts: forms.BaseFormSet[Any], parameters: TemplateParametersForm, previous: Any = None
) -> tuple[dict[str, Any], list[int]]:
    """The parts filled in as a template's content, and which row each came from. `previous`:
    the parameters the listing had (their smallest values and defaults are kept)."""
    kept = filled_rows(parts, TemplatePartForm.FIELDS)
    chosen = []
    for index in kept:
        data = parts.forms[index].cleaned_data
        part = {k: data.get(k) for k in TemplatePartForm.FIELDS}
        part["quantity"] = data.get("quantity") or 1
        part["complexity"] = data.get("complexity") or 5
        part["batch_group"] = data.get("batch_group") or ""
        chosen.append({k: v for k, v in part.items() if v not in (None, "")})
    limits = parameters.cleaned_data
    most_scale = limits.get("max_scale") or parameters.fields["max_scale"].initial
    most_sets = limits.get("max_quantity") or parameters.fields["max_quantity"].initial
    if isinstance(previous, dict) and previous:
        chosen_parameters = {
            "scale": _kept_parameter(
                previous.get("scale"), most_scale, low=min(0.5, most_scale), default=1.0
            ),
            "quantity": _kept_parameter(previous.get("quantity"), most_sets, low=1, default=1),
        }
    else:
        chosen_parameters = template_parameters_for(max_scale=most_scale, max_quantity=most_sets)
    return {"parts": chosen, "parameters": chosen_parameters}, kept


def rows_raw(data: Any, prefix: str, fields: tuple[str, ...], most: int) -> list[dict[str, Any]]:
    """Row forms as typed (unchecked), to show them again with one more blank row (none once
    there are `most`)."""
    try:
        total = int(data.get(f"{prefix}-TOTAL_FORMS", 0))
    except ValueError:
        total = 0
    rows: list[dict[str, Any]] = [
        {name: data.get(f"{prefix}-{i}-{name}", "") for name in fields}
        for i in range(min(total, most))
    ]
    return rows + ([{}] if len(rows) < most else [])


def steps_raw(data: Any, prefix: str = "steps") -> list[dict[str, Any]]:
    """The steps as typed (unchecked), with one more blank step."""
    return rows_raw(data, prefix, STEP_FIELDS, MAX_STEPS)
