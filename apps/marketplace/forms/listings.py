"""Forms of the listing pages. Field names match the listing services' arguments, so a
service's ValidationError lands on the field it names (apps.core.forms.form_add_service_error).
A playbook's steps and a template's parts are row forms of their own: listing_content.py."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from django import forms
from django.conf import settings

from apps.core.forms import choice_pairs, form_field
from apps.core.labels import label
from apps.jobs.models import JobTemplate
from apps.marketplace.models import Listing
from apps.marketplace.selectors.listings import SORT_LABELS
from apps.users.models import Organization
from apps.vendors import catalog

MONEY_INPUT = forms.NumberInput(attrs={"step": "0.01", "min": "0.50"})


def _words(value: Any) -> str:
    return ", ".join(value or [])


FACET_KINDS = {"materials": "material", "processes": "process"}


def catalogue_field(name: str, help_text: str) -> forms.MultipleChoiceField:
    """Materials or processes ticked from the catalogue (the service refuses a pair that
    does not fit: apps.vendors.catalog.pairing_problems; static/js/listing_catalogue.js
    keeps the ticks fitting on the page)."""
    choices = catalog.material_choices() if name == "materials" else catalog.process_choices()
    return forms.MultipleChoiceField(
        choices=choices,
        required=False,
        widget=forms.CheckboxSelectMultiple(attrs={"data-catalogue": FACET_KINDS[name]}),
        help_text=help_text,
    )


def catalogue_codes(values: Any, *, kind: str) -> list[str]:
    """Stored values as the codes the check boxes carry; values outside the catalogue (from
    before it) stay as they are, to be shown and refused by name."""
    texts = [v for v in values or [] if isinstance(v, str)]
    codes, unknown = catalog.codes_clean(texts, kind=kind)
    return [*codes, *unknown]


def posted_initial(data: Any) -> dict[str, Any]:
    """A posted form as initial values for showing it again ("Add a step"), the ticked
    materials and processes as lists."""
    initial: dict[str, Any] = data.dict()
    for name in FACET_KINDS:
        initial[name] = data.getlist(name)
    return initial


def keep_unknown_choices(form: forms.Form) -> None:
    """A value the catalogue does not know (an older listing's "nylon") stays on the form,
    ticked, so the seller sees it refused by name instead of losing it silently."""
    for name in FACET_KINDS:
        if name not in form.fields:
            continue
        field = form_field(form, name, forms.ChoiceField)
        if form.is_bound:
            getlist = getattr(form.data, "getlist", None)
            current = getlist(form.add_prefix(name)) if getlist else []
        else:
            current = form.initial.get(name) or []
        choices = choice_pairs(field)
        known = dict(choices)
        extra = [(v, v) for v in current if isinstance(v, str) and v not in known]
        if extra:
            field.choices = [*choices, *extra]


class ListingFieldsForm(forms.Form):
    """What every kind of listing says and costs."""

    title = forms.CharField(max_length=160)
    summary = forms.CharField(
        max_length=300, required=False, help_text="One line under the title in search results."
    )
    description = forms.CharField(widget=forms.Textarea(attrs={"rows": 6}), required=False)
    price = forms.DecimalField(
        max_digits=14, decimal_places=2, min_value=Decimal("0.50"), widget=MONEY_INPUT
    )
    currency = forms.ChoiceField(choices=())
    licence = forms.ChoiceField(choices=Listing.Licence.choices)
    tags = forms.CharField(
        required=False, help_text="Comma separated, up to 10 (e.g. drone, bracket)."
    )
    processes = catalogue_field("processes", "None ticked: the content's.")
    materials = catalogue_field("materials", "None ticked: the content's.")

    def __init__(self, *args: Any, kind: str, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.kind = kind
        currencies = settings.MARKETPLACE_CURRENCIES
        form_field(self, "currency", forms.ChoiceField).choices = [(c, c) for c in currencies]
        self.fields["currency"].initial = settings.MARKETPLACE_DEFAULT_CURRENCY
        licences = [
            (value, label)
            for value, label in Listing.Licence.choices
            if (value == Listing.Licence.SERVICE) == (kind == Listing.Kind.CAPACITY)
        ]
        form_field(self, "licence", forms.ChoiceField).choices = licences
        if kind == Listing.Kind.CAPACITY:
            self.fields["price"].label = "Price per hour"
        else:
            self.fields["price"].label = "Price per licence"
        sources: dict[str, str] = {
            Listing.Kind.PLAYBOOK: "What the playbook is written for; buyers filter by them.",
            Listing.Kind.TEMPLATE: "None ticked: those of the parts.",
            Listing.Kind.CAPACITY: "None ticked: those of your approved machines of that kind.",
        }
        source = sources.get(kind)
        for name in FACET_KINDS:
            if source and name in self.fields:
                self.fields[name].help_text = source
        keep_unknown_choices(self)

    def listing_values(self) -> dict[str, Any]:
        data = dict(self.cleaned_data)
        if "tags" in data:
            data["tags"] = data["tags"] or ""
        for name in FACET_KINDS:
            if name in data:
                data[name] = list(data[name] or [])
        return data


class ListingCreateForm(ListingFieldsForm):
    """A new listing of one kind: the template to sell, or the capacity terms; a playbook's
    steps come in a formset next to it."""

    organization = forms.ModelChoiceField(
        queryset=Organization.objects.none(), label="Sold by", required=False
    )
    template = forms.ModelChoiceField(
        queryset=JobTemplate.objects.none(),
        label="Job template",
        required=False,
        help_text="Sell one of your job templates as it is, or leave this empty and describe "
        "the parts below.",
    )
    node_kind = forms.ChoiceField(choices=(), label="Machine kind")
    min_hours = forms.IntegerField(min_value=1, max_value=10000, initial=1)
    max_hours = forms.IntegerField(min_value=1, max_value=10000, initial=100)

    def __init__(
        self,
        *args: Any,
        kind: str,
        organizations: Any,
        templates: Any = None,
        node_kinds: list[tuple[str, str]] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, kind=kind, **kwargs)
        form_field(self, "organization", forms.ModelChoiceField).queryset = organizations
        if organizations.count() <= 1:
            self.fields["organization"].widget = forms.HiddenInput()
        if kind == Listing.Kind.TEMPLATE and templates is not None and templates.exists():
            form_field(self, "template", forms.ModelChoiceField).queryset = templates
        else:  # no job templates to choose from (vendors): the parts are described instead
            del self.fields["template"]
        if kind == Listing.Kind.CAPACITY:
            form_field(self, "node_kind", forms.ChoiceField).choices = node_kinds or []
        else:
            for name in ("node_kind", "min_hours", "max_hours"):
                del self.fields[name]


class ListingEditForm(ListingFieldsForm):
    min_hours = forms.IntegerField(min_value=1, max_value=10000)
    max_hours = forms.IntegerField(min_value=1, max_value=10000)

    def __init__(self, *args: Any, kind: str, **kwargs: Any) -> None:
        super().__init__(*args, kind=kind, **kwargs)
        if kind != Listing.Kind.CAPACITY:
            del self.fields["min_hours"]
            del self.fields["max_hours"]

    @classmethod
    def initial_for(cls, listing: Listing) -> dict[str, Any]:
        facets: dict[str, list[str]] = {"tag": [], "material": [], "process": []}
        for facet in listing.facets.all():
            facets[facet.facet].append(facet.value)
        return {
            "title": listing.title,
            "summary": listing.summary,
            "description": listing.description,
            "price": listing.price,
            "currency": listing.currency,
            "licence": listing.licence,
            "tags": _words(facets["tag"]),
            "materials": catalogue_codes(facets["material"], kind="material"),
            "processes": catalogue_codes(facets["process"], kind="process"),
            "min_hours": listing.min_hours,
            "max_hours": listing.max_hours,
        }


class VersionForm(forms.Form):
    changelog = forms.CharField(
        max_length=500,
        required=False,
        widget=forms.Textarea(attrs={"rows": 2}),
        help_text="What changed: buyers see it with the version.",
    )
    processes = catalogue_field("processes", "What the playbook is written for.")
    materials = catalogue_field("materials", "What the playbook is written for.")
    min_hours = forms.IntegerField(min_value=1, max_value=10000)
    max_hours = forms.IntegerField(min_value=1, max_value=10000)

    def __init__(self, *args: Any, kind: str, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if kind != Listing.Kind.PLAYBOOK:
            del self.fields["materials"]
            del self.fields["processes"]
        if kind != Listing.Kind.CAPACITY:
            del self.fields["min_hours"]
            del self.fields["max_hours"]
        keep_unknown_choices(self)


class RetireForm(forms.Form):
    reason = forms.CharField(max_length=300, required=False)


class ImageForm(forms.Form):
    # a FileField: the service opens the file and says what is wrong with it
    image = forms.FileField(help_text="PNG, JPEG or WebP, at most 5 MB.")
    alt = forms.CharField(max_length=200, required=False, label="Description (for screen readers)")


class BrowseForm(forms.Form):
    q = forms.CharField(required=False, label="Search")
    kind = forms.ChoiceField(choices=[("", "Any"), *Listing.Kind.choices], required=False)
    material = forms.ChoiceField(choices=(), required=False)
    process = forms.ChoiceField(choices=(), required=False)
    tag = forms.CharField(required=False)
    currency = forms.ChoiceField(choices=(), required=False)
    price_min = forms.DecimalField(
        required=False, min_value=Decimal("0"), decimal_places=2, max_digits=14, label="Price from"
    )
    price_max = forms.DecimalField(
        required=False, min_value=Decimal("0"), decimal_places=2, max_digits=14, label="to"
    )
    rating_min = forms.ChoiceField(
        choices=[("", "Any"), ("4", "4 stars and up"), ("3", "3 stars and up"), ("2", "2 and up")],
        required=False,
        label="Rating",
    )
    sort = forms.ChoiceField(choices=list(SORT_LABELS.items()), required=False)

    def __init__(self, *args: Any, materials: list[str], processes: list[str], **kw: Any) -> None:
        super().__init__(*args, **kw)
        form_field(self, "material", forms.ChoiceField).choices = [
            ("", "Any"),
            *((m, label(m, "material")) for m in materials),
        ]
        form_field(self, "process", forms.ChoiceField).choices = [
            ("", "Any"),
            *((p, label(p, "process")) for p in processes),
        ]
        currencies = settings.MARKETPLACE_CURRENCIES
        currency = form_field(self, "currency", forms.ChoiceField)
        currency.choices = [("", "Any"), *((c, c) for c in currencies)]
        self.fields["currency"].help_text = (
            f"Prices are compared in this currency ({settings.MARKETPLACE_DEFAULT_CURRENCY} "
            "if none is chosen)."
        )

    def filters(self) -> dict[str, Any]:
        """The valid filters (an invalid one is left out and shown as an error)."""
        self.is_valid()
        data = getattr(self, "cleaned_data", {})
        out: dict[str, Any] = {}
        for name in ("q", "kind", "material", "process", "tag", "currency"):
            if data.get(name):
                out[name] = data[name]
        for name in ("price_min", "price_max"):
            if data.get(name) is not None:
                out[name] = data[name]
        if data.get("rating_min"):
            out["rating_min"] = Decimal(data["rating_min"])
        out["sort"] = data.get("sort") or "newest"
        return out
