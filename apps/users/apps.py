from __future__ import annotations

from typing import Any

from django.apps import AppConfig
from django.db.models.signals import m2m_changed, post_delete, post_migrate, post_save


class UsersConfig(AppConfig):
    name = "apps.users"
    label = "users"
    verbose_name = "Users and organizations"

    def ready(self) -> None:
        from django.contrib.auth.models import Group, Permission
        from guardian.models import GroupObjectPermission, UserObjectPermission

        from apps.core.audit import audit_track_model
        from apps.users import schema  # noqa: F401  (OpenAPI auth extensions)
        from apps.users.models import Membership, Organization, User

        for model in (User, Organization, Membership):
            audit_track_model(model)
        post_migrate.connect(_sync_roles, sender=self, dispatch_uid="users-sync-roles")
        m2m_changed.connect(
            _audit_m2m, sender=User.groups.through, dispatch_uid="audit-user-groups"
        )
        m2m_changed.connect(
            _audit_m2m, sender=User.user_permissions.through, dispatch_uid="audit-user-perms"
        )
        post_save.connect(_team_add, sender=Membership, dispatch_uid="users-team-add")
        post_delete.connect(_team_remove, sender=Membership, dispatch_uid="users-team-remove")
        # Whatever may move a global permission writes a new permissions version, in the
        # transaction of the change (apps/users/permission_cache.py).
        for through in (
            Group.permissions.through,
            User.groups.through,
            User.user_permissions.through,
        ):
            m2m_changed.connect(
                _permissions_m2m_changed,
                sender=through,
                dispatch_uid=f"permissions-version-{through._meta.label_lower}",
            )
        for changed, signal, name in (
            (Permission, post_save, "permission-save"),
            (Permission, post_delete, "permission-delete"),
            (Group, post_delete, "group-delete"),  # its members' links go without m2m signals
        ):
            signal.connect(
                _permissions_changed, sender=changed, dispatch_uid=f"permissions-version-{name}"
            )
        for perm_model in (UserObjectPermission, GroupObjectPermission):
            uid = f"audit-{perm_model._meta.label_lower}"
            post_save.connect(_audit_object_perm, sender=perm_model, dispatch_uid=uid)
            post_delete.connect(_audit_object_perm, sender=perm_model, dispatch_uid=f"{uid}-del")


def _team_add(sender: Any, instance: Any, **kwargs: Any) -> None:
    from apps.users.services import team_membership_sync

    team_membership_sync(membership=instance, removed=False)


def _team_remove(sender: Any, instance: Any, **kwargs: Any) -> None:
    from apps.users.services import team_membership_sync

    team_membership_sync(membership=instance, removed=True)


def _permissions_m2m_changed(sender: Any, instance: Any, action: str, **kwargs: Any) -> None:
    if action not in {"post_add", "post_remove", "post_clear"}:
        return
    from apps.users.models import User
    from apps.users.permission_cache import permissions_changed, user_permissions_forget

    permissions_changed()
    if isinstance(instance, User):  # its groups or permissions: this object asks again
        user_permissions_forget(instance)


def _permissions_changed(sender: Any, **kwargs: Any) -> None:
    from apps.users.permission_cache import permissions_changed

    permissions_changed()


def _sync_roles(sender: Any, **kwargs: Any) -> None:
    from apps.users.services import roles_sync

    roles_sync()


def _audit_m2m(
    sender: Any, instance: Any, action: str, pk_set: set[int] | None, model: Any, **kw: Any
) -> None:
    if action not in {"post_add", "post_remove", "post_clear"}:
        return
    from apps.core.audit import audit_log
    from apps.core.models import AuditLog

    names = sorted(str(o) for o in model.objects.filter(pk__in=pk_set or []))
    audit_log(
        action=AuditLog.Action.PERMISSION_CHANGED,
        obj=instance,
        changes={"relation": model._meta.model_name, "op": action[5:], "items": names},
    )


def _audit_object_perm(sender: Any, instance: Any, **kwargs: Any) -> None:
    from apps.core.audit import audit_log
    from apps.core.models import AuditLog

    holder = getattr(instance, "user", None) or getattr(instance, "group", None)
    audit_log(
        action=AuditLog.Action.PERMISSION_CHANGED,
        object_type=instance.content_type.model_class()._meta.label_lower,
        object_id=str(instance.object_pk),
        changes={
            "op": "remove" if "created" not in kwargs else "add",
            "permission": instance.permission.codename,
            "holder": str(holder),
        },
    )
