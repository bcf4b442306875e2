from __future__ import annotations

from functools import cache

from rest_framework.permissions import BasePermission
from rest_framework.request import Request
from rest_framework.views import APIView

from apps.users.roles import Action, user_can


@cache
def action_required(action: Action) -> type[BasePermission]:
    """A DRF permission class: the caller's role may perform `action` (at some scope)."""

    class ActionPermission(BasePermission):
        message = f"Your role does not allow this: {action.label.lower()}."

        def has_permission(self, request: Request, view: APIView) -> bool:
            return user_can(request.user, action)

    ActionPermission.__name__ = f"Can{''.join(p.title() for p in action.value.split('_'))}"
    return ActionPermission
