"""A URLconf for tests/core/test_asgi_handler.py: views that say which thread ran them, and one
that waits until the test lets it go."""

from __future__ import annotations

import threading

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.urls import path

# set by the test; the view waits on it (at most 10 s) and records that it finished
release = threading.Event()
finished = threading.Event()


def where(request: HttpRequest) -> JsonResponse:
    return JsonResponse(
        {
            "view_thread": threading.get_ident(),
            "middleware_thread": getattr(request, "seen_by_middleware_in", None),
        }
    )


def slow(request: HttpRequest) -> HttpResponse:
    release.wait(timeout=10)
    finished.set()
    return HttpResponse("done")


def broken(request: HttpRequest) -> HttpResponse:
    raise RuntimeError("a view that fails")


urlpatterns = [
    path("where/", where),
    path("slow/", slow),
    path("broken/", broken),
]
