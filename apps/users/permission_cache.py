"""The role matrix's permissions of each user, cached in the process.

`scope_for` asked Django's `user.has_perm` for every request: two queries (the user's own and
their groups' permissions) for a matrix that changes only when an admin edits a group, a user's
role or groups change, or `roles_sync` runs. Here a user's permissions are computed once (one
query) and kept under the permissions version they were computed at (`PermissionsVersion`,
one row). The version is read again on every request: by the JWT authentication in the query
that loads the user (`apps.users.tokens.user_with_revocation`), otherwise in one small query
the first time a request's user is asked. So a permission granted or revoked counts on the very
next request in every process, and no Redis is involved (a cache that lost its keys could
otherwise bring a revoked permission back).

Every change that may move a permission writes a new version, in the same transaction as the
change: the receivers in `apps.users.apps` catch Django's signals (m2m changes of group
permissions, user groups and user permissions; a permission or group saved or deleted). Code
that changes those tables without signals (raw SQL, `bulk_create` on a through model) must
call `permissions_changed()` itself.
"""

from __future__ import annotations

import uuid
from functools import lru_cache
from typing import Any

# users whose permissions one process keeps (each a frozenset of a few codenames); earlier
# versions' entries fall out as the current version's come in
CACHE_SIZE = 20_000
_UNREAD = object()


def permissions_version_read() -> str | None:
    from apps.users.models import PermissionsVersion

    return PermissionsVersion.objects.filter(pk=1).values_list("value", flat=True).first()


def permissions_changed() -> None:
    """A new version: every process recomputes each user's permissions on their next request.
    Inside the transaction that made the change, so both become visible together."""
    from apps.users.models import PermissionsVersion

    value = uuid.uuid4().hex
    if not PermissionsVersion.objects.filter(pk=1).update(value=value):
        PermissionsVersion.objects.update_or_create(pk=1, defaults={"value": value})


def _permissions_read(user_id: int) -> frozenset[str]:
    """`app_label.codename` of every permission the user holds, directly or through a group:
    what ModelBackend.get_all_permissions gives an active user, in one query."""
    from django.contrib.auth.models import Permission
    from django.db.models import Q

    rows = (
        Permission.objects.filter(Q(user=user_id) | Q(group__user=user_id))
        .values_list("content_type__app_label", "codename")
        .distinct()
    )
    return frozenset(f"{app_label}.{codename}" for app_label, codename in rows)


@lru_cache(maxsize=CACHE_SIZE)
def _permissions_at(user_id: int, version: str) -> frozenset[str]:
    return _permissions_read(user_id)


def user_permissions(user: Any) -> frozenset[str]:
    """The permissions of an active `user` (the caller checks is_active and is_superuser), as of
    the permissions version read with the user (or now, once per user object)."""
    known: frozenset[str] | None = getattr(user, "_role_permissions", None)
    if known is not None:
        return known
    version = getattr(user, "permissions_version", _UNREAD)
    if version is _UNREAD:
        version = permissions_version_read()
    # no version row (deleted by hand): no caching, the database every time
    perms = _permissions_at(user.pk, version) if version else _permissions_read(user.pk)
    user._role_permissions = perms
    return perms


def user_permissions_forget(user: Any) -> None:
    """Drop what this user object remembers (its groups or permissions just changed)."""
    for name in ("_role_permissions", "permissions_version", "_perm_cache"):
        user.__dict__.pop(name, None)


def cache_clear() -> None:
    """Empty this process's cache (tests: a rolled-back database may reuse a version's users)."""
    _permissions_at.cache_clear()
