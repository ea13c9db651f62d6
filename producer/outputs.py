"""Writing a document's outputs under ``--out``: mirrored paths, atomic files, resumability.

``<out>/<document name><suffix>``, e.g. ``scans/1901/p3.tif`` -> ``out/scans/1901/p3.tif.alto.xml``
(the input's own suffix stays in the name, so ``a.tif`` and ``a.pdf`` never collide). Each file
is written to a temporary name and renamed, so a killed run leaves whole files or none; a
document counts as done when every requested format exists.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterable
from pathlib import Path

from producer.formats import FORMATS, RENDERERS, pdf
from producer.formats.layout import PageOutput
from shared.errors import BadOptionError


def output_path(out: Path, name: str, fmt: str) -> Path:
    """Where ``fmt`` of document ``name`` goes; refuses any path that resolves outside ``out``."""
    root = out.resolve()
    path = (root / (name + FORMATS[fmt])).resolve()
    if root not in path.parents:
        raise BadOptionError(f"output for {name!r} would escape the output directory")
    return path


def is_complete(out: Path, name: str, formats: Iterable[str]) -> bool:
    return all(output_path(out, name, fmt).is_file() for fmt in formats)


def process_umask() -> int:
    """The process's umask (read from /proc where it can be, so no other thread ever sees it changed)."""
    try:
        for row in Path("/proc/self/status").read_text().splitlines():
            if row.startswith("Umask:"):
                return int(row.split()[1], 8)
    except OSError:
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def write_atomic(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` through a temporary file renamed over it, with the mode a
    plain ``open`` would give (0666 less the umask; ``mkstemp`` alone would leave it 0600)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".batchocr-", suffix=".part")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            os.fchmod(handle.fileno(), 0o666 & ~process_umask())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_document(out: Path, name: str, formats: list[str], pages: list[PageOutput],
                   images: Iterable[bytes], original: bytes | None = None, pdfa: bool = False) -> None:
    """Write every requested format of one document. The searchable PDF of a PDF input is
    ``original`` itself with the text layer added; of anything else, ``images`` (its page
    scans) with the text layer over them, PDF/A-2b with ``pdfa``."""
    shown = display_name(name)
    for fmt in formats:
        if fmt == "pdf" and original is not None:
            data = pdf.graft(shown, pages, original)
        elif fmt == "pdf":
            data = pdf.render(shown, pages, images, pdfa=pdfa)
        else:
            data = RENDERERS[fmt](shown, pages)
        write_atomic(output_path(out, name, fmt), data)


def display_name(name: str) -> str:
    """``name`` as text for inside a document: a file name's bytes that are not UTF-8 (kept by
    ``os.fsdecode`` as lone surrogates, which no UTF-8 writer takes) shown as U+FFFD; the
    output's own path keeps the original bytes."""
    return name.encode("utf-8", "surrogateescape").decode("utf-8", "replace")
