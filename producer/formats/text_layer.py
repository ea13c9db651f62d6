"""The invisible text layer of a searchable PDF, in a font every reader can map back to Unicode.

As Tesseract and OCRmyPDF do it: one embedded "glyphless" TrueType font whose only glyph is
blank, written as a Type 0 (CID) font. Each distinct character of the document gets a 2-byte
code; the font's ``CIDToGIDMap`` sends every code to the blank glyph and its ``ToUnicode``
CMap sends every code back to its character, so pdftotext (poppler), PDFium and pdf.js
extract exactly the OCR text, whatever the script (Latin, symbols, CJK, beyond the BMP).
Each line is drawn in text render mode 3 (invisible) along its box, each word (with the space
after it) horizontally scaled over the word's box as the recogniser placed it.
"""

from __future__ import annotations

import functools
import io
import math
from collections.abc import Iterable

import pikepdf
from fontTools.fontBuilder import FontBuilder
from fontTools.pens.ttGlyphPen import TTGlyphPen

from producer.formats.content_edit import drop_invisible_text
from producer.formats.layout import PageOutput, line_box, line_words

FONT_NAME = "GlyphLessFont"
ADVANCE = 500  # every code's width, in 1/1000 em: the line's text is then scaled to its box



@functools.cache
def glyphless_font() -> bytes:
    """A TrueType font of two glyphs half an em wide: an empty ``.notdef`` and ``blank``."""
    units = 1000
    builder = FontBuilder(units, isTTF=True)
    builder.setupGlyphOrder([".notdef", "blank"])
    builder.setupCharacterMap({0x20: "blank"})
    empty = {".notdef": _empty_glyph(), "blank": _box_glyph()}
    builder.setupGlyf(empty)
    builder.setupHorizontalMetrics({name: (ADVANCE, 0) for name in empty})
    builder.setupHorizontalHeader(ascent=units, descent=0)
    builder.setupNameTable({"familyName": FONT_NAME, "styleName": "Regular"})
    builder.setupOS2(sTypoAscender=units, sTypoDescender=0, usWinAscent=units, usWinDescent=0)
    builder.setupPost()
    out = io.BytesIO()
    builder.save(out)
    return out.getvalue()


def _empty_glyph():
    return TTGlyphPen(None).glyph()


def _box_glyph():
    """A box as wide as the advance and as tall as a capital: never painted (the layer is
    drawn in render mode 3), but it gives every character a box, which readers need to
    select and extract text drawn turned (PDFium drops characters of zero height there)."""
    pen = TTGlyphPen(None)
    for point in ((0, 0), (0, 700), (ADVANCE, 700), (ADVANCE, 0)):
        (pen.moveTo if point == (0, 0) else pen.lineTo)(point)
    pen.closePath()
    return pen.glyph()


class CodeTable:
    """The document's characters and their 2-byte codes (1, 2, ...; 0 is unused)."""

    def __init__(self, texts: Iterable[str]) -> None:
        characters = sorted({char for text in texts for char in text})
        if len(characters) > 0xFFFE:
            raise ValueError("more distinct characters than 2-byte codes")
        self.codes = {char: index + 1 for index, char in enumerate(characters)}

    def encode(self, text: str) -> bytes:
        return b"".join(self.codes[char].to_bytes(2, "big") for char in text)

    def to_unicode(self) -> bytes:
        """A ToUnicode CMap: each code to its character (UTF-16BE, surrogates beyond the BMP)."""
        entries = [f"<{code:04X}> <{char.encode('utf-16-be').hex().upper()}>" for char, code in self.codes.items()]
        chunks = [entries[i:i + 100] for i in range(0, len(entries), 100)]  # at most 100 per block
        body = "".join(f"{len(chunk)} beginbfchar\n" + "\n".join(chunk) + "\nendbfchar\n" for chunk in chunks)
        return ("/CIDInit /ProcSet findresource begin\n12 dict begin\nbegincmap\n"
                "/CIDSystemInfo << /Registry (Adobe) /Ordering (UCS) /Supplement 0 >> def\n"
                "/CMapName /Adobe-Identity-UCS def\n/CMapType 2 def\n"
                "1 begincodespacerange\n<0000> <FFFF>\nendcodespacerange\n" + body +
                "endcmap\nCMapName currentdict /CMap defineresource pop\nend\nend\n").encode("ascii")

    def cid_to_gid(self) -> bytes:
        """Every code (CID) to glyph 1, the blank one; CID 0 to ``.notdef``."""
        return b"\x00\x00" + b"\x00\x01" * len(self.codes)


