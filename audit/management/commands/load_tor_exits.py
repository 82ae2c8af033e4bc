"""Load the Tor Project's exit list from a local file (what the anonymising-network rule reads)."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError

from audit.tor import TorListError, tor_exit_list_parse, tor_exits_loaded, tor_exits_replace


class Command(BaseCommand):
    help = (
        "Replace the Tor exit list with the addresses in PATH: the Tor Project's bulk exit list "
        "(one address per line) or its exit-addresses format. A file that is missing or not a "
        "Tor exit list is refused, naming the line, and the list already loaded stays."
    )

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("path")

    def handle(self, *args: Any, path: str, **options: Any) -> None:
        try:
            with open(path, "rb") as file:
                exits = tor_exit_list_parse(file)
        except OSError as error:
            raise CommandError(
                f"{path}: cannot be read ({error.strerror}). {self._kept()}"
            ) from None
        except TorListError as error:
            raise CommandError(f"{path}: {error}. {self._kept()}") from None
        before = tor_exits_replace(exits=exits, source=path)
        self.stdout.write(
            f"Loaded {len(exits)} Tor exit addresses from {path} (replacing {before})."
        )

    def _kept(self) -> str:
        count, loaded_at = tor_exits_loaded()
        if loaded_at is None:
            return "No Tor exit list is loaded."
        return f"The list loaded at {loaded_at:%Y-%m-%d %H:%M} UTC ({count} addresses) stays."
