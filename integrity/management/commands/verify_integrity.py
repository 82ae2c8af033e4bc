"""Re-derive every seal and report each event changed, deleted, moved, inserted or missing."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError

from accounts.models import Organization
from integrity.services import integrity_verify_record


class Command(BaseCommand):
    help = (
        "Verify every organization's sealed events (or one's) against their signed seals and "
        "the copies in the archive storage; print each problem by event id. Exits 1 on any "
        "problem and 2 when it cannot verify (no signing key, or another key)."
    )

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--organization", metavar="SLUG")

    def handle(self, *args: Any, organization: str | None, **options: Any) -> None:
        organizations = Organization.objects.order_by("pk")
        if organization:
            organizations = organizations.filter(slug=organization)
            if not organizations.exists():
                raise CommandError(f"No organization has the slug {organization!r}.")
        failed = cannot = False
        for org in organizations:
            report = integrity_verify_record(organization=org)
            self.stdout.write(report.summary())
            for problem in report.problems:
                self.stdout.write(f"  {problem.kind}: {problem.message}")
            failed |= bool(report.problems)
            cannot |= bool(report.cannot_verify)
        if cannot:
            raise CommandError("Cannot verify: see above.", returncode=2)
        if failed:
            raise CommandError("Integrity problems found: see above.", returncode=1)
