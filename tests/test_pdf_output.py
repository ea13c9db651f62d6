"""The searchable PDF: its text layer extracts exactly in independent readers (poppler's
pdftotext, PDFium and pdf.js), scans are embedded as they are, and the metadata is batchocr's."""

from __future__ import annotations

import datetime
import io
import subprocess

import pikepdf
import pypdfium2
import pytest
from PIL import Image

from producer.formats import pdf
from producer.formats.layout import PageOutput
from producer.formats.text_layer import CodeTable
from tests.helpers import ROOT

LINES = [
    "plain ASCII -5 °C and −5 °C",  # an ASCII hyphen and a Unicode minus
    "Zażółć gęślą jaźń, Łódź",
    "Ærøskøbing: Größe, façade, señor, Dvořák, Şişli",
    "symbols µ ∂ ∇ · ² ³ ½ € ™ → ≤ ≥ ± × ÷",
    "你好世界 2024年 第三章",
    "米",
    "日本語のテキスト、カタカナ",
    "Ελληνικά και Кириллица",
    "beyond the BMP: 𠀀𠀁",
]


def scan_page(texts: list[str], dpi: float = 150.0) -> tuple[PageOutput, bytes]:
    """A white scan with one line box per text, each about as wide as its print would be."""
    height, width = 60 * len(texts) + 20, 1400
    lines = []
    for index, text in enumerate(texts):
        y, w = 10 + 60 * index, min(width - 20, 24 * len(text))
        lines.append({"text": text, "confidence": 0.9, "box": [[10, y], [10 + w, y], [10 + w, y + 44], [10, y + 44]]})
    scan = io.BytesIO()
    Image.new("L", (width, height), 255).save(scan, format="PNG")
    return PageOutput(1, "job", {"width": width, "height": height, "lines": lines}, dpi), scan.getvalue()


def compact(text: str) -> list[str]:
    """A reader's text as its non-blank lines, whitespace removed (readers space words differently)."""
    return [line for line in ("".join(row.split()) for row in text.splitlines()) if line]


@pytest.fixture(scope="module")
def searchable(tmp_path_factory):
    page, scan = scan_page(LINES)
    path = tmp_path_factory.mktemp("pdf") / "page.pdf"
    path.write_bytes(pdf.render("scans/page.png", [page], [scan]))
    return path


def test_pdfium_extracts_every_character(searchable):
    text = pypdfium2.PdfDocument(searchable.read_bytes())[0].get_textpage().get_text_range()
    assert compact(text) == ["".join(line.split()) for line in LINES]


def pdfjs_text(path) -> str:
    """The text pdf.js (from npm, tools/pdfjs) extracts, as a viewer's search and copy see it."""
    return subprocess.run(["node", str(ROOT / "tools" / "pdfjs" / "extract.mjs"), str(path)], capture_output=True,
                          text=True, check=True, timeout=120).stdout


def test_pdfjs_extracts_every_character(searchable):
    assert compact(pdfjs_text(searchable)) == ["".join(line.split()) for line in LINES]


def test_poppler_extracts_every_character(searchable):
    """The defect this layer replaced: a non-embedded CJK font without ToUnicode, from which
    poppler dropped −, ², µ and Polish letters."""
    text = subprocess.run(["pdftotext", "-enc", "UTF-8", str(searchable), "-"], capture_output=True, text=True,
                          check=True, timeout=60).stdout
    assert compact(text) == ["".join(line.split()) for line in LINES]


def test_the_layer_is_one_embedded_glyphless_font_with_a_unicode_map(searchable):
    document = pikepdf.open(searchable)
    (font,) = [font for name, font in document.pages[0].Resources.Font.items() if name.startswith("/BatchocrText")]
    assert font.Subtype == "/Type0" and font.Encoding == "/Identity-H" and "/ToUnicode" in font
    descendant = font.DescendantFonts[0]
    assert "/FontFile2" in descendant.FontDescriptor and "/CIDToGIDMap" in descendant
    assert b"3 Tr" in document.pages[0].Contents[0].read_bytes()  # invisible, drawn first
    shown = pypdfium2.PdfDocument(searchable.read_bytes())[0].render(scale=1).to_pil().convert("L")
    assert shown.getextrema() == (255, 255)  # the scan was white: nothing of the layer shows


