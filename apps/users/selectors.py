from __future__ import annotations

from django.db.models import Q, QuerySet
from django.shortcuts import get_object_or_404
from guardian.shortcuts import get_objects_for_user

from apps.users.models import Organization, User
from apps.users.roles import Action, user_can


def organization_list(*, user: User) -> QuerySet[Organization]:
    """Organizations the user belongs to, plus those shared with them through guardian."""
    if user_can(user, Action.SYSTEM_ADMIN):
        return Organization.objects.all()
    shared = get_objects_for_user(
        user, "users.view_organization", klass=Organization, accept_global_perms=False
    )
    return Organization.objects.filter(
        Q(memberships__user=user) | Q(pk__in=shared.values("pk"))
    ).distinct()


def organization_get_for_user(*, user: User, pk: int) -> Organization:
    """404, not 403, so ids don't leak."""
    return get_object_or_404(organization_list(user=user), pk=pk)


def user_list(*, search: str = "", role: str = "") -> QuerySet[User]:
    qs = User.objects.all().prefetch_related("memberships__organization")
    if search:
        qs = qs.filter(Q(email__icontains=search) | Q(full_name__icontains=search))
    if role:
        qs = qs.filter(role=role)
    return qs


def user_organization_ids(*, user: User) -> list[int]:
    return list(user.memberships.values_list("organization_id", flat=True))
