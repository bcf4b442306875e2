"""Request types for views behind a login: `request.user` is our User there."""

from __future__ import annotations

from django.http import HttpRequest
from rest_framework.request import Request

from apps.users.models import User


class AuthenticatedHttpRequest(HttpRequest):
    user: User


class AuthenticatedRequest(Request):
    user: User
