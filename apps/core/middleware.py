from __future__ import annotations

from collections.abc import Callable
from contextvars import ContextVar

from django.http import HttpRequest, HttpResponse, JsonResponse

# The request being served, so audit entries written deep in services know who and from where.
current_request: ContextVar[HttpRequest | None] = ContextVar("current_request", default=None)


class RequestContextMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        token = current_request.set(request)
        try:
            return self.get_response(request)
        finally:
            current_request.reset(token)


class ApiErrorFormatMiddleware:
    """Under /api/, an error that Django answered with HTML (an unknown URL, the debug pages
    in development, a CSRF failure) is rewritten into the API's one JSON error format."""

    CODES = {
        400: ("bad_request", "The request is malformed."),
        403: ("permission_denied", "You do not have permission to perform this action."),
        404: ("not_found", "Nothing exists at this address."),
        405: ("method_not_allowed", "This method is not allowed here."),
        413: ("payload_too_large", "The request body is too large."),
        500: ("server_error", "An unexpected error occurred; it has been logged."),
    }

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        if (
            request.path.startswith("/api/")
            and response.status_code >= 400
            and not response.get("Content-Type", "").startswith("application/json")
        ):
            from apps.core.api import error_body

            code, message = self.CODES.get(
                response.status_code, ("error", f"HTTP {response.status_code}")
            )
            replacement = JsonResponse(error_body(code, message), status=response.status_code)
            for header in ("Allow", "Retry-After"):
                if header in response:
                    replacement[header] = response[header]
            return replacement
        return response
