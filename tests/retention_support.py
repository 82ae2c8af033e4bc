"""Shared pieces of the retention tests: an archive storage per test, faulty storages, events."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import pytest
from django.core.files.base import ContentFile
from django.core.files.storage import FileSystemStorage

from accounts.models import Organization
from audit.models import AuditEvent, EventType
from audit.services import EventSpec, events_record


class StorageDiesMidWrite(FileSystemStorage):
    """A real disk storage that writes part of a file and then fails, like a full disk."""

    def _save(self, name, content):
        path = Path(self.path(name))
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("wb") as partial:
            partial.write(content.read(64))
        raise OSError(28, "No space left on device")


class StorageLosesTheTail(FileSystemStorage):
    """A real disk storage that silently keeps only the first half of what it is given."""

    def _save(self, name, content):
        data = content.read()
        return super()._save(name, ContentFile(data[: len(data) // 2]))


def use_archive_storage(settings, location, backend: str | None = None) -> None:
    settings.STORAGES = {
        **settings.STORAGES,
        "archives": {
            "BACKEND": backend or "django.core.files.storage.FileSystemStorage",
            "OPTIONS": {"location": str(location)},
        },
    }


@pytest.fixture(name="archive_dir", autouse=True)
def archive_dir_fixture(settings, tmp_path):
    """Every retention test writes its archives to its own temporary directory."""
    location = tmp_path / "archives"
    use_archive_storage(settings, location)
    return location


def event_at(
    when: datetime,
    organization: Organization | None,
    event_type: str = EventType.LOGIN_SUCCEEDED,
    **kwargs,
) -> AuditEvent:
    """Record one event that occurred at `when` through the one write path."""
    [event] = events_record(
        specs=[
            EventSpec(
                event_type=event_type,
                organization=organization,
                occurred_at=when,
                actor_label=kwargs.pop("actor_label", "someone@example.test"),
                **kwargs,
            )
        ]
    )
    return event


def remaining(organization: Organization | None) -> set[int]:
    return set(
        AuditEvent.objects.filter(organization=organization)
        .exclude(event_type=EventType.RETENTION_PURGED)
        .values_list("pk", flat=True)
    )
