"""Born-digital and already-OCRed PDFs: each page's text layer found, and the --text-layer
policy (skip / redo / force) followed page by page, through the real stack."""

from __future__ import annotations

import io
import json
import subprocess
import sys

import pikepdf
import pypdfium2
import pytest

from ops.launcher import Topology
from producer.formats import pdf
from producer.formats.layout import PageOutput
from producer.formats.content_edit import drop_invisible_text
from producer.pages import iter_pages
from producer.sources import Document
from producer.text_pages import should_ocr, text_characters
from tests.helpers import ROOT, clean_env

SCAN = ROOT / "samples" / "pages" / "quarterly_report.jpg"
PRINTED = "Minutes of the board meeting, 3 March 1921"


def born_digital_page() -> bytes:
    from reportlab.pdfgen import canvas

    out = io.BytesIO()
    page = canvas.Canvas(out, pagesize=(612, 792))
    page.setFont("Helvetica", 16)
    page.drawString(72, 700, PRINTED)
    page.drawString(72, 660, "Present: the chairman and five members")
    page.showPage()
    page.save()
    return out.getvalue()


def scanned_page() -> bytes:
    from PIL import Image

    image = Image.open(SCAN)
    out = io.BytesIO()
    image.save(out, format="PDF", resolution=150.0)
    return out.getvalue()


def ocred_before_page() -> bytes:
    """The scan as an earlier OCR run left it: the image with an invisible text layer."""
    from PIL import Image

    width, height = Image.open(SCAN).size
    lines = [{"text": "OLD LAYER TEXT", "confidence": 0.5, "box": [[50, 50], [400, 50], [400, 90], [50, 90]]}]
    page = PageOutput(1, "old", {"width": width, "height": height, "lines": lines}, 150.0)
    return pdf.render("old", [page], [SCAN.read_bytes()])


def mixed_pdf() -> bytes:
    """Page 1 born-digital, page 2 a scan without text, page 3 a scan OCRed before."""
    merged = pikepdf.new()
    for part in (born_digital_page(), scanned_page(), ocred_before_page()):
        merged.pages.extend(pikepdf.open(io.BytesIO(part)).pages)
    out = io.BytesIO()
    merged.save(out)
    return out.getvalue()


@pytest.fixture(scope="module")
def mixed(tmp_path_factory):
    path = tmp_path_factory.mktemp("mixed") / "in" / "minutes.pdf"
    path.parent.mkdir()
    path.write_bytes(mixed_pdf())
    return path


def test_visible_and_invisible_text_are_told_apart(mixed):
    document = pypdfium2.PdfDocument(str(mixed))
    counts = [text_characters(document[i].get_textpage()) for i in range(3)]
    assert counts[0][0] > 30 and counts[0][1] == 0
    assert counts[1] == (0, 0)
    assert counts[2][0] == 0 and counts[2][1] >= 12
    assert [should_ocr("skip", *c) for c in counts] == [False, True, False]
    assert [should_ocr("redo", *c) for c in counts] == [False, True, True]
    assert [should_ocr("force", *c) for c in counts] == [True, True, True]


def test_a_page_that_keeps_its_text_reads_it_with_boxes_where_it_is_printed(mixed):
    pages = list(iter_pages(Document("minutes.pdf", str(mixed)), dpi=300, objects=None, max_bytes=1 << 26))
    first = pages[0]
    assert first.data is None and first.text["source"] == "text_layer"
    assert first.text["lines"][0]["text"] == PRINTED
    (x0, y0), _, (x1, y1), _ = first.text["lines"][0]["box"]
    assert abs(x0 - 300) < 15 and abs(y1 - (792 - 700) * 300 / 72) < 15  # 72 pt from the left, baseline at 700 pt
    assert x1 > x0 + 900 and first.text["width"] == 2550 and abs(first.text["height"] - 3300) <= 1
    assert pages[1].data is not None and pages[1].text is None


def test_an_earlier_invisible_layer_is_dropped_and_visible_text_stays(mixed):
    document = pikepdf.open(mixed)
    assert drop_invisible_text(document, document.pages[2]) == 1
    assert drop_invisible_text(document, document.pages[0]) == 0
    out = io.BytesIO()
    document.save(out)
    reread = pypdfium2.PdfDocument(out.getvalue())
    assert reread[2].get_textpage().get_text_range().strip() == ""
    assert PRINTED in reread[0].get_textpage().get_text_range()
    saved = pikepdf.open(io.BytesIO(out.getvalue()))
    assert len(saved.pages[2].Resources.XObject) == 1  # the scan stays


