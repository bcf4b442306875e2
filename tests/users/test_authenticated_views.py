"""A DRF view that declares `request: AuthenticatedRequest` (so `self.request.user` types as our
User) must keep anonymous callers out before any of its code runs: its permission classes say no
to an anonymous request. The annotation is only a promise to mypy; this test keeps it true."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from django.contrib.auth.models import AnonymousUser
from django.urls import URLPattern, URLResolver, get_resolver
from rest_framework.request import Request
from rest_framework.test import APIRequestFactory
from rest_framework.views import APIView


def _view_classes(patterns: list[Any]) -> Iterator[type[APIView]]:
    for pattern in patterns:
        if isinstance(pattern, URLResolver):
            yield from _view_classes(pattern.url_patterns)
        elif isinstance(pattern, URLPattern):
            cls = getattr(pattern.callback, "cls", None)
            if isinstance(cls, type) and issubclass(cls, APIView):
                yield cls


def _declares_authenticated_request(cls: type[APIView]) -> bool:
    for klass in cls.__mro__:
        annotation = klass.__dict__.get("__annotations__", {}).get("request")
        if annotation is not None:
            name = annotation if isinstance(annotation, str) else annotation.__name__
            return name.rsplit(".", 1)[-1] == "AuthenticatedRequest"
    return False


def _authenticated_views() -> list[type[APIView]]:
    found = set(_view_classes(get_resolver().url_patterns))
    return sorted(
        (cls for cls in found if _declares_authenticated_request(cls)),
        key=lambda cls: f"{cls.__module__}.{cls.__qualname__}",
    )


def test_views_that_declare_an_authenticated_request_are_found() -> None:
    names = {cls.__name__ for cls in _authenticated_views()}
    # one per app that declares it, so a broken lookup fails here instead of passing vacuously
    assert {"JobListApi", "NodeListApi", "OrganizationListApi", "TwinListApi"} <= names


def test_views_that_declare_an_authenticated_request_refuse_anonymous_callers() -> None:
    factory = APIRequestFactory()
    let_in = []
    for cls in _authenticated_views():
        django_request = factory.get("/")
        django_request.user = AnonymousUser()
        request = Request(django_request)
        view = cls()
        if all(p.has_permission(request, view) for p in view.get_permissions()):
            let_in.append(f"{cls.__module__}.{cls.__qualname__}")
    assert let_in == []
