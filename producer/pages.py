"""The pages of a document, as the image bytes (or S3 reference) one job OCRs.

Plain images go as they are; TIFF frames and PDF pages (rendered with PDFium at ``dpi``) are
encoded as PNG. Each page carries a content id (the SHA-256 of the file, plus page number and
DPI for TIFF and PDF; the ETag for an S3 object), from which the job id is derived: the same page
with the same options is always the same job, so a re-run finds its earlier jobs.
"""

from __future__ import annotations

import hashlib
import io
import json
import math
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, fields
from pathlib import Path

from PIL import Image, ImageSequence

from shared.errors import ImageTooLargeError, InputError
from shared.s3 import ObjectStore, S3Uri
from shared.settings import Settings
from producer.sources import Document

# Fixed namespace for job ids: uuid5(NAMESPACE, content id + options).
NAMESPACE = uuid.UUID("7f1d2a4e-5b0c-4f3e-9a61-0c2b8e4d9f17")
DEFAULT_DPI = 300.0
DEFAULT_MAX_PAGES = 10_000  # a document with more pages fails unsubmitted (``--max-pages``)
# The API's default OCR_MAX_IMAGE_PIXELS: larger pages are rendered at a lower DPI.
DEFAULT_MAX_PIXELS = next(f.default for f in fields(Settings) if f.name == "max_image_pixels")


@dataclass(frozen=True)
class Page:
    """Page ``number`` (1-based) of a document. ``data`` is None when the worker reads ``uri``.
    ``dpi`` sizes the page of the searchable PDF."""

    number: int
    data: bytes | None
    uri: S3Uri | None
    dpi: float
    content_id: str
    # A PDF page that keeps its own text (``producer.text_pages``): its result document, no job.
    text: dict | None = None

    def job_id(self, options: dict[str, str], tenant: str = "") -> str:
        """Deterministic job id: content hash + canonical options (+ the API key's id). The
        priority is not part of it: a re-run at another priority finds the same jobs."""
        options = {k: v for k, v in options.items() if k != "priority"}
        key = self.content_id + "|" + json.dumps(options, sort_keys=True, separators=(",", ":"))
        if tenant:
            key += "|" + tenant
        return str(uuid.uuid5(NAMESPACE, key))


def read_document(doc: Document, objects: ObjectStore | None, max_bytes: int) -> bytes:
    """The document's bytes, from disk or S3 (at most ``max_bytes`` from S3)."""
    if doc.is_s3:
        if objects is None:
            raise InputError(f"{doc.origin}: no S3 settings")
        return objects.read(S3Uri.parse(doc.origin), max_bytes=max_bytes)
    return Path(doc.origin).read_bytes()


def iter_pages(doc: Document, *, dpi: float, objects: ObjectStore | None, max_bytes: int,
               fetch_s3_images: bool = False, text_layer: str = "skip",
               max_pixels: int = DEFAULT_MAX_PIXELS) -> Iterator[Page]:
    """Pages of ``doc`` in order. S3 images are passed by reference (the worker reads them)
    unless ``fetch_s3_images`` (the PDF writer needs their pixels). PDF pages that carry text
    are OCRed or not as ``text_layer`` says (``producer.text_pages``); a PDF page that would
    render past ``max_pixels`` at ``dpi`` (a poster, a map) renders at the DPI that fits."""
    if doc.kind == "image" and doc.is_s3 and not fetch_s3_images:
        yield Page(1, None, S3Uri.parse(doc.origin), dpi, f"{doc.origin}#{doc.etag}")
        return
    data = read_document(doc, objects, max_bytes)
    if doc.kind == "pdf":
        yield from _pdf_pages(data, dpi, _sha(data), text_layer, max_pixels)
    elif doc.kind == "tiff":
        yield from _tiff_pages(data, dpi, _sha(data))
    else:
        content = f"{doc.origin}#{doc.etag}" if doc.is_s3 else _sha(data)
        yield Page(1, data, None, _image_dpi(data, dpi), content)


