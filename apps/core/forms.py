"""What every portal form shares: a service's ValidationError put onto the form that sent it."""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any, TypeVar, cast

from django import forms
from django.core.exceptions import ValidationError

from apps.core.exceptions import error_messages

# a row of a formset as services name it: `steps[1].title`, `parts[0]`
ROW_ERROR = re.compile(r"^\w+\[(\d+)\](?:\.(\w+))?")

FieldT = TypeVar("FieldT", bound=forms.Field)


def form_field(form: forms.BaseForm, name: str, kind: type[FieldT]) -> FieldT:
    """`form.fields[name]` as the kind of field the form declares there. Django types `fields`
    as plain `Field`; setting a choice field's `choices` or a model choice field's `queryset`
    in `__init__` needs the narrower type."""
    field = form.fields[name]
    assert isinstance(field, kind), f"{type(form).__name__}.{name} is a {type(field).__name__}"
    return field


def choice_pairs(field: forms.ChoiceField) -> list[tuple[Any, Any]]:
    """The field's choices as (value, label) pairs. Django normalises choices when they are
    set (a list, or an iterator for a callable); django-stubs types the getter as everything
    the setter accepts (mappings, enum classes, callables), hence the cast."""
    return list(cast(Iterable[tuple[Any, Any]], field.choices))


def form_add_service_error(
    form: forms.Form,
    exc: Exception,
    rows: forms.BaseFormSet[Any] | None = None,
    kept: list[int] | None = None,
    strip: str = "",
) -> None:
    """A service error onto the form: a field's message under that field, a formset row's
    (`steps[1].title`, `parts[0]`) under that row's field when `rows` is given, the rest on
    top. `kept`: which row forms the service was given, in order (blank rows left out);
    `strip`: a prefix of the service's field names the form's fields lack (`parameters.`)."""
    if not (isinstance(exc, ValidationError) and hasattr(exc, "error_dict")):
        form.add_error(None, error_messages(exc))
        return
    for field, messages in exc.message_dict.items():
        row = ROW_ERROR.match(field) if rows is not None else None
        if row is not None and rows is not None:
            index = int(row.group(1))
            if kept is not None and 0 <= index < len(kept):
                index = kept[index]
            if 0 <= index < len(rows.forms):
                target = rows.forms[index]
                name = row.group(2)
                target.add_error(name if name in target.fields else None, messages)
                continue
        name = field.removeprefix(strip) if strip else field
        if name in form.fields:
            form.add_error(name, messages)
        else:
            form.add_error(None, [f"{field}: {m}" for m in messages])
