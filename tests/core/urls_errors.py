"""Test-only routes that fail on purpose, to check how failures reach the caller."""

from django.http import HttpRequest, HttpResponse
from django.urls import include, path
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView


class BoomApi(APIView):
    def get(self, request: Request) -> Response:
        raise RuntimeError("secret internal detail")


def plain_boom(request: HttpRequest) -> HttpResponse:
    raise RuntimeError("secret internal detail")


urlpatterns = [
    path("api/v1/test/boom/", BoomApi.as_view()),
    path("api/v1/test/plain-boom/", plain_boom),
    path("", include("imewe.urls")),
]
handler500 = "apps.core.errors.server_error"
handler404 = "apps.core.errors.not_found"
