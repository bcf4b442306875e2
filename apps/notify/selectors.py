"""Who may see and edit which channels and deliveries: a person their own channels, the owners
of an organization (and platform admins) the organization's."""

from __future__ import annotations

from django.db.models import Q, QuerySet
from django.shortcuts import get_object_or_404

from apps.notify.models import Channel, Delivery
from apps.users.models import Membership, Organization, User
from apps.users.roles import Action, user_can


def organizations_managed(*, user: User) -> QuerySet[Organization]:
    if user_can(user, Action.SYSTEM_ADMIN):
        return Organization.objects.all()
    return Organization.objects.filter(
        memberships__user=user, memberships__org_role=Membership.OrgRole.OWNER
    )


def organization_can_manage(*, user: User, organization: Organization) -> bool:
    return organizations_managed(user=user).filter(pk=organization.pk).exists()


def channel_list(*, user: User) -> QuerySet[Channel]:
    return (
        Channel.objects.filter(Q(user=user) | Q(organization__in=organizations_managed(user=user)))
        .select_related("organization", "user")
        .prefetch_related("rules")
    )


def channel_can_manage(*, user: User, channel: Channel) -> bool:
    return channel_list(user=user).filter(pk=channel.pk).exists()


def channel_get_for_user(*, user: User, pk: int) -> Channel:
    """404, not 403, so ids of other people's channels don't leak."""
    return get_object_or_404(channel_list(user=user), pk=pk)


def delivery_list(*, user: User) -> QuerySet[Delivery]:
    return Delivery.objects.filter(channel__in=channel_list(user=user)).select_related(
        "event", "channel"
    )
