from __future__ import annotations

import json
from typing import Any

from django import forms

from apps.core.forms import form_field
from apps.users.models import Organization
from apps.vendors import catalog, node_settings
from apps.vendors.models import EdgeRelease, FabricationNode, VendorProfile


class CommaListField(forms.CharField):
    """A list of names typed as `a, b, c`."""

    def to_python(self, value: Any) -> list[str]:  # type: ignore[override]
        text = super().to_python(value) or ""
        return [item.strip() for item in text.split(",") if item.strip()]

    def prepare_value(self, value: Any) -> Any:
        return ", ".join(value) if isinstance(value, list) else value


class NodeForm(forms.ModelForm[FabricationNode]):
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
            "bed_clear_required",
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
        form_field(self, "site", forms.ModelChoiceField).queryset = Organization.objects.filter(
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
        form_field(self, "to", forms.ChoiceField).choices = choices


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


def _number(text: str) -> int | float:
    value = float(text)
    return int(value) if value.is_integer() and "." not in text else value


class NodeSettingsForm(forms.Form):
    """The settings of one kind of node (apps.vendors.node_settings), with units and limits;
    `config()` writes them into the current configuration document, keeping every other key.
    A bad value is refused with the field's own message ("Ensure this value is less than or
    equal to 2.0.") beside it."""

    message = forms.CharField(label="What changed", max_length=300, required=False)

    def __init__(self, *args: Any, kind: str, config: dict[str, Any], **kwargs: Any) -> None:
        self.kind = kind
        self.current = config
        self.settings = node_settings.settings_for(kind)
        initial = {s.name: node_settings.read(config, s.path) for s in self.settings}
        for s in self.settings:
            if s.kind == "bool":
                initial[s.name] = bool(initial[s.name])
            elif s.kind == "choice" and initial[s.name] is not None:
                initial[s.name] = str(initial[s.name])  # offered as text, whatever JSON type
        kwargs["initial"] = {**initial, **kwargs.get("initial", {})}
        super().__init__(*args, **kwargs)
        fields: dict[str, forms.Field] = {}
        for s in self.settings:
            options: dict[str, Any] = {"label": s.title, "required": False, "help_text": s.help}
            if s.kind == "float":
                fields[s.name] = forms.FloatField(min_value=s.low, max_value=s.high, **options)
            elif s.kind == "int":
                fields[s.name] = forms.IntegerField(
                    min_value=None if s.low is None else int(s.low),
                    max_value=None if s.high is None else int(s.high),
                    **options,
                )
            elif s.kind == "bool":
                fields[s.name] = forms.BooleanField(**options)
            else:
                numeric = all(_is_number(value) for value, _ in s.choices)
                fields[s.name] = forms.TypedChoiceField(
                    choices=[("", "—"), *s.choices],
                    coerce=_number if numeric else str,
                    empty_value=None,
                    **options,
                )
        # the kind's settings first, then the message
        self.fields = {**fields, "message": self.fields["message"]}

    def config(self) -> dict[str, Any]:
        return node_settings.written(self.current, self.cleaned_data, self.kind)


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


class DecisionForm(forms.Form):
    comment = forms.CharField(
        label="Comment", required=False, widget=forms.Textarea(attrs={"rows": 2})
    )


class VendorProfileForm(forms.ModelForm[VendorProfile]):
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


# the words for each forwarding setting a rollout can ship (apps/vendors/gateway_config.py)
FORWARDING_LABELS = {
    "forward_every_s": ("Upload every (s)", "How long points wait for the next batch upload."),
    "max_silence_s": ("Upload at least every (s)", "Even when nothing changed."),
    "min_urgent_gap_s": ("Urgent uploads at most every (s)", "Per machine."),
    "batch_size": ("Points per upload", ""),
    "max_attempts": ("Tries before a point is parked", "Server errors in a row on one batch."),
    "max_points": ("Buffer size (points per machine)", "How much an outage can hold."),
    "poll_s": ("Ask for configuration and commands every (s)", ""),
}


class RolloutForm(forms.Form):
    """A rollout: which gateways, in which waves, when to move on or stop, and what it ships: a
    gateway software release, settings (leave a setting empty to leave it as each gateway has
    it), or both."""

    name = forms.CharField(max_length=120)
    release = forms.ModelChoiceField(
        queryset=EdgeRelease.objects.all(),
        required=False,
        label="Gateway software",
        empty_label="Keep each gateway's software",
        help_text="A release is checked by its SHA-256, installed, self-tested and started on "
        "trial; a gateway it does not start on goes back to its old software.",
    )
    vendor = forms.ModelChoiceField(
        queryset=Organization.objects.none(), required=False, empty_label="Choose the vendor"
    )
    site = forms.ModelChoiceField(
        queryset=Organization.objects.none(),
        required=False,
        empty_label="Every site",
        help_text="Only gateways standing at this site.",
    )
    tags = CommaListField(
        required=False, help_text="A gateway needs every one of these tags, e.g. canary, line-2."
    )
    wave_sizes = CommaListField(
        label="Wave sizes",
        initial="1, 5",
        help_text="Gateways per wave, e.g. 1, 5; the last wave takes all the rest.",
    )
    success_threshold_pct = forms.IntegerField(
        label="Move on when this share of a wave applied it (%)",
        min_value=1,
        max_value=100,
        initial=100,
    )
    error_threshold_pct = forms.IntegerField(
        label="Stop when more than this share of a wave failed (%)",
        min_value=0,
        max_value=100,
        initial=0,
        help_text="The failed gateways are rolled back to their old settings.",
    )

    def __init__(self, *args: Any, vendors: Any, sites: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        for name, queryset in (("vendor", vendors), ("site", sites)):
            field = self.fields[name]
            assert isinstance(field, forms.ModelChoiceField)
            field.queryset = queryset
        self.only_vendor = vendors[0] if len(vendors) == 1 else None
        if self.only_vendor is not None:  # nothing to choose
            del self.fields["vendor"]
        for key, (label, help_text) in FORWARDING_LABELS.items():
            self.fields[key] = forms.FloatField(required=False, label=label, help_text=help_text)

    def clean_wave_sizes(self) -> list[int]:
        sizes = []
        for item in self.cleaned_data["wave_sizes"]:
            if not item.isdigit() or int(item) < 1:
                raise forms.ValidationError(f"{item} is not a number of gateways (1 or more).")
            sizes.append(int(item))
        if not sizes:
            raise forms.ValidationError("Give at least one wave size.")
        return sizes

    def clean_vendor(self) -> Organization:
        vendor: Organization | None = self.cleaned_data.get("vendor")
        if vendor is None:
            raise forms.ValidationError("Say whose gateways the rollout is for.")
        return vendor

    def chosen_vendor(self) -> Organization:
        chosen: Organization = self.only_vendor or self.cleaned_data["vendor"]
        return chosen

    def forwarding(self) -> dict[str, Any]:
        """The settings filled in; whole numbers where the setting takes them."""
        out: dict[str, Any] = {}
        for key in FORWARDING_LABELS:
            value = self.cleaned_data.get(key)
            if value is not None:
                out[key] = int(value) if float(value).is_integer() else value
        return out
