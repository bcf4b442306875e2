"""`manage.py spoolman_import --vendor forge --url http://spoolman.local:7912 --by a@b.c`:
takes the vendor's spools from its Spoolman (apps/materials/services/spools.py)."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import PermissionDenied, ValidationError
from django.core.management.base import BaseCommand, CommandError, CommandParser

from apps.materials.services import SpoolmanUnavailable, spoolman_fetch, spools_import_spoolman
from apps.users.models import Organization, User


class Command(BaseCommand):
    help = "Import a vendor's spools (material, colour, grams left, printer) from Spoolman."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--vendor", required=True, help="the vendor organization's slug")
        parser.add_argument("--url", required=True, help="Spoolman's base URL")
        parser.add_argument("--by", required=True, help="e-mail of the vendor user importing")

    def handle(self, *args: Any, **options: Any) -> None:
        vendor = Organization.objects.filter(
            slug=options["vendor"], kind=Organization.Kind.VENDOR
        ).first()
        if vendor is None:
            raise CommandError(f"No vendor organization with slug {options['vendor']!r}.")
        user = User.objects.filter(email__iexact=options["by"]).first()
        if user is None:
            raise CommandError(f"No user {options['by']!r}.")
        try:
            spools = spoolman_fetch(url=options["url"])
            report = spools_import_spoolman(vendor=vendor, by=user, spools=spools)
        except (SpoolmanUnavailable, PermissionDenied, ValidationError) as exc:
            raise CommandError(str(exc)) from None
        self.stdout.write(f"{report.created} spool(s) created, {report.updated} updated.")
        for spoolman_id, why in sorted(report.skipped.items()):
            self.stdout.write(f"Spoolman spool {spoolman_id} skipped: {why}")
