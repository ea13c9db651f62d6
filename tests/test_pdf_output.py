"""The searchable PDF: its text layer extracts exactly in independent readers (poppler's
pdftotext and PDFium), scans are embedded as they are, and the metadata is batchocr's."""

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


def test_poppler_extracts_every_character(searchable):
    """The defect this layer replaced: a non-embedded CJK font without ToUnicode, from which
    poppler dropped −, ², µ and Polish letters."""
    text = subprocess.run(["pdftotext", "-enc", "UTF-8", str(searchable), "-"], capture_output=True, text=True,
                          check=True, timeout=60).stdout
    assert compact(text) == ["".join(line.split()) for line in LINES]


def test_the_layer_is_one_embedded_glyphless_font_with_a_unicode_map(searchable):
    document = pikepdf.open(searchable)
    fonts = document.pages[0].Resources.Font
    assert len(fonts) == 1
    (font,) = fonts.values()
    assert font.Subtype == "/Type0" and font.Encoding == "/Identity-H" and "/ToUnicode" in font
    descendant = font.DescendantFonts[0]
    assert "/FontFile2" in descendant.FontDescriptor and "/CIDToGIDMap" in descendant
    assert b"3 Tr" in document.pages[0].Contents[-1].read_bytes()  # invisible


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
