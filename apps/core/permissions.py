"""DRF permission and filter classes shared by the apps: role actions and guardian objects."""

from __future__ import annotations

from typing import Any

from django.db.models import Model, QuerySet
from guardian.shortcuts import get_objects_for_user
from rest_framework.filters import BaseFilterBackend
from rest_framework.permissions import DjangoObjectPermissions
from rest_framework.request import Request
from rest_framework.views import APIView


class ObjectPermissions(DjangoObjectPermissions):
    """Per-object rights from django-guardian (and role groups): view needs `view_<model>` too,
    and 404 is returned instead of 403 when the caller may not even view the object."""

    perms_map = {
        "GET": ["%(app_label)s.view_%(model_name)s"],
        "OPTIONS": [],
        "HEAD": ["%(app_label)s.view_%(model_name)s"],
        "POST": ["%(app_label)s.add_%(model_name)s"],
        "PUT": ["%(app_label)s.change_%(model_name)s"],
        "PATCH": ["%(app_label)s.change_%(model_name)s"],
        "DELETE": ["%(app_label)s.delete_%(model_name)s"],
    }

    def has_permission(self, request: Request, view: APIView) -> bool:
        return bool(request.user and request.user.is_authenticated)


class ObjectPermissionsFilter(BaseFilterBackend):
    """Limit a list to the objects the caller holds `view_<model>` on (globally via a role
    group, or per object via guardian)."""

    def filter_queryset(
        self, request: Request, queryset: QuerySet[Any], view: APIView
    ) -> QuerySet[Any]:
        model: type[Model] = queryset.model
        perm = f"{model._meta.app_label}.view_{model._meta.model_name}"
        return get_objects_for_user(request.user, perm, klass=queryset, accept_global_perms=True)
