"""A query compiled once per shape answers what the ORM answers for every value, and a queryset
whose stand-ins do not reach the SQL as plain parameters is refused when it is compiled."""

from __future__ import annotations

from typing import Any

import pytest
from django.db.models import QuerySet
from django.db.models.expressions import RawSQL

from apps.core.precompiled import PrecompiledQuery
from apps.users.models import User
from apps.users.roles import Role
from tests.users.factories import UserFactory

pytestmark = pytest.mark.django_db


def users(shape: str, *, pk: int, floor: int) -> QuerySet[Any]:
    base = User.objects.filter(pk__gte=floor).order_by("pk")
    if shape == "one":
        base = base.filter(pk=pk)
    elif shape == "designers":
        base = base.filter(role=Role.DESIGNER)
    return base.values_list("pk", "email", "role")


def test_each_shape_and_every_value_answers_as_the_orm_does():
    made = [UserFactory.create(role=role) for role in (Role.DESIGNER, Role.VENDOR, Role.DESIGNER)]
    query = PrecompiledQuery(users, "pk", "floor")
    for shape in ("one", "designers", "all"):
        for user in made:
            for floor in (made[0].pk, made[1].pk, made[2].pk + 1):
                expected = list(users(shape, pk=user.pk, floor=floor))
                assert query.rows(shape, pk=user.pk, floor=floor) == expected, (shape, floor)
    assert query.rows("one", pk=made[1].pk, floor=0) == [(made[1].pk, made[1].email, "vendor")]
    assert query.rows("one", pk=-1, floor=0) == []


def test_a_stand_in_written_into_the_sql_text_is_refused():
    def inlined(shape: str, *, pk: int) -> QuerySet[Any]:
        return User.objects.annotate(x=RawSQL(f"{pk}", [])).values_list("pk", "x")

    with pytest.raises(ValueError, match="written into the SQL text"):
        PrecompiledQuery(inlined, "pk").rows("any", pk=1)


def test_a_stand_in_that_reaches_the_parameters_converted_is_refused():
    def converted(shape: str, *, pk: int) -> QuerySet[Any]:
        return User.objects.filter(email=f"user{pk}@example.test").values_list("pk")

    with pytest.raises(ValueError, match="changed"):
        PrecompiledQuery(converted, "pk").rows("any", pk=1)
