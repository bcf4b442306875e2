from __future__ import annotations

from typing import Any

from django import forms

from apps.notify.models import Channel, Delivery, EventKind, Severity
from apps.notify.services import SUBSCRIBABLE

KIND_CHOICES = [(k, EventKind(k).label) for k in SUBSCRIBABLE]


class RulesFields(forms.Form):
    event_kinds = forms.MultipleChoiceField(
        label="Events",
        choices=KIND_CHOICES,
        required=False,
        widget=forms.CheckboxSelectMultiple,
        help_text="None ticked: every event.",
    )
    min_severity = forms.ChoiceField(
        label="At or above", choices=Severity.choices, initial=Severity.WARNING
    )

    def rules(self) -> list[dict[str, str]]:
        kinds = self.cleaned_data["event_kinds"] or [""]
        return [{"event_kind": k, "min_severity": self.cleaned_data["min_severity"]} for k in kinds]


class ChannelCreateForm(RulesFields):
    kind = forms.ChoiceField(label="Channel", choices=Channel.Kind.choices)
    name = forms.CharField(max_length=100)
    owner = forms.ChoiceField(label="For", choices=[("", "Me")], required=False)
    target = forms.CharField(
        label="Address",
        max_length=500,
        required=False,
        help_text="Webhook: its https:// URL. E-mail: the address (yours if empty).",
    )
    secret = forms.CharField(
        label="Secret",
        max_length=2000,
        required=False,
        widget=forms.PasswordInput(render_value=False),
        help_text="Webhook: the signing secret (one is made if empty). Chat: the Apprise URL.",
    )
    field_order = ["kind", "name", "owner", "target", "secret", "event_kinds", "min_severity"]

    def __init__(self, *args: Any, organizations: Any = (), **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        owner = self.fields["owner"]
        assert isinstance(owner, forms.ChoiceField)
        owner.choices = [("", "Me")] + [(str(o.pk), o.name) for o in organizations]


class ChannelEditForm(RulesFields):
    name = forms.CharField(max_length=100)
    target = forms.CharField(label="Address", max_length=500, required=False)
    secret = forms.CharField(
        label="New secret",
        max_length=2000,
        required=False,
        widget=forms.PasswordInput(render_value=False),
        help_text="Empty keeps the stored one.",
    )
    is_active = forms.BooleanField(label="Active", required=False)
    field_order = ["name", "target", "secret", "is_active", "event_kinds", "min_severity"]


class DeliveryFilterForm(forms.Form):
    status = forms.ChoiceField(
        choices=[("", "Any status"), *Delivery.Status.choices], required=False
    )
    channel = forms.TypedChoiceField(
        choices=[("", "Any channel")], coerce=int, required=False, empty_value=None
    )

    def __init__(self, *args: Any, channels: Any = (), **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        channel = self.fields["channel"]
        assert isinstance(channel, forms.ChoiceField)
        channel.choices = [("", "Any channel")] + [(c.pk, c.name) for c in channels]


class QuietHoursForm(forms.Form):
    start = forms.TimeField(label="Quiet from", widget=forms.TimeInput(attrs={"type": "time"}))
    end = forms.TimeField(label="until", widget=forms.TimeInput(attrs={"type": "time"}))
    timezone = forms.CharField(label="Time zone", max_length=64, initial="UTC")
