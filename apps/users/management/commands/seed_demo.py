from typing import Any

from django.core.management.base import BaseCommand
from django.db import transaction

from apps.core.services import notification_send
from apps.users.models import Membership, Organization, User
from apps.users.roles import Role
from apps.users.services import (
    membership_add,
    organization_create,
    roles_sync,
    user_create,
    user_set_role,
)

# Development-only logins, printed by `make run` and listed in README. Never use in production.
DEMO_PASSWORD_SUFFIX = "-demo-2026"
DEMO_ORGS = [
    ("Aurora Design Studio", Organization.Kind.DESIGN_TEAM),
    ("Forge Fabrication Co", Organization.Kind.VENDOR),
    ("Lagos Fab Site", Organization.Kind.OPERATOR_SITE),
]
DEMO_USERS = [
    ("admin@imewe.test", "Ada Admin", Role.ADMIN, None),
    ("designer@imewe.test", "Dayo Designer", Role.DESIGNER, "Aurora Design Studio"),
    ("engineer@imewe.test", "Efe Engineer", Role.ENGINEER, "Aurora Design Studio"),
    ("viewer@imewe.test", "Vera Viewer", Role.VIEWER, "Aurora Design Studio"),
    ("vendor@imewe.test", "Victor Vendor", Role.VENDOR, "Forge Fabrication Co"),
    ("operator@imewe.test", "Oluchi Operator", Role.OPERATOR, "Lagos Fab Site"),
]


def demo_password(role: Role) -> str:
    return f"{role.value}{DEMO_PASSWORD_SUFFIX}"


class Command(BaseCommand):
    help = "Create demo organizations and one user per role (idempotent)."

    @transaction.atomic
    def handle(self, *args: Any, **options: Any) -> None:
        roles_sync()
        orgs = {}
        for name, kind in DEMO_ORGS:
            orgs[name] = Organization.objects.filter(name=name).first() or organization_create(
                name=name, kind=kind
            )
        for email, name, role, org_name in DEMO_USERS:
            user = User.objects.filter(email=email).first()
            if user is None:
                user = user_create(
                    email=email, password=demo_password(role), role=role, full_name=name
                )
                if role == Role.ADMIN:
                    user.is_superuser = True
                    user.save(update_fields=["is_superuser"])
                notification_send(
                    user=user,
                    title="Welcome to Imewe",
                    body=f"Your role here: {role.label}. The home page shows what it allows.",
                )
                created = "created"
            else:
                user_set_role(user=user, role=role)
                created = "exists "
            if org_name:
                membership_add(
                    user=user, organization=orgs[org_name], org_role=Membership.OrgRole.OWNER
                )
            self.stdout.write(
                f"{created} {role.value:9} {email:24} password: {demo_password(role)}"
            )
        self.stdout.write(self.style.SUCCESS("Demo data ready."))