def test_each_policy_through_the_real_stack(mixed, tmp_path):
    with Topology(workers=1, env=clean_env(), log_level="WARNING") as topology:
        def run(policy: str, *extra: str) -> tuple[dict, list[dict], str]:
            out = tmp_path / (policy + "".join(extra))
            done = subprocess.run([sys.executable, "-m", "producer.cli", str(mixed.parent), "--out", str(out),
                                   "--api", topology.api_url, "--formats", "json,pdf", "--no-progress",
                                   "--text-layer", policy, *extra], env=clean_env(), capture_output=True, text=True,
                                  timeout=600)
            assert done.returncode == 0, done.stderr
            summary = json.loads((out / "_batchocr" / "summary.json").read_text())
            pages = json.loads((out / "minutes.pdf.json").read_text())["pages"]
            layer = pypdfium2.PdfDocument(str(out / "minutes.pdf.pdf"))
            return summary, pages, [layer[i].get_textpage().get_text_range() for i in range(3)]

        summary, pages, texts = run("skip")
        assert summary["submitted"] == 1 and [p["source"] for p in pages] == ["text_layer", "ocr", "text_layer"]
        assert pages[0]["text"].startswith(PRINTED) and pages[2]["text"] == "OLD LAYER TEXT"
        assert "QUARTERLY" in pages[1]["text"] and "QUARTERLY" in texts[1]
        summary, pages, texts = run("redo")
        assert (summary["submitted"], summary["reused"]) == (1, 1)
        assert [p["source"] for p in pages] == ["text_layer", "ocr", "ocr"]
        assert "OLD LAYER" not in texts[2] and "QUARTERLY" in texts[2] and texts[0].count(PRINTED) == 1
        summary, pages, texts = run("force")
        assert [p["source"] for p in pages] == ["ocr", "ocr", "ocr"]
        assert "board meeting" in pages[0]["text"] and texts[0].count("board meeting") == 1
        rasterized = pypdfium2.PdfDocument(str(tmp_path / "force" / "minutes.pdf.pdf"))
        assert [text_characters(rasterized[i].get_textpage())[0] for i in range(3)] == [0, 0, 0]  # all OCR
        # PDF/A: the pages rasterized, each one's text (its own, or read) in the one invisible layer.
        summary, pages, texts = run("skip", "--pdfa")
        assert summary["submitted"] == 0 and summary["reused"] == 1
        assert PRINTED in texts[0] and "QUARTERLY" in texts[1] and "OLD LAYER TEXT" in texts[2]
        archived = pikepdf.open(tmp_path / "skip--pdfa" / "minutes.pdf.pdf")
        assert "/OutputIntents" in archived.Root and len(archived.pages) == 3


def test_an_ocr_layer_in_a_form_xobject_is_dropped_and_state_around_it_is_kept():
    """OCRmyPDF draws its layer as a Form XObject; a layer drawn inline may set a colour that
    later drawing uses."""
    from producer.formats.content_edit import split

    document = pikepdf.open(io.BytesIO(scanned_page()))
    page = document.pages[0]
    font = document.make_indirect(pikepdf.Dictionary(Type=pikepdf.Name.Font, Subtype=pikepdf.Name.Type1,
                                                      BaseFont=pikepdf.Name.Helvetica))
    form = document.make_stream(b"BT 3 Tr /F1 12 Tf 10 10 Td (OLD FORM LAYER) Tj ET", Type=pikepdf.Name.XObject,
                                Subtype=pikepdf.Name.Form, BBox=[0, 0, 612, 792],
                                Resources=pikepdf.Dictionary(Font=pikepdf.Dictionary(F1=font)))
    page.add_resource(font, pikepdf.Name.Font, pikepdf.Name.F1)
    page.add_resource(form, pikepdf.Name.XObject, pikepdf.Name.OcrLayer)
    page.contents_add(document.make_stream(b"/OcrLayer Do BT 3 Tr 1 0 0 rg /F1 9 Tf (INLINE OLD) Tj ET "
                                           b"0 0 50 50 re f"))
    assert drop_invisible_text(document, page) == 2
    pieces = split(pikepdf.parse_content_stream(page))
    operators = [str(p.operator) for p in pieces if not hasattr(p, "instructions")]
    assert "Do" in operators and "rg" in operators and "Tj" not in operators  # the scan's Do and the red stay
    out = io.BytesIO()
    document.save(out)
    assert pypdfium2.PdfDocument(out.getvalue())[0].get_textpage().get_text_range().strip() == ""


def test_a_line_end_hyphen_reads_as_a_hyphen_and_xml_breaking_characters_go():
    from producer.text_pages import printable

    assert printable("a hyphen\x02") == "a hyphen-" and printable("co\ufffeoperate") == "co-operate"
    assert printable("bell\x07 and\x00 nul\uffff  ok") == "bell and nul ok"
