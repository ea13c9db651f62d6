"""PDF pages that already carry text: born-digital pages, and pages OCRed before.

``--text-layer`` decides, page by page, as OCRmyPDF's ``--skip-text`` / ``--redo-ocr`` /
``--force-ocr`` do:

- ``skip`` (default): a page with any text keeps it and is not OCRed; its text (lines and
  boxes, read with PDFium) goes to every output as if it had been read.
- ``redo``: a page whose only text is invisible (render mode 3: an earlier OCR layer) is OCRed
  again, and that old layer is dropped from the searchable PDF; visible text is kept as in
  ``skip``.
- ``force``: every page is rasterized and OCRed; the searchable PDF is made of the rasterized
  pages, as OCRmyPDF's ``--force-ocr`` does (no text is left twice).

Each page's JSON says which way it went (``source``: ``text_layer`` or ``ocr``).
"""

from __future__ import annotations

import ctypes
import math

import pypdfium2
import pypdfium2.raw as pdfium_c

from producer.formats.content_edit import INVISIBLE

POLICIES = ("skip", "redo", "force")
# PDFium's marks for a hyphen that ends a line (a soft hyphen it may join lines over).
HYPHENS = str.maketrans({"\x02": "-", "\ufffe": "-"})


def text_characters(textpage: pypdfium2.PdfTextPage) -> tuple[int, int]:
    """The page's non-blank characters drawn visibly and invisibly (render mode 3)."""
    visible = invisible = 0
    for index in range(textpage.count_chars()):
        if chr(pdfium_c.FPDFText_GetUnicode(textpage.raw, index) or 32).isspace():
            continue
        textobj = textpage.get_textobj(index)
        if textobj is not None and pdfium_c.FPDFTextObj_GetTextRenderMode(textobj.raw) == INVISIBLE:
            invisible += 1
        else:
            visible += 1
    return visible, invisible


def should_ocr(policy: str, visible: int, invisible: int) -> bool:
    """Whether a page with these characters is OCRed under ``policy``."""
    if policy == "force":
        return True
    if policy == "redo":
        return visible == 0
    return visible == 0 and invisible == 0


def layer_document(page: pypdfium2.PdfPage, dpi: float) -> dict:
    """A page's own text as a result document: one line per line of PDFium's text (its line
    breaks), with its box in the pixels of the page rendered at ``dpi`` (what an OCRed page's
    boxes are in). Lines are built from characters, not from PDFium's rectangles: text placed
    word by word (OCR text layers, ours among them) makes a rectangle per word, and reading a
    rectangle's area back picks up the neighbours' overlapping first glyphs."""
    scale = dpi / 72.0
    width, height = math.ceil(page.get_width() * scale), math.ceil(page.get_height() * scale)
    lines = []
    for text, (left, bottom, right, top) in _text_lines(page.get_textpage()):
        corners = [_to_pixels(page, width, height, x, y) for x, y in ((left, top), (right, top), (right, bottom),
                                                                       (left, bottom))]
        xs, ys = [x for x, _ in corners], [y for _, y in corners]
        box = [[min(xs), min(ys)], [max(xs), min(ys)], [max(xs), max(ys)], [min(xs), max(ys)]]
        lines.append({"text": text, "confidence": 1.0, "box": box})
    return {"text": "\n".join(line["text"] for line in lines), "lines": lines, "blocks": [], "width": width,
            "height": height, "mode": "page", "source": "text_layer"}


def _text_lines(textpage: pypdfium2.PdfTextPage) -> list[tuple[str, tuple[float, float, float, float]]]:
    """(text, (left, bottom, right, top) in PDF points) per line: the page's characters in
    PDFium's order, split at its line breaks, each line boxed around its visible characters
    (a line's text is read as one range, so characters beyond the BMP stay whole)."""
    lines, boxes, start, count = [], [], 0, textpage.count_chars()
    for index in range(count + 1):
        char = textpage.get_text_range(index, 1) if index < count else "\n"
        if char not in ("\r", "\n"):
            if char.strip():
                boxes.append(textpage.get_charbox(index))
            continue
        text = printable(textpage.get_text_range(start, index - start)) if index > start else ""
        if text and boxes:
            lines.append((text, (min(b[0] for b in boxes), min(b[1] for b in boxes),
                                 max(b[2] for b in boxes), max(b[3] for b in boxes))))
        boxes, start = [], index + 1
    return lines


def printable(text: str) -> str:
    """A text run as it reads: PDFium's line-end hyphen marks back to hyphens, and characters
    XML cannot hold (C0 controls, U+FFFE/FFFF, lone surrogates) dropped, whitespace collapsed."""
    text = text.translate(HYPHENS)
    kept = "".join(c for c in text if c in "\t\n\r" or not (ord(c) < 32 or c in "\ufffe\uffff"
                                                           or 0xD800 <= ord(c) <= 0xDFFF))
    return " ".join(kept.split())


def _to_pixels(page: pypdfium2.PdfPage, width: int, height: int, x: float, y: float) -> tuple[int, int]:
    """A user-space point in the pixels of the page rendered ``width`` x ``height`` (PDFium's own
    mapping: crop box and /Rotate applied as when it renders)."""
    device_x, device_y = ctypes.c_int(), ctypes.c_int()
    pdfium_c.FPDF_PageToDevice(page.raw, 0, 0, width, height, 0, x, y, device_x, device_y)
    return min(max(device_x.value, 0), width), min(max(device_y.value, 0), height)
