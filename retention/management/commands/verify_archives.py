"""Re-read every stored archive and export; report checksum or row-count mismatches."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from accounts.models import Organization
from retention.archives import stored_files_verify
from retention.models import StoredFile, VerifyStatus


class Command(BaseCommand):
    help = "Recompute each stored file's SHA-256 and row count; exit 1 on any mismatch or gap."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--organization", help="Only this organization's files (slug).")

    def handle(self, *args: Any, **options: Any) -> None:
        files = StoredFile.objects.all()
        if options["organization"]:
            organization = Organization.objects.filter(slug=options["organization"]).first()
            if organization is None:
                raise CommandError(f"No organization with slug {options['organization']!r}.")
            files = files.filter(organization=organization)
        checked = stored_files_verify(files=files)
        bad = [f for f in checked if f.verify_status != VerifyStatus.OK]
        for stored in checked:
            verdict = stored.get_verify_status_display()
            detail = f": {stored.verify_detail}" if stored.verify_detail else ""
            self.stdout.write(f"{verdict:<32} {stored.name} ({stored.row_count} rows){detail}")
        self.stdout.write(f"{len(checked)} files checked, {len(bad)} with problems.")
        if bad:
            raise CommandError(f"{len(bad)} stored files failed verification.")