def page_count(doc: Document, objects: ObjectStore | None, max_bytes: int, limit: int = DEFAULT_MAX_PAGES) -> int:
    """How many pages ``doc`` has, without rendering them (1 for anything unreadable), counted
    no further than ``limit + 1``: Pillow's cost per TIFF page grows with the pages before it
    (20 MB of one-pixel pages would take minutes)."""
    try:
        if doc.kind == "pdf":
            import pypdfium2

            pdf = pypdfium2.PdfDocument(read_document(doc, objects, max_bytes))
            try:
                return len(pdf)
            finally:
                pdf.close()
        if doc.kind == "tiff":
            with Image.open(io.BytesIO(read_document(doc, objects, max_bytes))) as img:
                return _tiff_page_count(img, limit + 1)
    except Exception:  # the document fails with its reason when its pages are read
        return 1
    return 1


def _tiff_page_count(img: Image.Image, upto: int) -> int:
    """The TIFF's pages, by seeking page to page, stopping at ``upto``."""
    count = 1
    while count < upto:
        try:
            img.seek(count)
        except EOFError:
            break
        count += 1
    return count


def _sha(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def _png(image: Image.Image) -> bytes:
    if image.mode not in ("1", "L", "RGB", "RGBA"):
        image = image.convert("RGB")
    out = io.BytesIO()
    image.save(out, format="PNG", compress_level=3)
    return out.getvalue()


def _image_dpi(data: bytes, default: float) -> float:
    try:
        with Image.open(io.BytesIO(data)) as img:
            dpi = img.info.get("dpi")
            return float(dpi[0]) if dpi and float(dpi[0]) >= 50 else default
    except Exception:
        return default


def _tiff_pages(data: bytes, dpi: float, source_id: str) -> Iterator[Page]:
    with Image.open(io.BytesIO(data)) as img:
        for number, frame in enumerate(ImageSequence.Iterator(img), 1):
            png = _png(frame)
            frame_dpi = frame.info.get("dpi")
            page_dpi = float(frame_dpi[0]) if frame_dpi and float(frame_dpi[0]) >= 50 else dpi
            yield Page(number, png, None, page_dpi, f"{source_id}:page{number}")


def _pdf_pages(data: bytes, dpi: float, source_id: str, text_layer: str, max_pixels: int) -> Iterator[Page]:
    import pypdfium2

    from producer.text_pages import layer_document, should_ocr, text_characters

    pdf = pypdfium2.PdfDocument(data)
    try:
        for index in range(len(pdf)):
            page = pdf[index]
            try:
                page_dpi = fitting_dpi(page.get_size(), dpi, max_pixels)
                content_id = f"{source_id}:page{index + 1}@{page_dpi:g}dpi"
                if text_layer != "force" and not should_ocr(text_layer, *text_characters(page.get_textpage())):
                    yield Page(index + 1, None, None, page_dpi, content_id, text=layer_document(page, page_dpi))
                    continue
                png = _png(page.render(scale=page_dpi / 72.0).to_pil())
            finally:
                page.close()
            yield Page(index + 1, png, None, page_dpi, content_id)
    finally:
        pdf.close()


def fitting_dpi(size_pt: tuple[float, float], dpi: float, max_pixels: int) -> float:
    """``dpi``, or the whole DPI below it at which a page ``size_pt`` points big renders to at
    most ``max_pixels`` pixels (the API refuses larger images: OCR_MAX_IMAGE_PIXELS);
    ImageTooLargeError if not even 1 dpi fits (a page of miles: it is not rendered at all)."""
    width, height = (max(float(v), 1.0) / 72.0 for v in size_pt)  # inches
    if (width * dpi + 1) * (height * dpi + 1) <= max_pixels:
        return dpi
    fit = max(math.floor(math.sqrt(max_pixels / (width * height))) - 1, 1)
    if (width * fit + 1) * (height * fit + 1) > max_pixels:
        raise ImageTooLargeError(f"a page of {size_pt[0]:.0f} x {size_pt[1]:.0f} pt is past {max_pixels} pixels "
                                 "even at 1 dpi: not rendered")
    return float(fit)
