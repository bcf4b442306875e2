"""The guardian-backed DRF classes that later apps put on their views."""

from __future__ import annotations

import pytest
from guardian.shortcuts import assign_perm
from rest_framework import serializers
from rest_framework.generics import ListAPIView, RetrieveUpdateAPIView
from rest_framework.test import APIRequestFactory, force_authenticate

from apps.core.permissions import ObjectPermissions, ObjectPermissionsFilter
from apps.users.models import Organization
from apps.users.roles import Role
from tests.users.factories import OrganizationFactory


class OrgSerializer(serializers.ModelSerializer):
    class Meta:
        model = Organization
        fields = ["id", "name"]


class OrgList(ListAPIView):
    queryset = Organization.objects.all()
    serializer_class = OrgSerializer
    filter_backends = [ObjectPermissionsFilter]
    pagination_class = None


class OrgDetail(RetrieveUpdateAPIView):
    queryset = Organization.objects.all()
    serializer_class = OrgSerializer
    permission_classes = [ObjectPermissions]


def call(view, user, method="get", pk=None, data=None):
    factory = APIRequestFactory()
    url = f"/x/{pk or ''}"
    request = getattr(factory, method)(url, data, format="json")
    force_authenticate(request, user=user)
    return view.as_view()(request, pk=pk) if pk else view.as_view()(request)


@pytest.mark.django_db
def test_list_shows_only_objects_shared_with_the_user(make_user):
    shared, private = (
        OrganizationFactory.create(name="Shared"),
        OrganizationFactory.create(name="Private"),
    )
    user = make_user(Role.DESIGNER)
    assert call(OrgList, user).data == []
    assign_perm("users.view_organization", user, shared)
    assert [o["name"] for o in call(OrgList, user).data] == ["Shared"]
    assert private.pk not in [o["id"] for o in call(OrgList, user).data]


@pytest.mark.django_db
def test_detail_view_and_edit_follow_object_permissions(make_user):
    org = OrganizationFactory.create(name="Lab")
    viewer, editor, stranger = (make_user(Role.DESIGNER) for _ in range(3))
    assign_perm("users.view_organization", viewer, org)
    assign_perm("users.view_organization", editor, org)
    assign_perm("users.change_organization", editor, org)

    assert call(OrgDetail, stranger, pk=org.pk).status_code == 404  # ids don't leak
    assert call(OrgDetail, viewer, pk=org.pk).status_code == 200
    assert call(OrgDetail, viewer, "patch", org.pk, {"name": "Hacked"}).status_code == 403
    assert call(OrgDetail, editor, "patch", org.pk, {"name": "Lab 2"}).status_code == 200
    org.refresh_from_db()
    assert org.name == "Lab 2"
