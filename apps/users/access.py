from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any

from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse

from apps.users.roles import Action, portal_allows, user_can


def portal_required(
    portal: str,
) -> Callable[[Callable[..., HttpResponse]], Callable[..., HttpResponse]]:
    """Signed-in users whose role may enter `portal`; others get the 403 page (audited)."""

    def decorator(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
        @wraps(view)
        @login_required
        def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
            if not portal_allows(request.user, portal):
                raise PermissionDenied(f"The {portal} portal is not open to your role.")
            return view(request, *args, **kwargs)

        return wrapper

    return decorator


def action_required(
    action: Action,
) -> Callable[[Callable[..., HttpResponse]], Callable[..., HttpResponse]]:
    def decorator(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
        @wraps(view)
        @login_required
        def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
            if not user_can(request.user, action):
                raise PermissionDenied(f"Your role does not allow this: {action.label.lower()}.")
            return view(request, *args, **kwargs)

        return wrapper

    return decorator
