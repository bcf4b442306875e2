"""Every factory in tests/<app>/factories.py makes valid rows alone: its required relations
come from sub-factories, so a test names only the fields it is about."""

from __future__ import annotations

import importlib
import inspect
from pathlib import Path

import factory
import pytest

TESTS = Path(__file__).resolve().parent


def _factories() -> list[type[factory.django.DjangoModelFactory[object]]]:
    found = []
    for path in sorted(TESTS.glob("*/factories.py")):
        module = importlib.import_module(f"tests.{path.parent.name}.factories")
        found += [
            cls
            for _, cls in inspect.getmembers(module, inspect.isclass)
            if issubclass(cls, factory.django.DjangoModelFactory)
            and cls.__module__ == module.__name__
        ]
    return found


@pytest.mark.django_db
@pytest.mark.parametrize("model_factory", _factories(), ids=lambda f: f.__name__)
def test_a_factory_makes_rows_with_nothing_given(model_factory):
    rows = model_factory.create_batch(2)
    model = model_factory._meta.model
    assert model._default_manager.filter(pk__in=[row.pk for row in rows]).count() == 2
