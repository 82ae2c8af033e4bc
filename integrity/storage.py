"""The copy of every seal outside the database: one file per seal in the archive storage."""

from __future__ import annotations

import base64
import json
from typing import Any

from django.core.files.base import ContentFile
from django.core.files.storage import Storage, storages

from .models import Seal

FOLDER = "integrity"


def seal_storage() -> Storage:
    return storages["archives"]


def folder_of(organization_id: int) -> str:
    # By id, not slug: a slug can change and be reused, a seal's place must not.
    return f"{FOLDER}/org-{organization_id}"


def name_of(organization_id: int, sequence: int) -> str:
    return f"{folder_of(organization_id)}/seal-{sequence:010d}.json"


def seal_file_body(seal: Seal) -> bytes:
    return json.dumps(
        {
            "header": seal.header,
            "signature": seal.signature,
            "key_id": seal.key_id,
            "entries": base64.b64encode(bytes(seal.entries)).decode(),
        },
        sort_keys=True,
    ).encode()


def seal_file_write(seal: Seal) -> str:
    """Write the seal's file, replacing one a rolled-back sealer left under its name."""
    storage = seal_storage()
    name = name_of(seal.organization_id, seal.sequence)
    if storage.exists(name):
        storage.delete(name)
    saved = storage.save(name, ContentFile(seal_file_body(seal)))
    if saved != name:
        raise OSError(f"the archive storage saved the seal as {saved!r}, not {name!r}")
    return saved


def seal_file_read(name: str) -> dict[str, Any] | None:
    """The seal file's fields, or None when the storage has no such file."""
    storage = seal_storage()
    if not storage.exists(name):
        return None
    with storage.open(name, "rb") as file:
        data: dict[str, Any] = json.loads(file.read())
    return data


def seal_sequences_stored(organization_id: int) -> list[int]:
    """The sequence numbers of the organization's seal files in the storage."""
    storage = seal_storage()
    try:
        _, files = storage.listdir(folder_of(organization_id))
    except FileNotFoundError:
        return []
    found = []
    for name in files:
        if name.startswith("seal-") and name.endswith(".json"):
            try:
                found.append(int(name[5:-5]))
            except ValueError:
                continue
    return sorted(found)