def test_codes_map_back_to_characters_beyond_the_bmp():
    table = CodeTable(["a𠀀"])
    assert table.encode("𠀀a") == b"\x00\x02\x00\x01"
    assert b"<0002> <D840DC00>" in table.to_unicode()


def test_a_jpeg_scan_is_embedded_as_it_is_and_a_png_losslessly():
    jpeg = (ROOT / "samples" / "pages" / "quarterly_report.jpg").read_bytes()
    width, height = Image.open(io.BytesIO(jpeg)).size
    page = PageOutput(1, "job", {"width": width, "height": height, "lines": []}, 300.0)
    out = pdf.render("r.jpg", [page], [jpeg])
    document = pikepdf.open(io.BytesIO(out))
    (image,) = document.pages[0].Resources.XObject.values()
    assert image.Filter == "/DCTDecode" and image.read_raw_bytes() == jpeg
    assert len(out) <= 1.05 * len(jpeg)
    page_png, png = scan_page(["x"])
    rendered = pikepdf.open(io.BytesIO(pdf.render("p.png", [page_png], [png])))
    (image,) = rendered.pages[0].Resources.XObject.values()
    pixels = pikepdf.PdfImage(image).as_pil_image()
    assert pixels.tobytes() == Image.open(io.BytesIO(png)).convert(pixels.mode).tobytes()


def test_metadata_names_the_source_batchocr_and_the_real_date(searchable):
    document = pikepdf.open(searchable)
    info = document.docinfo
    assert str(info.Title) == "scans/page.png"
    assert str(info.Producer).startswith("batchocr") and str(info.Creator).startswith("batchocr")
    assert "/Author" not in info
    year = datetime.date.today().year
    assert str(info.CreationDate).startswith(f"D:{year}")


def original_pdf(rotate: int = 0) -> bytes:
    """A born-digital PDF as an office suite writes one: vector text, an embedded JPEG, a link
    annotation; US Letter, optionally shown turned by /Rotate, with a crop box inset."""
    from reportlab.pdfgen import canvas

    out = io.BytesIO()
    page = canvas.Canvas(out, pagesize=(612, 792))
    page.setFont("Helvetica", 14)
    page.drawString(72, 700, "Quarterly report, printed text")
    page.drawImage(str(ROOT / "samples" / "pages" / "quarterly_report.jpg"), 72, 300, 300, 300)
    page.linkURL("https://example.org/", (72, 690, 300, 715))
    page.showPage()
    page.save()
    document = pikepdf.open(io.BytesIO(out.getvalue()))
    document.pages[0].obj.CropBox = [10, 20, 602, 782]
    if rotate:
        document.pages[0].obj.Rotate = rotate
    saved = io.BytesIO()
    document.save(saved)
    return saved.getvalue()


@pytest.mark.parametrize("rotate", [0, 90, 270])
def test_a_pdf_input_keeps_its_pages_and_gains_a_text_layer_where_pdfium_shows_them(rotate):
    source = original_pdf(rotate)
    shown = pypdfium2.PdfDocument(source)[0]
    width, height = (round(v * 300 / 72) for v in shown.get_size())  # as the producer renders it at 300 dpi
    box = [[100, 200], [900, 200], [900, 260], [100, 260]]
    page = PageOutput(1, "job", {"width": width, "height": height,
                                 "lines": [{"text": "OCR line ½ µm", "confidence": 0.9, "box": box}]}, 300.0)
    out = pdf.graft("minutes.pdf", [page], source)
    assert len(out) <= 1.1 * len(source) + 6000  # the text layer and its font: a few KB
    before, after = pikepdf.open(io.BytesIO(source)), pikepdf.open(io.BytesIO(out))
    assert len(after.pages) == 1 and list(after.pages[0].mediabox) == list(before.pages[0].mediabox)
    assert int(after.pages[0].obj.get("/Rotate", 0)) == rotate and "/Annots" in after.pages[0].obj
    assert after.pages[0].Resources.XObject.keys() == before.pages[0].Resources.XObject.keys()
    textpage = pypdfium2.PdfDocument(out)[0].get_textpage()
    text = textpage.get_text_range()
    assert "Quarterly report, printed text" in text and "OCR line ½ µm" in text
    # Where the reader shows the page, the OCR text lies inside the line's box (in points).
    rendered = pypdfium2.PdfDocument(out)[0].render(scale=300 / 72)
    assert rendered.width == width and rendered.height == height
    first = text.index("OCR")
    left, bottom, right, top = textpage.get_charbox(first)
    x, y = _shown_point(after.pages[0].obj, (left + right) / 2, (bottom + top) / 2)
    assert 100 <= x * 300 / 72 <= 900 and 200 <= y * 300 / 72 <= 260


