"""A new job's fields (title, priority, deadline, timing) and a part's (name, quantity,
complexity) are the models': the submit page, the template and bought-template forms and the
API's serializers take their types, choices, limits and defaults from apps.jobs.models, so
they cannot drift apart."""

from __future__ import annotations

from typing import Any

from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models

from apps.jobs.api.jobs import EstimateInputSerializer, JobInputSerializer, PartInputSerializer
from apps.jobs.api.templates import TemplateInstantiateApi
from apps.jobs.forms import JobForm, PartForm, PriorityForm, UseTemplateForm
from apps.jobs.models import Job, Part
from apps.marketplace.api.uses import PurchaseInstantiateApi
from apps.marketplace.forms.uses import InstantiateForm


def _limits(model: Any, name: str) -> tuple[Any, Any]:
    validators = model._meta.get_field(name).validators
    low = next(v.limit_value for v in validators if isinstance(v, MinValueValidator))
    high = next(v.limit_value for v in validators if isinstance(v, MaxValueValidator))
    return low, high


def test_the_job_fields_of_every_form_and_serializer_are_the_job_models():
    low, high = _limits(Job, "priority")
    title_length = Job._meta.get_field("title").max_length
    forms = [
        JobForm(),
        UseTemplateForm(),
        PriorityForm(),
        InstantiateForm(parameters={"scale": {"min": 0.5, "max": 2, "default": 1}}),
    ]
    serializers = [
        JobInputSerializer(),
        EstimateInputSerializer(),
        TemplateInstantiateApi.InputSerializer(),
        PurchaseInstantiateApi.InputSerializer(),
    ]
    # (the two libraries' fields have different attributes: looked up untyped)
    every: list[Any] = [*forms, *serializers]
    for form in every:
        fields = form.fields
        assert (fields["priority"].min_value, fields["priority"].max_value) == (low, high), form
        if "title" in fields:
            assert fields["title"].max_length == title_length, form
        if "timing" in fields:
            assert dict(fields["timing"].choices) == dict(Job.Timing.choices), form
    for serializer in serializers:
        assert serializer.fields["priority"].default == Job._meta.get_field("priority").default
    # the submit form and the bought-template form run a job the same way
    assert [n for n in JobForm.base_fields if n != "title"] == ["priority", "deadline", "timing"]
    bought = InstantiateForm(parameters={})
    assert [n for n in bought.fields if n != "title"] == ["priority", "deadline", "timing"]


def test_the_part_fields_of_the_form_and_the_api_are_the_part_models():
    form: dict[str, Any] = dict(PartForm().fields)
    serializer: dict[str, Any] = dict(PartInputSerializer().fields)
    for name in ("quantity", "complexity"):
        limits = _limits(Part, name)
        assert (form[name].min_value, form[name].max_value) == limits
        assert (serializer[name].min_value, serializer[name].max_value) == limits
        field = Part._meta.get_field(name)
        assert isinstance(field, models.Field)
        assert form[name].initial == serializer[name].default == field.default
    length = Part._meta.get_field("name").max_length
    assert form["name"].max_length == serializer["name"].max_length == length


def test_a_priority_out_of_the_models_range_is_refused_on_the_page_and_in_the_api():
    refused = JobForm({"title": "Bracket", "priority": "11"})
    assert not refused.is_valid()
    assert refused.errors["priority"] == ["Ensure this value is less than or equal to 10."]
    data = JobInputSerializer(data={"title": "Bracket", "priority": 11, "parts": [{}]})
    assert not data.is_valid()
    assert data.errors["priority"] == ["Ensure this value is less than or equal to 10."]
