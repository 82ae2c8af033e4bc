"""Files in the archive storage: CSV in the export format, SHA-256 and row count, re-read checks.

Storage is whatever settings.STORAGES["archives"] names: local disk by default, S3-compatible
through django-storages by setting. Nothing here trusts a write until the file has been read
back from the storage and its checksum and row count match.
"""

from __future__ import annotations

import csv
import gzip
import hashlib
import io
import json
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass
from typing import IO, Any

from django.core.files import File
from django.core.files.storage import Storage, storages

from exports.csv import HEADER

CHUNK = 1024 * 1024


class FileCheckFailed(Exception):
    """A stored file is missing, unreadable, or does not hold what was written."""


class FileMissing(FileCheckFailed):
    """The storage has no file of that name."""


def archive_storage() -> Storage:
    return storages["archives"]


@dataclass(frozen=True)
class FileFacts:
    name: str
    sha256: str
    row_count: int
    size: int


def _spool_csv(chunks: Iterable[tuple[bytes, int]], *, compress: bool) -> tuple[IO[bytes], int]:
    """Write the CSV's chunks to a temporary file; returns it and the row count."""
    spool = tempfile.TemporaryFile()  # noqa: SIM115 - handed to the caller, who closes it
    # mtime=0: the same rows always give the same bytes, so the same checksum.
    out: IO[bytes] | gzip.GzipFile = (
        gzip.GzipFile(fileobj=spool, mode="wb", mtime=0) if compress else spool
    )
    row_count = 0
    for data, rows in chunks:
        out.write(data)
        row_count += rows
    if compress:
        out.close()  # writes the gzip trailer; the spool stays open
    spool.seek(0)
    return spool, row_count


def _digest(stream: IO[bytes]) -> tuple[str, int]:
    digest = hashlib.sha256()
    size = 0
    while chunk := stream.read(CHUNK):
        digest.update(chunk)
        size += len(chunk)
    return digest.hexdigest(), size


def _count_rows(stream: IO[bytes], *, compressed: bool) -> int:
    raw: IO[bytes] | gzip.GzipFile = (
        gzip.GzipFile(fileobj=stream, mode="rb") if compressed else stream
    )
    text = io.TextIOWrapper(raw, encoding="utf-8", newline="")
    reader = csv.reader(text)
    header = next(reader, None)
    if header != HEADER:
        raise FileCheckFailed("the file does not start with the export header")
    return sum(1 for _ in reader)


def is_compressed(name: str) -> bool:
    return name.endswith(".gz")


def file_measure(*, name: str, storage: Storage | None = None) -> FileFacts:
    """Read a stored file back and return its SHA-256, size and CSV row count."""
    storage = storage or archive_storage()
    try:
        if not storage.exists(name):
            raise FileMissing(f"{name} is missing from the archive storage")
        with storage.open(name, "rb") as stream:
            sha256, size = _digest(stream)
        with storage.open(name, "rb") as stream:
            rows = _count_rows(stream, compressed=is_compressed(name))
    except FileCheckFailed:
        raise
    except (OSError, EOFError, UnicodeDecodeError, csv.Error, gzip.BadGzipFile) as exc:
        raise FileCheckFailed(f"{name} could not be read back: {exc}") from exc
    return FileFacts(name=name, sha256=sha256, row_count=rows, size=size)


def file_write_csv(
    *,
    name: str,
    chunks: Iterable[tuple[bytes, int]],
    compress: bool,
    storage: Storage | None = None,
) -> FileFacts:
    """Store the CSV's (bytes, rows) chunks (exports.services.csv_chunks) as a file (gzip when
    `compress`), read it back and check it; raises if not.

    On any failure the partial file, if the storage left one, is removed and the error raised.
    """
    storage = storage or archive_storage()
    spool, row_count = _spool_csv(chunks, compress=compress)
    stored_name: str | None = None
    try:
        sha256, size = _digest(spool)
        spool.seek(0)
        try:
            stored_name = storage.save(name, File(spool, name=name))
        except Exception as exc:
            _remove_quietly(storage, name)
            raise FileCheckFailed(f"writing {name} to the archive storage failed: {exc}") from exc
        facts = file_measure(name=stored_name, storage=storage)
        if (facts.sha256, facts.row_count, facts.size) != (sha256, row_count, size):
            raise FileCheckFailed(
                f"{stored_name} read back differently from what was written "
                f"(sha256 {facts.sha256[:12]}… rows {facts.row_count} bytes {facts.size}; "
                f"expected {sha256[:12]}… rows {row_count} bytes {size})"
            )
        return facts
    except FileCheckFailed:
        if stored_name is not None:
            _remove_quietly(storage, stored_name)
        raise
    finally:
        spool.close()


def manifest_write(
    *, name: str, facts: FileFacts, about: dict[str, Any], storage: Storage | None = None
) -> str:
    """Store the JSON manifest of a file next to it and check it reads back; returns its name."""
    storage = storage or archive_storage()
    manifest = {
        "file": facts.name,
        "sha256": facts.sha256,
        "rows": facts.row_count,
        "bytes": facts.size,
        "format": "csv+gzip" if is_compressed(facts.name) else "csv",
        "header": HEADER,
        **about,
    }
    body = json.dumps(manifest, indent=2, sort_keys=True).encode()
    try:
        stored = storage.save(name, File(io.BytesIO(body), name=name))
        with storage.open(stored, "rb") as stream:
            if stream.read() != body:
                raise FileCheckFailed(f"{stored} read back differently from what was written")
    except FileCheckFailed:
        _remove_quietly(storage, name)
        raise
    except Exception as exc:
        _remove_quietly(storage, name)
        raise FileCheckFailed(f"writing the manifest {name} failed: {exc}") from exc
    return stored


def manifest_read(*, name: str, storage: Storage | None = None) -> dict[str, Any]:
    storage = storage or archive_storage()
    if not storage.exists(name):
        raise FileMissing(f"the manifest {name} is missing from the archive storage")
    try:
        with storage.open(name, "rb") as stream:
            manifest: dict[str, Any] = json.loads(stream.read())
    except (OSError, ValueError) as exc:
        raise FileCheckFailed(f"the manifest {name} could not be read: {exc}") from exc
    return manifest


def _remove_quietly(storage: Storage, name: str) -> None:
    try:
        if storage.exists(name):
            storage.delete(name)
    except Exception:  # noqa: S110 - best effort; the caller reports the original error
        pass
