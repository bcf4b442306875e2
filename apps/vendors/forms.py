from __future__ import annotations

import json
from typing import Any

from django import forms

from apps.users.models import Organization
from apps.vendors import catalog
from apps.vendors.models import FabricationNode, VendorProfile


class CommaListField(forms.CharField):
    """A list of names typed as `a, b, c`."""

    def to_python(self, value: Any) -> list[str]:  # type: ignore[override]
        text = super().to_python(value) or ""
        return [item.strip() for item in text.split(",") if item.strip()]

    def prepare_value(self, value: Any) -> Any:
        return ", ".join(value) if isinstance(value, list) else value


class NodeForm(forms.ModelForm):
    processes = forms.MultipleChoiceField(
        choices=catalog.process_choices(),
        widget=forms.CheckboxSelectMultiple,
        help_text="What the machine does; jobs ask for these processes.",
    )
    materials = forms.MultipleChoiceField(
        choices=catalog.material_choices(),
        widget=forms.CheckboxSelectMultiple,
        help_text="What it works; a part is placed here only in one of these materials.",
    )

    class Meta:
        model = FabricationNode
        fields = [
            "name",
            "kind",
            "processes",
            "materials",
            "build_x_mm",
            "build_y_mm",
            "build_z_mm",
            "precision_mm",
            "rated_power_kw",
            "requires_confirmation",
            "software_version",
            "site",
            "latitude",
            "longitude",
        ]
        labels = {
            "build_x_mm": "Build volume X (mm)",
            "build_y_mm": "Build volume Y (mm)",
            "build_z_mm": "Build volume Z (mm)",
            "precision_mm": "Precision (mm)",
            "rated_power_kw": "Rated power (kW)",
        }

    def __init__(self, *args: Any, vendors: Any = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["site"].queryset = Organization.objects.filter(  # type: ignore[attr-defined]
            kind=Organization.Kind.OPERATOR_SITE
        )
        self.fields["site"].required = False
        if vendors is not None:
            self.fields["vendor"] = forms.ModelChoiceField(queryset=vendors, empty_label=None)

    def validate_unique(self) -> None:
        """Uniqueness per vendor is the service's rule (it answers with a clear message)."""


class TransitionForm(forms.Form):
    to = forms.ChoiceField(label="New status")
    reason = forms.CharField(label="Reason", max_length=500)

    def __init__(self, *args: Any, choices: list[tuple[str, str]], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["to"].choices = choices  # type: ignore[attr-defined]


class ConfigForm(forms.Form):
    config = forms.CharField(
        label="Configuration (JSON)",
        widget=forms.Textarea(attrs={"rows": 10, "spellcheck": "false"}),
    )
    message = forms.CharField(label="What changed", max_length=300, required=False)

    def clean_config(self) -> dict[str, Any]:
        try:
            value = json.loads(self.cleaned_data["config"])
        except json.JSONDecodeError as exc:
            raise forms.ValidationError(
                f"Not valid JSON: {exc.msg} (line {exc.lineno}, column {exc.colno})."
            ) from None
        if not isinstance(value, dict):
            raise forms.ValidationError("The configuration must be a JSON object ({...}).")
        return value


class DecisionForm(forms.Form):
    comment = forms.CharField(
        label="Comment", required=False, widget=forms.Textarea(attrs={"rows": 2})
    )


class VendorProfileForm(forms.ModelForm):
    certifications = CommaListField(
        required=False, help_text="Comma-separated, e.g. ISO 9001, AS9100"
    )
    # Declared outside Meta.fields, so Django never builds its http-assuming default field.
    website = forms.URLField(required=False, assume_scheme="https")

    class Meta:
        model = VendorProfile
        fields = ["description", "certifications", "contact_name", "contact_email", "contact_phone"]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["website"].initial = self.instance.website
