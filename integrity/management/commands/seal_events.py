"""Seal what is pending now: the same service the beat task calls."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError

from accounts.models import Organization
from integrity.keys import SigningKeyError
from integrity.keys import new_key as key_generate
from integrity.services import events_seal


class Command(BaseCommand):
    help = (
        "Seal every organization's final, unsealed events (or one organization's) into signed, "
        "chained blocks, each copied to the archive storage. --new-key prints a fresh "
        "INTEGRITY_SIGNING_KEY and seals nothing."
    )

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--organization", metavar="SLUG")
        parser.add_argument("--new-key", action="store_true")

    def handle(self, *args: Any, organization: str | None, new_key: bool, **options: Any) -> None:
        if new_key:
            self.stdout.write(key_generate())
            return
        organizations = Organization.objects.order_by("pk")
        if organization:
            organizations = organizations.filter(slug=organization)
            if not organizations.exists():
                raise CommandError(f"No organization has the slug {organization!r}.")
        for org in organizations:
            try:
                seals = events_seal(organization=org)
            except SigningKeyError as exc:
                raise CommandError(str(exc)) from None
            count = sum(seal.event_count for seal in seals)
            self.stdout.write(f"{org.slug}: {count} events sealed in {len(seals)} block(s)")