def font_object(pdf: pikepdf.Pdf, table: CodeTable) -> pikepdf.Object:
    """The Type 0 font of the text layer, added to ``pdf`` (one per document)."""
    descriptor = pdf.make_indirect(pikepdf.Dictionary(
        Type=pikepdf.Name.FontDescriptor, FontName=pikepdf.Name("/" + FONT_NAME), Flags=5,
        FontBBox=[0, 0, ADVANCE, 1000], ItalicAngle=0, Ascent=1000, Descent=0, CapHeight=1000, StemV=80,
        FontFile2=pdf.make_stream(glyphless_font())))
    descendant = pdf.make_indirect(pikepdf.Dictionary(
        Type=pikepdf.Name.Font, Subtype=pikepdf.Name.CIDFontType2, BaseFont=pikepdf.Name("/" + FONT_NAME),
        CIDSystemInfo=pikepdf.Dictionary(Registry="Adobe", Ordering="Identity", Supplement=0),
        FontDescriptor=descriptor, DW=ADVANCE, CIDToGIDMap=pdf.make_stream(table.cid_to_gid())))
    return pdf.make_indirect(pikepdf.Dictionary(
        Type=pikepdf.Name.Font, Subtype=pikepdf.Name.Type0, BaseFont=pikepdf.Name("/" + FONT_NAME),
        Encoding=pikepdf.Name("/Identity-H"), DescendantFonts=[descendant],
        ToUnicode=pdf.make_stream(table.to_unicode())))


def line_texts(page: PageOutput) -> list[str]:
    """What the layer writes for each of a page's lines: its text and a trailing space, which
    separates lines in extracted text (and keeps a one-character line extractable)."""
    return [line.text.strip() + " " for line in page.lines]


def page_operators(page: PageOutput, table: CodeTable, shown: tuple[float, float], font: str) -> bytes:
    """The operators drawing ``page``'s lines invisibly over a page shown ``shown`` points wide
    and high (as a reader displays it, rotation applied; the scan or rendering fills it, its
    pixels ``page.size``), in coordinates whose origin is the shown page's lower left. Each
    line runs along its quad (corners clockwise from where its text starts), so a skewed or
    turned line's text lies where it is printed and in its direction."""
    width, height = page.size
    sx, sy = shown[0] / max(width, 1), shown[1] / max(height, 1)
    ops = [b"BT", b"3 Tr 0 Tc 0 Tw 0 Ts"]
    for line, text in zip(page.lines, line_texts(page)):
        start, end, left = _shown_corners(line, (width, height), (sx, sy), shown[1])
        dx, dy = end[0] - start[0], end[1] - start[1]
        length = max(math.hypot(dx, dy), 0.5)
        cos, sin = dx / length, dy / length
        thickness = max(abs((start[0] - left[0]) * sin - (start[1] - left[1]) * cos), 1.0)
        size = max(thickness * 0.8, 1.0)
        x, y = left[0] - sin * thickness * 0.2, left[1] + cos * thickness * 0.2  # baseline above the bottom
        ops.append(f"{font} {size:.2f} Tf".encode())
        for piece, (a, b) in _pieces(line, text, (width, height)):
            scale = 100.0 * (b - a) * length / (max(len(piece.rstrip()), 1) * size * ADVANCE / 1000)
            px, py = x + a * length * cos, y + a * length * sin
            ops.append(f"{scale:.2f} Tz {cos:.5f} {sin:.5f} {-sin:.5f} {cos:.5f} {px:.2f} {py:.2f} Tm".encode())
            ops.append(b"<" + table.encode(piece).hex().upper().encode() + b"> Tj")
    ops.append(b"ET")
    return b"\n".join(ops) + b"\n"


def _pieces(line, text: str, size: tuple[int, int]) -> list[tuple[str, tuple[float, float]]]:
    """What to draw of a line and where: each word with its following space, its characters
    over the word's part (fractions of the line's top edge) as the recogniser placed it; the
    whole ``text`` over the whole line where its words were estimated or do not run along
    that edge (a tall line read down its height)."""
    whole = [(text, (0.0, 1.0))]
    placed = line_words(line, *size)
    if not line.words or len(line.box) < 4 or " ".join(w.text for w in placed) + " " != text:
        return whole
    (x0, y0), (x1, y1) = (float(v) for v in line.box[0]), (float(v) for v in line.box[1])
    dx, dy = x1 - x0, y1 - y0
    norm = dx * dx + dy * dy
    if norm <= 0:
        return whole
    spans = []
    for word in placed:
        (a, b) = ((float(p[0]) - x0) * dx + (float(p[1]) - y0) * dy for p in word.quad[:2])
        spans.append((a / norm, b / norm))
    if any(b <= a for a, b in spans) or any(b0 > a1 for (_, b0), (a1, _) in zip(spans, spans[1:])):
        return whole
    return [(word.text + " ", span) for word, span in zip(placed, spans)]


