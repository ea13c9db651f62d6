"""Searchable PDF output: each scan as a page image with an invisible text layer on top.

Each line is written in text render mode 3 (invisible) at its box, horizontally scaled to the
box's width, so selecting, searching and copying text works in any PDF viewer. Latin text uses
Helvetica; anything outside Windows-1252 (e.g. Chinese) uses the built-in Adobe CJK font
STSong-Light, which PDF readers map back to Unicode without embedding a font file.
"""

from __future__ import annotations

import io
from collections.abc import Iterable

from reportlab.lib.utils import ImageReader
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.cidfonts import UnicodeCIDFont
from reportlab.pdfgen import canvas

from producer.formats.layout import PageOutput, line_box

LATIN = "Helvetica"
CJK = "STSong-Light"


def _font(text: str) -> str:
    try:
        text.encode("cp1252")
        return LATIN
    except UnicodeEncodeError:
        if CJK not in pdfmetrics.getRegisteredFontNames():
            pdfmetrics.registerFont(UnicodeCIDFont(CJK))
        return CJK


def _text_layer(pdf: canvas.Canvas, page: PageOutput, scale: float, page_height: float) -> None:
    width, height = page.size
    for line in page.lines:
        box = line_box(line, width, height)
        # The trailing space separates lines in extracted text; it also keeps a one-character
        # CJK line readable (PDFium extracts nothing from a lone 2-byte CID string).
        text = line.text.strip() + " "
        font = _font(text)
        size = max(box.height * scale * 0.8, 1.0)
        natural = pdfmetrics.stringWidth(text, font, size)
        layer = pdf.beginText()
        layer.setTextRenderMode(3)
        layer.setFont(font, size)
        if natural > 0:
            layer.setHorizScale(100.0 * box.width * scale / natural)
        layer.setTextOrigin(box.x0 * scale, page_height - box.y1 * scale + box.height * scale * 0.2)
        layer.textOut(text)
        pdf.drawText(layer)


def render(name: str, pages: list[PageOutput], images: Iterable[bytes]) -> bytes:
    """A PDF of ``pages`` (their scans in ``images``, same order) with invisible text."""
    out = io.BytesIO()
    pdf = canvas.Canvas(out, pageCompression=1, invariant=1)
    pdf.setTitle(name)
    pdf.setCreator("batchocr")
    for page, image in zip(pages, images):
        width, height = page.size
        scale = 72.0 / page.dpi
        page_width, page_height = width * scale, height * scale
        pdf.setPageSize((page_width, page_height))
        pdf.drawImage(ImageReader(io.BytesIO(image)), 0, 0, page_width, page_height)
        _text_layer(pdf, page, scale, page_height)
        pdf.showPage()
    pdf.save()
    return out.getvalue()
