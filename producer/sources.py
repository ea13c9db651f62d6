"""What a bulk run reads: documents from a directory tree, a manifest file or an S3 prefix.

A document is one input file (an image, a multi-page TIFF or a PDF); its pages are what gets
OCRed, one job each. ``Document.name`` is the path the outputs mirror under ``--out``: relative,
POSIX, with no ``..`` or root, so no input can make the producer write outside the output folder.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from shared import images
from shared.errors import BadOptionError
from shared.s3 import SCHEME, ObjectStore, S3Uri

TIFF_SUFFIXES = {".tif", ".tiff"}
# Single-page images; a TIFF may hold many pages, so it is read page by page.
IMAGE_SUFFIXES = set(images.IMAGE_SUFFIXES) - TIFF_SUFFIXES
PDF_SUFFIXES = {".pdf"}
SUFFIXES = IMAGE_SUFFIXES | TIFF_SUFFIXES | PDF_SUFFIXES


@dataclass(frozen=True)
class Document:
    """One input file. ``origin`` is a local path or an ``s3://`` URI; ``etag`` identifies an S3
    object's content without downloading it."""

    name: str
    origin: str
    etag: str = ""

    @property
    def kind(self) -> str:
        suffix = PurePosixPath(self.origin).suffix.lower()
        if suffix in TIFF_SUFFIXES:
            return "tiff"
        if suffix in PDF_SUFFIXES:
            return "pdf"
        return "image"

    @property
    def is_s3(self) -> bool:
        return self.origin.startswith(SCHEME)


def safe_name(raw: str) -> str:
    """A relative POSIX path with every ``..``, ``.``, empty and drive/root part removed."""
    parts = [p for p in PurePosixPath(raw.replace("\\", "/")).parts if p not in ("", ".", "..", "/")]
    parts = [p.replace(":", "_") for p in parts]
    if not parts:
        raise BadOptionError(f"input path {raw!r} names no file")
    return str(PurePosixPath(*parts))


def discover(source: str, objects: ObjectStore | None = None) -> Iterator[Document]:
    """Documents of ``source`` in a stable order: a directory (walked recursively), a manifest
    (a text file: one local path or s3:// URI per line, '#' comments), or an ``s3://`` prefix."""
    if source.startswith(SCHEME):
        yield from _from_s3(source, _need(objects))
        return
    path = Path(source)
    if path.is_dir():
        for file in sorted(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in SUFFIXES):
            yield Document(safe_name(file.relative_to(path).as_posix()), str(file))
    elif path.is_file():
        yield from _from_manifest(path)
    else:
        raise BadOptionError(f"source {source!r} is neither a directory, a manifest file nor an s3:// prefix")


def _from_manifest(manifest: Path) -> Iterator[Document]:
    for number, raw in enumerate(manifest.read_text("utf-8").splitlines(), 1):
        entry = raw.strip()
        if not entry or entry.startswith("#"):
            continue
        if entry.startswith(SCHEME):
            uri = S3Uri.parse(entry)
            yield Document(safe_name(f"{uri.bucket}/{uri.key}"), entry)
            continue
        path = Path(entry) if Path(entry).is_absolute() else manifest.parent / entry
        if path.suffix.lower() not in SUFFIXES:
            raise BadOptionError(f"{manifest}:{number}: {entry!r} is not a png/jpg/bmp/webp/tif/pdf file")
        yield Document(safe_name(entry), str(path))


def _from_s3(prefix: str, objects: ObjectStore) -> Iterator[Document]:
    base = prefix[len(SCHEME):].partition("/")[2]
    for uri, etag in objects.list(prefix):
        if PurePosixPath(uri.key).suffix.lower() in SUFFIXES:
            yield Document(safe_name(uri.key[len(base):] if uri.key.startswith(base) else uri.key), str(uri), etag)


def _need(objects: ObjectStore | None) -> ObjectStore:
    if objects is None:
        raise BadOptionError("an s3:// source needs S3 settings (OCR_S3_*)")
    return objects
