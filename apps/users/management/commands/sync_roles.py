from typing import Any

from django.core.management.base import BaseCommand

from apps.users.services import roles_sync


class Command(BaseCommand):
    help = "Sync the permission matrix (apps/users/roles.py) into one group per role."

    def handle(self, *args: Any, **options: Any) -> None:
        for role, codenames in roles_sync().items():
            self.stdout.write(f"{role:9} {', '.join(codenames) or '-'}")
