"""Forms of the pages that use purchases and review them. Field names match the services'
arguments, so a service's ValidationError lands on the field it names."""

from __future__ import annotations

from typing import Any

from django import forms
from django.db.models import QuerySet

from apps.core.forms import form_field
from apps.core.model_fields import model_form_field
from apps.jobs.forms import JobRunForm
from apps.jobs.models import Job, Part
from apps.marketplace.services.reviews import MAX_TEXT

PARAMETER_LABELS = {"scale": "Scale (sizes multiply)", "quantity": "Quantity (units multiply)"}


class InstantiateForm(JobRunForm):
    """A job from a bought template: one field per parameter (with its bounds and default),
    then the job's title and how it runs (priority, deadline, timing: as a job submitted)."""

    title = model_form_field(Job, "title", required=False, help_text="Default: the listing's.")

    def __init__(self, *args: Any, parameters: dict[str, Any], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.parameter_names = list(parameters)
        for name, spec in parameters.items():
            low, high, default = spec.get("min"), spec.get("max"), spec.get("default")
            whole = name == "quantity"
            field_class = forms.IntegerField if whole else forms.FloatField
            self.fields[name] = field_class(
                label=PARAMETER_LABELS.get(name, name),
                required=False,
                min_value=int(low) if whole and low is not None else low,
                max_value=int(high) if whole and high is not None else high,
                initial=int(default) if whole and default is not None else default,
                help_text=f"From {low:g} to {high:g}; default {default:g}.",
                widget=forms.NumberInput(attrs={"step": "1" if whole else "0.01"}),
            )
        # parameters first, then the job's fields
        self.order_fields([*self.parameter_names, "title", "priority", "deadline", "timing"])

    def values(self) -> dict[str, Any]:
        data = self.cleaned_data
        return {name: data[name] for name in self.parameter_names if data.get(name) is not None}

    def job_fields(self) -> dict[str, Any]:
        return {"title": self.cleaned_data["title"], **self.run_fields()}


class AttachForm(forms.Form):
    parts = forms.ModelMultipleChoiceField(
        queryset=Part.objects.none(), widget=forms.CheckboxSelectMultiple
    )

    def __init__(self, *args: Any, parts: QuerySet[Part], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        form_field(self, "parts", forms.ModelMultipleChoiceField).queryset = parts
        self.fields["parts"].error_messages["required"] = "Tick at least one part."


class JobChoiceField(forms.ModelChoiceField[Job]):
    def label_from_instance(self, obj: Job) -> str:
        return f"#{obj.pk} {obj.title} ({obj.get_status_display().lower()})"


class BookForm(forms.Form):
    job = JobChoiceField(queryset=Job.objects.none(), empty_label="Choose a job")

    def __init__(self, *args: Any, jobs: QuerySet[Job], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        form_field(self, "job", JobChoiceField).queryset = jobs


class ReviewForm(forms.Form):
    stars = forms.TypedChoiceField(
        choices=[(n, f"{n} star{'s' if n > 1 else ''}") for n in range(5, 0, -1)],
        coerce=int,
        widget=forms.RadioSelect,
    )
    text = forms.CharField(
        max_length=MAX_TEXT, required=False, widget=forms.Textarea(attrs={"rows": 4})
    )


class ReplyForm(forms.Form):
    text = forms.CharField(
        max_length=MAX_TEXT, widget=forms.Textarea(attrs={"rows": 3}), label="Your reply"
    )
