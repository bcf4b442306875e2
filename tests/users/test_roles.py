"""The permission matrix of the foundation issue, transcribed independently of roles.py, so a
wrong entry in the code fails here."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Group
from django.core.management import call_command

from apps.users.roles import Action, Role, Scope, scope_for, user_can
from apps.users.services import user_set_role

A, R, S = Action, Role, Scope
ROLES = [R.ADMIN, R.DESIGNER, R.ENGINEER, R.VENDOR, R.OPERATOR, R.VIEWER]
# One row per action, columns in ROLES order; None means "no".
EXPECTED: dict[Action, list[Scope | None]] = {
    A.JOB_CREATE: [S.ALL, S.OWN, S.OWN, None, None, None],
    A.JOB_VIEW: [S.ALL, S.OWN_ORG, S.OWN_ORG, S.OWN_NODES, S.OPERATED, S.OWN_ORG],
    A.NODE_MANAGE: [S.ALL, None, None, S.OWN_NODES, None, None],
    A.NODE_COMMAND: [S.ALL, None, None, S.OWN_NODES, S.OPERATED, None],
    A.TWIN_EDIT: [S.ALL, S.OWN_AND_SHARED, S.OWN_AND_SHARED, S.OWN_NODES, None, None],
    A.SIMULATION_RUN: [S.ALL, S.ACCESSIBLE, S.ACCESSIBLE, S.ACCESSIBLE, None, None],
    A.TELEMETRY_VIEW: [
        S.ALL,
        S.NODES_RUNNING_OWN_JOBS,
        S.NODES_RUNNING_OWN_JOBS,
        S.OWN_NODES,
        S.OPERATED,
        S.OWN_ORG,
    ],
    A.TELEMETRY_INGEST: [None, None, None, None, None, None],
    A.TICKET_MANAGE: [S.ALL, None, None, S.OWN_NODES, S.OPERATED, None],
    A.INVENTORY_MANAGE: [S.ALL, None, None, S.OWN_NODES, S.OPERATED, None],
    A.ENERGY_MANAGE: [S.ALL, None, None, S.OWN_NODES, S.OPERATED, None],
    A.KPI_VIEW: [S.ALL, None, S.ALL, None, S.OPERATED, None],
    # the marketplace issue: sellers their organization's listings (admins moderate all),
    # buyers for their organization; viewers and operators only browse
    A.MARKET_SELL: [S.ALL, S.OWN_ORG, S.OWN_ORG, S.OWN_ORG, None, None],
    A.MARKET_BUY: [None, S.OWN_ORG, S.OWN_ORG, S.OWN_ORG, None, None],
    A.SYSTEM_ADMIN: [S.ALL, None, None, None, None, None],
}
CASES = [(action, role, EXPECTED[action][i]) for action in EXPECTED for i, role in enumerate(ROLES)]


@pytest.mark.django_db
@pytest.mark.parametrize(("action", "role", "scope"), CASES, ids=lambda v: str(v))
def test_matrix_gives_each_role_its_scope(make_user, action, role, scope):
    user = make_user(role)
    assert scope_for(user, action) == scope
    assert user_can(user, action) is (scope is not None)
    # The right comes from the synced group, not from the code alone.
    assert user.has_perm(f"users.{action.value}") is (scope is not None)


@pytest.mark.django_db
def test_every_action_is_covered_by_the_expected_table():
    assert set(EXPECTED) == set(Action)


@pytest.mark.django_db
def test_groups_hold_exactly_the_matrix_permissions():
    call_command("sync_roles", stdout=open("/dev/null", "w"))  # noqa: SIM115
    for i, role in enumerate(ROLES):
        group = Group.objects.get(name=role.value)
        actions = {a.value for a in Action}
        granted = set(
            group.permissions.filter(codename__in=actions).values_list("codename", flat=True)
        )
        expected = {a.value for a, scopes in EXPECTED.items() if scopes[i] is not None}
        assert granted == expected, role
        # Only admins get Django's model permissions (to work in Django admin).
        has_model_perms = group.permissions.exclude(codename__in=actions).exists()
        assert has_model_perms is (role == R.ADMIN), role


@pytest.mark.django_db
def test_revoking_a_group_permission_takes_the_right_away(make_user):
    user = make_user(R.VENDOR)
    Group.objects.get(name="vendor").permissions.filter(codename=A.NODE_MANAGE.value).delete()
    user = type(user).objects.get(pk=user.pk)  # fresh permission cache
    assert scope_for(user, A.NODE_MANAGE) is None
    assert scope_for(user, A.TICKET_MANAGE) == S.OWN_NODES


@pytest.mark.django_db
def test_role_change_moves_group_and_staff_flag(make_user):
    user = make_user(R.DESIGNER)
    user_set_role(user=user, role=R.ADMIN)
    assert list(user.groups.values_list("name", flat=True)) == ["admin"]
    assert user.is_staff
    user_set_role(user=user, role=R.VIEWER)
    assert list(user.groups.values_list("name", flat=True)) == ["viewer"]
    assert not user.is_staff


@pytest.mark.django_db
def test_inactive_user_can_do_nothing(make_user):
    user = make_user(R.ADMIN, is_active=False)
    assert all(scope_for(user, action) is None for action in Action)


@pytest.mark.django_db
def test_superuser_gets_the_admin_column_but_never_ingest(make_user):
    user = make_user(R.VIEWER, is_superuser=True)
    assert all(scope_for(user, a) == EXPECTED[a][0] for a in Action)
    assert scope_for(user, A.TELEMETRY_INGEST) is None
