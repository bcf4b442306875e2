"""Test-only routes that fail on purpose, to check how failures reach the caller."""

from django.db import connection
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


def _database_fault() -> None:
    """A real fault from the database server (not a raised stand-in): a statement cancelled by
    its timeout on PostgreSQL, a locked/missing table's OperationalError on SQLite."""
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute("SET statement_timeout = 1")
            try:
                cursor.execute("SELECT pg_sleep(1)")
            finally:
                cursor.execute("SET statement_timeout = 0")
        else:
            cursor.execute("SELECT * FROM table_that_is_not_there")


class DatabaseFaultApi(APIView):
    def get(self, request: Request) -> Response:
        _database_fault()
        return Response({})


def database_fault_page(request: HttpRequest) -> HttpResponse:
    _database_fault()
    return HttpResponse("unreachable")


urlpatterns = [
    path("api/v1/test/db-fault/", DatabaseFaultApi.as_view()),
    path("test/db-fault/", database_fault_page),
    path("api/v1/test/boom/", BoomApi.as_view()),
    path("api/v1/test/plain-boom/", plain_boom),
    path("", include("imewe.urls")),
]
handler500 = "apps.core.errors.server_error"
handler404 = "apps.core.errors.not_found"
