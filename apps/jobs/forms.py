from __future__ import annotations

from typing import Any

from django import forms
from django.forms import formset_factory

from apps.core.model_fields import model_form_field
from apps.jobs.models import Job, Part
from apps.vendors import catalog

PROCESSES = catalog.process_choices(exclude=["inspection"])
MATERIALS = catalog.material_choices()


def _job_field(name: str, **kwargs: Any) -> forms.Field:
    return model_form_field(Job, name, **kwargs)


def _part_field(name: str, **kwargs: Any) -> forms.Field:
    return model_form_field(Part, name, **kwargs)


def priority_field(**kwargs: Any) -> forms.Field:
    """A job's priority, 1 to 10 (the model's limits), 5 unless said."""
    return _job_field("priority", **kwargs)


class JobRunForm(forms.Form):
    """How urgently and when a new job runs: what submitting a job, its estimate and a job
    from a bought template share (types, choices and limits are the Job model's)."""

    priority = priority_field()
    deadline = _job_field("deadline", widget=forms.DateTimeInput(attrs={"type": "datetime-local"}))
    timing = _job_field(
        "timing",
        label="When to run it",
        help_text="With a deadline, the platform can run the job in cheaper, lower-carbon hours "
        "before it.",
        required=False,
    )

    def clean_timing(self) -> str:
        return self.cleaned_data.get("timing") or Job.Timing.ASAP

    def run_fields(self) -> dict[str, Any]:
        """priority, deadline and timing, as the services take them."""
        return {name: self.cleaned_data[name] for name in JobRunForm.base_fields}


class JobForm(JobRunForm):
    field_order = ["title"]

    title = _job_field("title")


class PartForm(forms.Form):
    name = _part_field("name", required=False)
    cad_upload = forms.FileField(
        required=False,
        label="CAD file (STL, OBJ or STEP)",
        widget=forms.ClearableFileInput(attrs={"accept": ".stl,.obj,.step,.stp,.gcode,.gco"}),
    )
    cad_file = forms.IntegerField(required=False, widget=forms.HiddenInput)
    material = forms.ChoiceField(choices=MATERIALS, initial="pla")
    process = forms.ChoiceField(choices=PROCESSES)
    quantity = _part_field("quantity")
    size_x_mm = forms.FloatField(min_value=0.01, max_value=10000, required=False, label="X (mm)")
    size_y_mm = forms.FloatField(min_value=0.01, max_value=10000, required=False, label="Y (mm)")
    size_z_mm = forms.FloatField(min_value=0.01, max_value=10000, required=False, label="Z (mm)")
    complexity = _part_field("complexity")

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        process, material = data.get("process"), data.get("material")
        problem = catalog.pair_problem(process, material) if process and material else None
        if problem:
            self.add_error("material", problem)
        return data


def materials_by_process() -> dict[str, list[str]]:
    """The catalogue's material codes each process works (the form's material list follows
    the chosen process: static/js/job_submit.js)."""
    return catalog.materials_by_process(exclude=["inspection"])


PartFormSet = formset_factory(PartForm, extra=0, min_num=1, max_num=20, validate_min=True)


class CancelForm(forms.Form):
    reason = forms.CharField(max_length=500)


class PriorityForm(forms.Form):
    priority = priority_field(initial=None)


class SaveTemplateForm(forms.Form):
    name = forms.CharField(max_length=200, label="Template name")
    max_scale = forms.FloatField(min_value=1, max_value=100, initial=2.0, label="Largest scale")
    max_quantity = forms.IntegerField(
        min_value=1, max_value=10000, initial=100, label="Largest quantity multiplier"
    )


class UseTemplateForm(forms.Form):
    title = _job_field("title", required=False)
    scale = forms.FloatField(required=False, min_value=0.01, max_value=100)
    quantity = forms.IntegerField(required=False, min_value=1, max_value=10000)
    priority = priority_field()


class WorkHistoryFilterForm(forms.Form):
    """Filters of the vendor's work history; the node choices are the caller's own nodes."""

    node = forms.TypedChoiceField(label="Node", required=False, coerce=int, empty_value=None)
    status = forms.ChoiceField(
        label="Outcome",
        required=False,
        choices=[
            ("", "Any outcome"),
            ("completed", "Completed"),
            ("failed", "Failed"),
            ("cancelled", "Cancelled"),
        ],
    )
    finished_from = forms.DateField(
        label="Ended from", required=False, widget=forms.DateInput(attrs={"type": "date"})
    )
    finished_to = forms.DateField(
        label="Ended until", required=False, widget=forms.DateInput(attrs={"type": "date"})
    )
    q = forms.CharField(label="Part or job", required=False, max_length=100, strip=True)

    def __init__(self, *args: Any, nodes: list[tuple[int, str]], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        node = self.fields["node"]
        assert isinstance(node, forms.TypedChoiceField)
        node.choices = [("", "All nodes"), *nodes]

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        start, end = data.get("finished_from"), data.get("finished_to")
        if start and end and start > end:
            self.add_error("finished_to", "The end day is before the start day.")
        return data