def _shown_point(page, x: float, y: float) -> tuple[float, float]:
    """A user-space point as shown: points from the top left of the displayed crop box."""
    x0, y0, x1, y1 = (float(v) for v in page.CropBox)
    rotate = int(page.get("/Rotate", 0))
    if rotate == 90:
        return y - y0, x - x0
    if rotate == 270:
        return y1 - y, x1 - x
    return x - x0, y1 - y


def test_pdfa_2b_has_what_the_standard_requires():
    """No PDF/A validator installs from PyPI, Debian or npm here (veraPDF is Java, from its own
    site), so the structures PDF/A-2b requires of these files are checked one by one."""
    page, scan = scan_page(LINES[:3])
    jpeg = (ROOT / "samples" / "pages" / "quarterly_report.jpg").read_bytes()
    width, height = Image.open(io.BytesIO(jpeg)).size
    photo = PageOutput(2, "job", {"width": width, "height": height, "lines": []}, 300.0)
    data = pdf.render("scans/a.png", [page, photo], [scan, jpeg], pdfa=True)
    document = pikepdf.open(io.BytesIO(data))
    with document.open_metadata() as meta:
        assert (meta["pdfaid:part"], meta["pdfaid:conformance"]) == ("2", "B")
        assert meta["dc:title"] == "scans/a.png" and meta["pdf:Producer"].startswith("batchocr")
    (intent,) = document.Root.OutputIntents
    assert intent.S == "/GTS_PDFA1" and intent.DestOutputProfile.N == 3
    assert intent.DestOutputProfile.read_bytes()[36:40] == b"acsp"  # an ICC profile
    assert "/Encrypt" not in document.trailer and "/ID" in document.trailer
    for target in document.pages:  # every font named by a page is embedded
        for font in target.Resources.get("/Font", {}).values():
            descendant = font.DescendantFonts[0] if "/DescendantFonts" in font else font
            assert "/FontFile2" in descendant.FontDescriptor
        assert b"/F1" not in b"".join(op for op in [pikepdf.unparse_content_stream(
            pikepdf.parse_content_stream(target))])
    assert pypdfium2.PdfDocument(data)[0].get_textpage().get_text_range().split()[:3] == ["plain", "ASCII", "-5"]


def turned_page(texts: list[str], degrees: float) -> tuple[PageOutput, bytes]:
    """Lines whose text runs at ``degrees`` clockwise in the image (90: top to bottom), each
    quad from where its text starts, as the worker returns lines of a turned or skewed page."""
    import math

    size = 1400
    cos, sin = math.cos(math.radians(degrees)), math.sin(math.radians(degrees))
    lines = []
    for index, text in enumerate(texts):
        length, thick = 24 * len(text), 44
        x, y = (700 - 70 * index, 200) if degrees == 90 else (100, 200 + 90 * index)
        along, down = (cos * length, sin * length), (-sin * thick, cos * thick)
        quad = [[x, y], [x + along[0], y + along[1]], [x + along[0] + down[0], y + along[1] + down[1]],
                [x + down[0], y + down[1]]]
        lines.append({"text": text, "confidence": 0.9, "box": [[round(a), round(b)] for a, b in quad]})
    scan = io.BytesIO()
    Image.new("L", (size, size), 255).save(scan, format="PNG")
    return PageOutput(1, "job", {"width": size, "height": size, "lines": lines}, 150.0), scan.getvalue()


