from __future__ import annotations

from typing import Any

from django import forms
from django.db.models import QuerySet

from apps.twins import ageing, physics
from apps.twins.models import DigitalTwin
from apps.vendors.models import FabricationNode


class TwinCreateForm(forms.Form):
    name = forms.CharField(max_length=200)
    twin_type = forms.ChoiceField(label="Type", choices=DigitalTwin.Type.choices)
    node = forms.ModelChoiceField(
        queryset=FabricationNode.objects.none(), required=False, label="Node (optional)"
    )
    tags = forms.CharField(required=False, max_length=400, help_text="Comma-separated")

    def __init__(self, *args: Any, nodes: QuerySet[FabricationNode], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        node = self.fields["node"]
        assert isinstance(node, forms.ModelChoiceField)  # declared above
        node.queryset = nodes

    def clean_tags(self) -> list[str]:
        return [t.strip() for t in self.cleaned_data["tags"].split(",") if t.strip()]


class ShareForm(forms.Form):
    user = forms.EmailField(label="Person (e-mail)")
    level = forms.ChoiceField(choices=[("view", "View"), ("edit", "Edit"), ("none", "Take back")])


class ModelUploadForm(forms.Form):
    file = forms.FileField(label="3D model (GLB, glTF or STL)")


class RevertForm(forms.Form):
    version = forms.IntegerField(min_value=1)
    message = forms.CharField(max_length=300, required=False)


class AgeingForm(forms.Form):
    component = forms.ChoiceField(choices=[(c, c.title()) for c in ageing.DEFAULTS])
    avg_rpm = forms.FloatField(label="Average rpm", initial=12000)
    load_n = forms.FloatField(label="Load (N)", initial=3000)
    temperature_c = forms.FloatField(label="Temperature (°C)", initial=55)
    duty_cycle = forms.FloatField(label="Duty cycle (0-1)", initial=0.6)
    horizon_h = forms.FloatField(label="Horizon (h, ≤ 43,800)", initial=43800)
    threshold = forms.FloatField(label="Failure threshold (probability)", initial=0.5)


class ScenarioForm(forms.Form):
    scenarios = forms.MultipleChoiceField(
        choices=[(k, s.label) for k, s in physics.SCENARIOS.items()],
        initial=list(physics.SCENARIOS),
        widget=forms.CheckboxSelectMultiple,
    )
    hours = forms.FloatField(label="Hours", initial=720)
    step_minutes = forms.FloatField(label="Step (minutes)", initial=10)
    machine_kind = forms.ChoiceField(
        choices=[("", "The node's kind"), *FabricationNode.Kind.choices], required=False
    )
    use_telemetry = forms.BooleanField(
        required=False, initial=True, label="Start from the node's recent telemetry"
    )
    seed_minutes = forms.FloatField(
        label="Telemetry window (minutes)",
        initial=physics.SEED_MINUTES,
        min_value=physics.SEED_MINUTES_RANGE[0],
        max_value=physics.SEED_MINUTES_RANGE[1],
        required=False,
        help_text="The scenarios start from the medians of the node's readings in this window.",
    )