def _shown_corners(line, size: tuple[int, int], scale: tuple[float, float], shown_height: float):
    """A line's top-left, top-right and bottom-left corners in shown points (y up), clipped to
    the page; its axis-aligned box's where the quad is degenerate."""
    points = [(float(x), float(y)) for x, y in line.box][:4]
    if len(points) < 4:
        box = line_box(line, *size)
        points = [(box.x0, box.y0), (box.x1, box.y0), (box.x1, box.y1), (box.x0, box.y1)]
    width, height = size
    tl, tr, _, bl = ((min(max(x, 0.0), width) * scale[0], shown_height - min(max(y, 0.0), height) * scale[1])
                     for x, y in points)
    return tl, tr, bl


def inherited(page: pikepdf.Dictionary, key: str):
    """A page attribute, from the page or the nearest page tree node above it that has it."""
    node, depth = page, 0
    while node is not None and depth < 64:
        if key in node:
            return node[key]
        node, depth = node.get("/Parent"), depth + 1
    return None


def shown_frame(page: pikepdf.Dictionary) -> tuple[tuple[float, float], list[float]]:
    """The shown size of a page (its crop box, turned by /Rotate) and the matrix from shown
    coordinates (origin lower left of what a reader displays) to the page's user space."""
    box = inherited(page, "/CropBox") or inherited(page, "/MediaBox") or [0, 0, 612, 792]
    x0, y0, x1, y1 = (float(v) for v in box)
    x0, x1, y0, y1 = min(x0, x1), max(x0, x1), min(y0, y1), max(y0, y1)
    w, h = x1 - x0, y1 - y0
    try:  # as PDFium reads it: whole quarter turns
        rotate = int(float(inherited(page, "/Rotate") or 0) / 90) % 4 * 90
    except (TypeError, ValueError):
        rotate = 0
    if rotate == 90:
        return (h, w), [0, 1, -1, 0, x0 + w, y0]
    if rotate == 180:
        return (w, h), [-1, 0, 0, -1, x0 + w, y0 + h]
    if rotate == 270:
        return (h, w), [0, -1, 1, 0, x0, y0 + h]
    return (w, h), [1, 0, 0, 1, x0, y0]


def add_text_layers(pdf: pikepdf.Pdf, pages: list[PageOutput], grafted: bool = False) -> None:
    """Draw each of ``pages``' text invisibly on the matching page of ``pdf`` (same order),
    before what the page shows (invisible text needs no place on top; drawn first, in its own
    q/Q, no state the page's content leaves and no damage in it, such as an unclosed string,
    can move or swallow it), placed by the page's crop box and rotation as PDFium renders it. ``grafted``: ``pdf`` is the original
    document: a page OCRed again loses its earlier invisible layer first
    (``producer.formats.content_edit``), a page that kept its own text
    (``producer.text_pages``) is left as it is. Otherwise (pages of scans or renderings) every
    page gets its text."""
    if len(pdf.pages) != len(pages):
        raise ValueError(f"the PDF has {len(pdf.pages)} pages, its OCR {len(pages)}")
    drawn = [not (grafted and page.result.get("source") == "text_layer") for page in pages]
    table = CodeTable(text for page, draw in zip(pages, drawn) if draw for text in line_texts(page))
    font = font_object(pdf, table)
    for target, page, draw in zip(pdf.pages, pages, drawn):
        if not draw:  # kept its own text: nothing to add
            continue
        if grafted:
            drop_invisible_text(pdf, target)  # an earlier OCR layer would read twice
        if not page.lines:
            continue
        if "/Resources" not in target.obj:  # inherited: made the page's own before adding to it
            target.obj.Resources = pikepdf.Dictionary(inherited(target.obj, "/Resources") or {})
        name = target.add_resource(font, pikepdf.Name.Font, prefix="BatchocrText")
        shown, matrix = shown_frame(target.obj)
        cm = " ".join(f"{value:g}" for value in matrix).encode() + b" cm\n"
        layer = b"q\n" + cm + page_operators(page, table, shown, str(name)) + b"Q\n"
        target.contents_add(pdf.make_stream(layer), prepend=True)
