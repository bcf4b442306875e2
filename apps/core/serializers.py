"""Serializer helpers every app's API shares."""

from __future__ import annotations

from typing import Any

from rest_framework import serializers


def many_data(serializer: serializers.BaseSerializer[Any]) -> list[Any]:
    """The data of a serializer made with `many=True`: a list. (django-rest-framework's stubs
    type `Serializer(...).data` as a dict, as they cannot see that many=True returns a
    ListSerializer.)"""
    assert isinstance(serializer, serializers.ListSerializer), "made with many=True"
    return serializer.data
