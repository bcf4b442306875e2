"""Error pages: JSON in the API's one format under /api/, friendly HTML elsewhere."""

from __future__ import annotations

import logging
from collections.abc import Callable

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from apps.core.api import (
    DATABASE_RETRY_AFTER_S,
    DATABASE_UNAVAILABLE,
    DATABASE_UNAVAILABLE_MESSAGE,
    body_error,
    is_api_request,
    json_error_response,
)
from apps.core.audit import audit_log
from apps.core.models import AuditLog

logger = logging.getLogger(__name__)


def bad_request(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    refused = body_error(exception) if exception is not None else None
    if refused is not None:  # Django sends its body refusals here, the 413 one included
        status, code, message = refused
        if is_api_request(request):
            return json_error_response(request, status, code, message)
        if status == 413:
            return render(request, "errors/413.html", {"message": message}, status=413)
        return render(request, "errors/400.html", {"message": message}, status=400)
    if is_api_request(request):
        return json_error_response(request, 400, "bad_request", "The request is malformed.")
    return render(request, "errors/400.html", status=400)


def permission_denied(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    reason = str(exception) if exception and str(exception) else "You may not open this page."
    user = getattr(request, "user", None)
    audit_log(
        action=AuditLog.Action.PERMISSION_DENIED,
        request=request,
        actor=user if user is not None and user.is_authenticated else None,
        changes={"method": request.method, "reason": reason},
    )
    if is_api_request(request):
        return json_error_response(request, 403, "permission_denied", reason)
    return render(request, "errors/403.html", {"reason": reason}, status=403)


def not_found(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    if is_api_request(request):
        return json_error_response(request, 404, "not_found", "Nothing exists at this address.")
    return render(request, "errors/404.html", status=404)


def server_error(request: HttpRequest) -> HttpResponse:
    if is_api_request(request):
        return json_error_response(
            request, 500, "server_error", "An unexpected error occurred; it has been logged."
        )
    return render(request, "errors/500.html", status=500)


def database_unavailable(request: HttpRequest) -> HttpResponse:
    """503 with Retry-After; the page is standalone (the base layout would query the database)."""
    response: HttpResponse
    if is_api_request(request):
        response = json_error_response(
            request, 503, "database_unavailable", DATABASE_UNAVAILABLE_MESSAGE
        )
    else:
        response = render(request, "errors/503.html", status=503)
    response["Retry-After"] = str(DATABASE_RETRY_AFTER_S)
    return response


class DatabaseUnavailableMiddleware:
    """A database fault in a portal page or a plain view (DRF views answer it themselves) is a
    503 to retry, not a 500: a restart or failover, an exhausted pool, a lock timeout."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        return self.get_response(request)

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        if not isinstance(exception, DATABASE_UNAVAILABLE):
            return None
        logger.warning("Database unavailable: %s", exception)
        return database_unavailable(request)


def csrf_failure(request: HttpRequest, reason: str = "") -> HttpResponse:
    """CSRF_FAILURE_VIEW: the portal's own page (the API's JSON format under /api/)."""
    if is_api_request(request):
        return json_error_response(
            request, 403, "csrf_failed", "CSRF verification failed; reload the page and retry."
        )
    return render(request, "errors/403_csrf.html", status=403)


class PermissionsPolicyMiddleware:
    """Sends settings.PERMISSIONS_POLICY on every response (Django has no setting for it)."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        response.headers.setdefault("Permissions-Policy", settings.PERMISSIONS_POLICY)
        return response
