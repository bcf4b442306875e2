"""API conventions shared by every app: the one JSON error format, pagination, JSON error pages.

Every error body is ``{"error": {"code": str, "message": str, "details": object|null}}``.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any

from django.conf import settings
from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import RequestDataTooBig, TooManyFieldsSent, TooManyFilesSent
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import InterfaceError, OperationalError
from django.http import Http404, HttpRequest, JsonResponse
from rest_framework import exceptions, status
from rest_framework.pagination import PageNumberPagination
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from apps.core.audit import audit_log
from apps.core.exceptions import Conflict
from apps.core.models import AuditLog

logger = logging.getLogger(__name__)

MESSAGES = {
    "invalid": "The request has invalid fields; see details.",
    "parse_error": "The request body could not be parsed.",
}


def error_body(code: str, message: str, details: Any = None) -> dict[str, Any]:
    return {"error": {"code": code, "message": message, "details": details}}


def _code_of(exc: exceptions.APIException) -> str:
    codes = exc.get_codes()
    if isinstance(codes, str):
        return codes
    return getattr(exc, "default_code", "error")


class ConflictError(exceptions.APIException):
    status_code = status.HTTP_409_CONFLICT
    default_code = "conflict"
    default_detail = "The request conflicts with the current state."
    details: Any = None  # the Conflict's, as the error body's details


class PayloadTooLarge(exceptions.APIException):
    status_code = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
    default_code = "payload_too_large"
    default_detail = "The request body is too large."


def body_error(exc: Exception) -> tuple[int, str, str] | None:
    """(status, code, message) for Django's refusals of an oversized or overfull body, which
    Django itself would answer 400 (or DRF 500)."""
    if isinstance(exc, RequestDataTooBig):
        limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
        return (
            413,
            "payload_too_large",
            f"The request's form fields are larger than the {limit:,} bytes allowed.",
        )
    if isinstance(exc, TooManyFieldsSent):
        limit = settings.DATA_UPLOAD_MAX_NUMBER_FIELDS
        return 400, "too_many_fields", f"The request has more than {limit:,} form fields."
    if isinstance(exc, TooManyFilesSent):
        limit = settings.DATA_UPLOAD_MAX_NUMBER_FILES
        return 400, "too_many_files", f"The request has more than {limit:,} files."
    return None


def _django_to_drf(exc: Exception) -> Exception:
    refused = body_error(exc)
    if refused is not None:
        code, name, message = refused
        if code == 413:
            return PayloadTooLarge(message, code=name)
        return exceptions.ParseError(message, code=name)
    if isinstance(exc, Conflict):
        error = ConflictError(exc.message)
        error.details = exc.details
        return error
    if isinstance(exc, DjangoValidationError):
        if hasattr(exc, "error_dict"):
            return exceptions.ValidationError(exc.message_dict)
        return exceptions.ValidationError({"non_field_errors": exc.messages})
    if isinstance(exc, DjangoPermissionDenied):
        return exceptions.PermissionDenied(str(exc) or None)
    if isinstance(exc, Http404):
        return exceptions.NotFound()
    return exc


# The database is restarting, failing over, or its pool is exhausted: a moment's trouble the
# caller should retry (edge gateways keep their batch on 503, but treat a 500 as bad data).
DATABASE_UNAVAILABLE = (OperationalError, InterfaceError)
DATABASE_RETRY_AFTER_S = 5
DATABASE_UNAVAILABLE_MESSAGE = "The database is unavailable for a moment; retry shortly."


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response:
    if isinstance(exc, DATABASE_UNAVAILABLE):
        logger.warning("Database unavailable: %s", exc)
        return Response(
            error_body("database_unavailable", DATABASE_UNAVAILABLE_MESSAGE),
            status=status.HTTP_503_SERVICE_UNAVAILABLE,
            headers={"Retry-After": str(DATABASE_RETRY_AFTER_S)},
        )
    exc = _django_to_drf(exc)
    response = drf_exception_handler(exc, context)
    request = context.get("request")
    if response is None:
        logger.exception("Unhandled API error", exc_info=exc)
        return Response(
            error_body("server_error", "An unexpected error occurred; it has been logged."),
            status=status.HTTP_500_INTERNAL_SERVER_ERROR,
        )
    assert isinstance(exc, exceptions.APIException)
    code = _code_of(exc)
    details: Any = None
    if isinstance(exc, exceptions.ValidationError):
        message = MESSAGES["invalid"]
        details = exc.detail if isinstance(exc.detail, dict) else {"non_field_errors": exc.detail}
        # One shape everywhere: field -> list of messages.
        details = {k: [v] if isinstance(v, str) else v for k, v in details.items()}
    else:
        message = str(exc.detail if not isinstance(exc.detail, dict | list) else exc.default_detail)
        if isinstance(exc.detail, dict | list):
            details = exc.detail
    if isinstance(exc, ConflictError):
        details = exc.details
    if isinstance(exc, exceptions.Throttled):
        details = {"retry_after_seconds": getattr(exc, "wait", None)}
    if isinstance(exc, exceptions.MethodNotAllowed):
        view = context.get("view")
        details = {"allowed": list(getattr(view, "allowed_methods", []))}
    if isinstance(exc, exceptions.PermissionDenied) and request is not None:
        audit_log(
            action=AuditLog.Action.PERMISSION_DENIED,
            request=getattr(request, "_request", request),
            actor=request.user if request.user.is_authenticated else None,
            changes={"method": request.method, "reason": message},
        )
    response.data = error_body(code, message, details)
    return response


def _positive_int_param(request: Any, name: str) -> int | None:
    """The query parameter `name` as a whole number >= 1 (None when absent); anything else is a
    400 naming the parameter, never silently replaced by a default."""
    raw = request.query_params.get(name)
    if raw is None:
        return None
    value = raw.strip()
    if not value.isascii() or not value.isdigit() or int(value) < 1:
        raise exceptions.ValidationError({name: [f"Must be a whole number >= 1, got {raw!r}."]})
    return int(value)


def requested_fields(request: Any, known: Iterable[str]) -> tuple[set[str], set[str]]:
    """The `fields` (keep only these) and `omit` (leave these out) of a request, comma-separated
    or repeated, checked against the response's `known` top-level fields: an unknown name is a
    400 that lists the known ones (a client asking for a misspelt field must not get a silently
    smaller body). drf-flex-fields applies them in the serializer."""
    allowed = list(known)
    chosen: dict[str, set[str]] = {}
    for param in ("fields", "omit"):
        names = {
            name.strip()
            for value in request.query_params.getlist(param)
            for name in value.split(",")
            if name.strip()
        }
        unknown = sorted(names - set(allowed))
        if unknown:
            raise exceptions.ValidationError(
                {
                    param: [
                        f"Unknown field {', '.join(unknown)}; the fields are {', '.join(allowed)}."
                    ]
                }
            )
        chosen[param] = names
    return chosen["fields"], chosen["omit"]


class StandardPagination(PageNumberPagination):
    page_size_query_param = "page_size"
    max_page_size = 200  # a larger page_size is served at this size
    last_page_strings = ()  # `page` is an integer, as the schema says

    def get_page_size(self, request: Any) -> int | None:
        size = _positive_int_param(request, self.page_size_query_param)
        return self.page_size if size is None else min(size, self.max_page_size)

    def get_page_number(self, request: Any, paginator: Any) -> int:
        number = _positive_int_param(request, self.page_query_param)
        return 1 if number is None else number

    def get_schema_operation_parameters(self, view: Any) -> list[dict[str, Any]]:
        parameters = super().get_schema_operation_parameters(view)
        for parameter in parameters:
            parameter["schema"]["minimum"] = 1
            if parameter["name"] == self.page_size_query_param:
                parameter["description"] += (
                    f" At most {self.max_page_size}; more is served as that."
                )
        return parameters

    def get_paginated_response(self, data: Any) -> Response:
        assert self.page is not None
        return Response(
            {
                "count": self.page.paginator.count,
                "page": self.page.number,
                "pages": self.page.paginator.num_pages,
                "next": self.get_next_link(),
                "previous": self.get_previous_link(),
                "results": data,
            }
        )

    def get_paginated_response_schema(self, schema: dict[str, Any]) -> dict[str, Any]:
        base = super().get_paginated_response_schema(schema)
        base["properties"]["page"] = {"type": "integer"}
        base["properties"]["pages"] = {"type": "integer"}
        return base


def json_error_response(
    request: HttpRequest, status_code: int, code: str, message: str
) -> JsonResponse:
    return JsonResponse(error_body(code, message), status=status_code)


def is_api_request(request: HttpRequest) -> bool:
    return request.path.startswith("/api/")