@pytest.mark.parametrize("degrees", [90, 5, -8])
def test_turned_and_skewed_lines_extract_whole_and_in_order(tmp_path, degrees):
    texts = ["the first line of text", "a second line here", "third and final line"]
    page, scan = turned_page(texts, degrees)
    path = tmp_path / "turned.pdf"
    path.write_bytes(pdf.render("turned", [page], [scan]))
    expected = ["".join(t.split()) for t in texts]
    # poppler's reading-order mode follows text at right angles only, and its -raw mode (the
    # content's order) splits vertical text into words: each case read with the mode that keeps it.
    flags = [] if degrees == 90 else ["-raw"]
    poppler = subprocess.run(["pdftotext", *flags, "-enc", "UTF-8", str(path), "-"], capture_output=True, text=True,
                             check=True, timeout=60).stdout
    assert compact(poppler) == expected  # whole lines, in order, each in its direction
    textpage = pypdfium2.PdfDocument(path.read_bytes())[0].get_textpage()
    # PDFium orders lines of vertical text its own way (right to left here): same lines, whole.
    assert sorted(compact(textpage.get_text_range())) == sorted(expected)
    assert "".join(compact(pdfjs_text(path))) == "".join(expected)  # pdf.js: in order, whatever it calls a line


def test_a_damaged_original_still_gets_its_text_layer():
    """Bytes that are no operator, an unclosed text object and string, an odd /Rotate: the
    layer, drawn first, is read; nothing raises."""
    document = pikepdf.open(io.BytesIO(original_pdf()))
    document.pages[0].obj.Contents = document.make_stream(b"BT /F1 12 Tf (kept ) Tj q q 1 0 0 rg \x00\xff junk ((( ")
    document.pages[0].obj.Rotate = 45
    damaged = io.BytesIO()
    document.save(damaged)
    box = [[100, 100], [600, 100], [600, 150], [100, 150]]
    page = PageOutput(1, "job", {"width": 2550, "height": 3300, "source": "ocr",
                                 "lines": [{"text": "OCR text", "confidence": 0.9, "box": box}]}, 300.0)
    out = pdf.graft("damaged.pdf", [page], damaged.getvalue())
    assert "OCR text" in pypdfium2.PdfDocument(out)[0].get_textpage().get_text_range()


def test_a_searchable_pdf_of_ours_reads_back_line_by_line_as_its_own_text_layer(searchable):
    """``--text-layer skip`` keeps a PDF's text as it is. Read from our own layer with words
    where the recogniser placed them (12 px apart), every line comes back whole; by PDFium's
    rectangles it came back a word per line, each with the next word's first letter."""
    from producer.text_pages import layer_document

    def quad(x0, y0, x1, y1):
        return [[x0, y0], [x1, y0], [x1, y1], [x0, y1]]

    placed = [("QUARTERLY", 10, 240), ("REPORT", 252, 420)]
    line = {"text": "QUARTERLY REPORT", "confidence": 0.9, "box": quad(10, 10, 420, 50),
            "words": [{"text": t, "confidence": 0.9, "box": quad(a, 10, b, 50)} for t, a, b in placed]}
    _, scan = scan_page(["x"])
    ours = pdf.render("report.png", [PageOutput(1, "job", {"width": 1400, "height": 80, "lines": [line]}, 150.0)], [scan])
    assert [line["text"] for line in layer_document(pypdfium2.PdfDocument(ours)[0], 150.0)["lines"]] == [line["text"]]
    lines = layer_document(pypdfium2.PdfDocument(searchable.read_bytes())[0], 150.0)["lines"]
    assert [line["text"] for line in lines] == LINES  # characters beyond the BMP stay whole
    tops = [line["box"][0][1] for line in lines]
    assert tops == sorted(tops) and all(b - a > 40 for a, b in zip(tops, tops[1:])), "boxes where the lines are"
