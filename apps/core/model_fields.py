"""Form and serializer fields taken from a model's fields, so that a field's type, choices,
length and limits are stated once, on the model, and the page and the API check the same."""

from __future__ import annotations

from typing import Any

from django import forms
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from rest_framework import serializers


def _model_field(model: type[models.Model], name: str) -> models.Field[Any, Any]:
    field = model._meta.get_field(name)
    assert isinstance(field, models.Field) and not field.is_relation, f"{model.__name__}.{name}"
    return field


def _bounds(field: models.Field[Any, Any]) -> dict[str, Any]:
    """The field's MinValueValidator/MaxValueValidator as min_value/max_value (the first of
    each: the model's own come before the database's range)."""
    bounds: dict[str, Any] = {}
    for validator in field.validators:
        if isinstance(validator, MinValueValidator):
            bounds.setdefault("min_value", validator.limit_value)
        elif isinstance(validator, MaxValueValidator):
            bounds.setdefault("max_value", validator.limit_value)
    return bounds


def model_form_field(model: type[models.Model], name: str, **kwargs: Any) -> forms.Field:
    """The form field of `model`'s field `name`: its type, choices, max_length, default as
    initial, required unless blank, and its value limits as min_value/max_value (so the browser
    shows them too); `kwargs` (label, help_text, initial, required, widget) override."""
    field = _model_field(model, name)
    form_field = field.formfield(**{**_bounds(field), **kwargs})
    assert form_field is not None, f"{model.__name__}.{name} has no form field"
    return form_field


def model_serializer_field(
    model: type[models.Model], name: str, **kwargs: Any
) -> serializers.Field[Any, Any, Any, Any]:
    """The input serializer field of `model`'s field `name`, built as a ModelSerializer builds
    it (type, choices, max_length, limits, null and blank), with the model's default as the
    serializer's default; `kwargs` (required, default, help_text, allow_blank) override."""
    field = _model_field(model, name)
    field_class, field_kwargs = serializers.ModelSerializer().build_standard_field(name, field)
    if field.has_default() and not callable(field.default):
        field_kwargs["default"] = field.default
    field_kwargs.update(kwargs)
    if "default" in field_kwargs:  # DRF takes a default or required=True, not both
        if field_kwargs.get("required"):
            del field_kwargs["default"]
        else:
            field_kwargs.pop("required", None)
    return field_class(**field_kwargs)
