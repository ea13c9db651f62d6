"""Searchable PDF output: each scan as a page image with an invisible text layer.

ReportLab lays out the pages, each scan filling its page at the scan's DPI (JPEG data as it
is, other images losslessly); ``producer.formats.text_layer`` then draws the OCR text over
each page in an embedded glyphless font with a ToUnicode map, so every reader extracts the
text as it was read.
"""

from __future__ import annotations

import base64
import datetime
import importlib.metadata
import io
from collections.abc import Iterable

import pikepdf
from reportlab.lib.utils import ImageReader
from reportlab.pdfgen import canvas

from producer.formats.layout import PageOutput
from producer.formats.pdfa import make_pdfa, pdfa_metadata
from producer.formats.text_layer import add_text_layers


def producer_name() -> str:
    """``batchocr <version>``: the Producer and Creator of every PDF written."""
    try:
        return f"batchocr {importlib.metadata.version('batchocr')}"
    except importlib.metadata.PackageNotFoundError:
        return "batchocr"


def _scans(pages: list[PageOutput], images: Iterable[bytes]) -> bytes:
    """A PDF of the scans alone, one page each, sized from their pixels and DPI."""
    out = io.BytesIO()
    pdf = canvas.Canvas(out, pageCompression=1, invariant=1)
    for page, image in zip(pages, images):
        width, height = page.size
        scale = 72.0 / page.dpi
        pdf.setPageSize((width * scale, height * scale))
        pdf.drawImage(ImageReader(io.BytesIO(image)), 0, 0, width * scale, height * scale)
        pdf.showPage()
    pdf.save()
    return out.getvalue()


def render(name: str, pages: list[PageOutput], images: Iterable[bytes],
           now: datetime.datetime | None = None, pdfa: bool = False) -> bytes:
    """A PDF of ``pages`` (their scans in ``images``, same order) with invisible text, titled
    ``name``, made by ``batchocr <version>`` at ``now`` (default: the current time); PDF/A-2b
    with ``pdfa`` (``producer.formats.pdfa``)."""
    pdf = pikepdf.open(io.BytesIO(_scans(pages, images)))
    for target in pdf.pages:
        for image in target.Resources.get(pikepdf.Name.XObject, {}).values():
            _without_ascii85(image)
    add_text_layers(pdf, pages)
    for key in ("/Author", "/Subject", "/Keywords"):  # ReportLab's placeholders
        if key in pdf.docinfo:
            del pdf.docinfo[key]
    if pdfa:
        make_pdfa(pdf)
    del pdf.trailer.ID  # ReportLab's invariant mode gives every document the same one; qpdf makes a new one
    return _saved(pdf, name, now, created=True, pdfa=pdfa)


def graft(name: str, pages: list[PageOutput], original: bytes, now: datetime.datetime | None = None) -> bytes:
    """The ``original`` PDF (``pages`` OCRed from its pages, same order) kept as it is (vector
    text, images, sizes, annotations) with the invisible text layer added to each page; its
    own metadata kept, Title ``name`` where it had none, Producer ``batchocr <version>``. The
    file is rewritten: an owner password's restrictions and any digital signature do not carry
    over (README)."""
    pdf = pikepdf.open(io.BytesIO(original))
    add_text_layers(pdf, pages, grafted=True)
    return _saved(pdf, str(pdf.docinfo.get("/Title") or name), now, created="/CreationDate" not in pdf.docinfo,
                  streams=pikepdf.ObjectStreamMode.preserve)  # e.g. PDF/A-1 forbids object streams


def _saved(pdf: pikepdf.Pdf, title: str, now: datetime.datetime | None, created: bool, pdfa: bool = False,
           streams: pikepdf.ObjectStreamMode = pikepdf.ObjectStreamMode.generate) -> bytes:
    """``pdf`` with its Title, Producer, dates (document info and XMP kept in step), saved."""
    stamp = (now or datetime.datetime.now(datetime.timezone.utc)).astimezone().replace(microsecond=0)
    with pdf.open_metadata(set_pikepdf_as_editor=False) as meta:
        if pdfa:
            pdfa_metadata(meta)
        meta["dc:title"] = title
        meta["pdf:Producer"] = producer_name()
        meta["xmp:ModifyDate"] = stamp.isoformat()
        if created:
            meta["xmp:CreatorTool"] = producer_name()
            meta["xmp:CreateDate"] = stamp.isoformat()
    pdf.docinfo.Title = title
    pdf.docinfo.Producer = producer_name()
    pdf.docinfo.ModDate = pikepdf.String(_pdf_date(stamp))
    if created:
        pdf.docinfo.Creator = producer_name()
        pdf.docinfo.CreationDate = pikepdf.String(_pdf_date(stamp))
    out = io.BytesIO()
    pdf.save(out, compress_streams=True, object_stream_mode=streams)
    return out.getvalue()


def _without_ascii85(image: pikepdf.Object) -> None:
    """ReportLab writes image data as ASCII85 text (a quarter larger): store it binary, with
    its other filters (the JPEG's DCTDecode, a lossless image's FlateDecode) as they were."""
    filters = image.get(pikepdf.Name.Filter)
    if not isinstance(filters, pikepdf.Array) or len(filters) < 2 or filters[0] != pikepdf.Name.ASCII85Decode:
        return
    data = base64.a85decode(image.read_raw_bytes(), adobe=True)
    rest = list(filters)[1:]
    parms = image.get(pikepdf.Name.DecodeParms)
    image.write(data, filter=rest[0] if len(rest) == 1 else pikepdf.Array(rest),
                decode_parms=None if parms is None else (list(parms)[1:] if isinstance(parms, pikepdf.Array) else parms))


def _pdf_date(stamp: datetime.datetime) -> str:
    """A PDF date string, ``D:YYYYMMDDHHmmSS+HH'mm'``."""
    offset = stamp.utcoffset() or datetime.timedelta(0)
    minutes = int(offset.total_seconds() // 60)
    sign = "+" if minutes >= 0 else "-"
    return stamp.strftime("D:%Y%m%d%H%M%S") + f"{sign}{abs(minutes) // 60:02d}'{abs(minutes) % 60:02d}'"
