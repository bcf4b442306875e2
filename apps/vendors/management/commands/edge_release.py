"""`manage.py edge_release --build 1.4.0 --by admin@example.com [--notes ...]` builds the
gateway software of this checkout's `edge/` as a release; `--wheel path.whl` registers one built
elsewhere instead. Either way it is checked and stored with its SHA-256
(apps/vendors/edge_releases.py) and can then be shipped to gateways by a rollout."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

from django.core.exceptions import PermissionDenied, ValidationError
from django.core.management.base import BaseCommand, CommandError, CommandParser

from apps.core.exceptions import Conflict, error_messages
from apps.users.models import User
from apps.vendors.edge_releases import edge_release_register, edge_wheel_build


class Command(BaseCommand):
    help = "Build (or register) a gateway software release for rollouts."

    def add_arguments(self, parser: CommandParser) -> None:
        what = parser.add_mutually_exclusive_group(required=True)
        what.add_argument(
            "--build", metavar="VERSION", help="build edge/ of this checkout as this version"
        )
        what.add_argument("--wheel", help="register this imewe_edge-<version>-py3-none-any.whl")
        parser.add_argument("--by", required=True, help="e-mail of the admin registering it")
        parser.add_argument("--notes", default="", help="release notes shown with it")

    def handle(self, *args: Any, **options: Any) -> None:
        user = User.objects.filter(email__iexact=options["by"]).first()
        if user is None:
            raise CommandError(f"No user {options['by']!r}.")
        try:
            with tempfile.TemporaryDirectory(prefix="imewe-release-") as scratch:
                if options["build"]:
                    path = edge_wheel_build(version=options["build"], out_dir=Path(scratch))
                else:
                    path = Path(options["wheel"])
                with open(path, "rb") as wheel:
                    release = edge_release_register(
                        by=user, wheel=wheel, filename=path.name, notes=options["notes"]
                    )
        except (ValidationError, Conflict, PermissionDenied) as exc:
            raise CommandError(" ".join(error_messages(exc))) from None
        except OSError as exc:
            raise CommandError(f"Cannot read the wheel: {exc}") from None
        self.stdout.write(
            f"Release {release.version} (id {release.pk}): {release.size_bytes} bytes, "
            f"sha256 {release.sha256}"
        )
