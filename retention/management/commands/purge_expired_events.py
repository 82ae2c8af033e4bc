"""Delete events past each organization's retention (what the daily beat job does)."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from accounts.models import Organization
from retention.purge import PurgeOutcome, events_purge_expired, events_purge_expired_all


class Command(BaseCommand):
    help = "Delete events past retention (archived first where asked); --dry-run only counts."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--dry-run", action="store_true", help="Count only; delete nothing.")
        parser.add_argument("--organization", help="Only this organization (slug).")
        parser.add_argument("--batch-size", type=int, default=None)

    def handle(self, *args: Any, **options: Any) -> None:
        dry_run = options["dry_run"]
        batch_size = options["batch_size"]
        if batch_size is not None and batch_size < 1:
            raise CommandError("--batch-size must be at least 1.")
        if options["organization"]:
            organization = Organization.objects.filter(slug=options["organization"]).first()
            if organization is None:
                raise CommandError(f"No organization with slug {options['organization']!r}.")
            outcomes = [
                events_purge_expired(
                    organization=organization, batch_size=batch_size, dry_run=dry_run
                )
            ]
        else:
            outcomes = events_purge_expired_all(batch_size=batch_size, dry_run=dry_run)
        failed = False
        for outcome in outcomes:
            self.stdout.write(self._line(outcome, dry_run))
            failed = failed or outcome.status == "failed"
        if failed:
            raise CommandError("At least one purge failed; nothing of it was lost (see above).")

    @staticmethod
    def _line(outcome: PurgeOutcome, dry_run: bool) -> str:
        head = (
            f"{outcome.label}: retention {outcome.retention_days} days, "
            f"cutoff {outcome.cutoff:%Y-%m-%d %H:%M:%S} UTC: "
        )
        if dry_run:
            return head + f"{outcome.count} events would be deleted"
        if outcome.status == "failed":
            return head + f"FAILED after {outcome.count} deleted: {outcome.error}"
        if outcome.status == "skipped":
            return head + "skipped, another purge of it is running"
        archive = f" (archived to {outcome.archive.name})" if outcome.archive else ""
        return head + f"{outcome.count} events deleted{archive}"
