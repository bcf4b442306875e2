"""Forms of the maintenance pages. Field names match the services' arguments, so a service's
ValidationError lands on the field it names (`apps.core.forms.form_add_service_error`)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django import forms
from django.utils import timezone

from apps.core.forms import form_field
from apps.core.labels import label_with_unit
from apps.maintenance.models import MaintenanceWindow, Severity, ThresholdRule, Ticket
from apps.telemetry.models import SIGNAL_LABELS
from apps.users.models import User
from apps.vendors.models import FabricationNode

DATETIME_INPUT = forms.DateTimeInput(attrs={"type": "datetime-local"}, format="%Y-%m-%dT%H:%M")


class TicketCreateForm(forms.Form):
    node = forms.ModelChoiceField(queryset=FabricationNode.objects.none())
    issue_type = forms.ChoiceField(
        label="Issue", choices=Ticket.IssueType.choices, initial=Ticket.IssueType.OTHER
    )
    severity = forms.ChoiceField(choices=Severity.choices, initial=Severity.WARNING)
    title = forms.CharField(max_length=200)
    description = forms.CharField(
        required=False, max_length=5000, widget=forms.Textarea(attrs={"rows": 3})
    )

    def __init__(self, *args: Any, nodes: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        form_field(self, "node", forms.ModelChoiceField).queryset = nodes


class ResolveForm(forms.Form):
    note = forms.CharField(
        label="What was done",
        max_length=5000,
        required=False,  # the service says why it is needed: one message, on this field
        widget=forms.Textarea(attrs={"rows": 3}),
    )
    was_failure = forms.BooleanField(required=False, label="The machine really failed")


class PersonChoiceField(forms.ModelChoiceField[User]):
    def label_from_instance(self, obj: User) -> str:
        return f"{obj.email} ({obj.get_role_display()})"


class AssignForm(forms.Form):
    assignee = PersonChoiceField(
        queryset=User.objects.none(), required=False, empty_label="Nobody (unassign)"
    )

    def __init__(self, *args: Any, people: list[User], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        field = form_field(self, "assignee", PersonChoiceField)
        field.queryset = User.objects.filter(pk__in=[p.pk for p in people])


class NoteForm(forms.Form):
    text = forms.CharField(label="Note", max_length=5000, widget=forms.Textarea(attrs={"rows": 3}))


def _next_hour() -> Any:
    return timezone.now().replace(minute=0, second=0, microsecond=0) + timedelta(hours=1)


class WindowForm(forms.Form):
    kind = forms.ChoiceField(choices=MaintenanceWindow.Kind.choices)
    starts_at = forms.DateTimeField(label="Starts (UTC)", widget=DATETIME_INPUT)
    ends_at = forms.DateTimeField(label="Ends (UTC)", widget=DATETIME_INPUT)
    reason = forms.CharField(max_length=300)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if not self.is_bound:
            start = _next_hour()
            self.initial.setdefault("starts_at", start)
            self.initial.setdefault("ends_at", start + timedelta(hours=2))


class WindowCompleteForm(forms.Form):
    work_done = forms.CharField(
        label="Work done",
        max_length=5000,
        required=False,  # the service's message says what is missing
        widget=forms.Textarea(attrs={"rows": 2}),
    )


def signal_choices(extra: list[str] | None = None) -> list[tuple[str, str]]:
    known = {signal: label_with_unit(signal, "signal") for signal in SIGNAL_LABELS}
    for signal in extra or []:
        known.setdefault(signal, label_with_unit(signal, "signal"))
    return list(known.items())


class RuleForm(forms.Form):
    """A rule at one scope: the node (page of a node) or default / a node kind (rules page)."""

    signal = forms.ChoiceField(choices=signal_choices())
    node_kind = forms.ChoiceField(
        label="Node kind",
        required=False,
        choices=[("", "All kinds (default)"), *FabricationNode.Kind.choices],
    )
    mode = forms.ChoiceField(choices=ThresholdRule.Mode.choices)
    warning = forms.FloatField(required=False)
    critical = forms.FloatField(required=False)
    hysteresis_pct = forms.FloatField(label="Hysteresis (%)", initial=5.0)
    min_duration_s = forms.FloatField(label="Minimum duration (s)", initial=10.0)
    enabled = forms.BooleanField(required=False, initial=True)

    def __init__(
        self, *args: Any, for_node: bool = False, signals: Any = (), **kwargs: Any
    ) -> None:
        super().__init__(*args, **kwargs)
        form_field(self, "signal", forms.ChoiceField).choices = signal_choices(list(signals))
        if for_node:
            del self.fields["node_kind"]
