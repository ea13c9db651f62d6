"""Producer building blocks: safe output paths, sources, deterministic ids, format writers."""

from __future__ import annotations

import pytest

from producer.formats.layout import Box, estimated_words
from producer.outputs import output_path
from producer.pages import iter_pages
from producer.sources import Document, discover, safe_name
from shared.errors import BadOptionError
from tests.helpers import ROOT

LINE = ROOT / "samples" / "lines" / "address.png"


@pytest.mark.parametrize("raw, expected", [
    ("a/b.png", "a/b.png"), ("../../etc/passwd.png", "etc/passwd.png"), ("/abs/x.tif", "abs/x.tif"),
    ("C:\\scans\\y.jpg", "C_/scans/y.jpg"), ("./a/./b/../c.pdf", "a/b/c.pdf"),
])
def test_document_names_never_climb_out(raw, expected):
    assert safe_name(raw) == expected


def test_output_paths_stay_inside_the_output_directory(tmp_path):
    assert output_path(tmp_path, "a/b.png", "hocr") == (tmp_path / "a" / "b.png.hocr").resolve()
    with pytest.raises(BadOptionError):
        output_path(tmp_path, "../x.png", "json")


def test_a_manifest_lists_local_paths_and_s3_uris(tmp_path):
    (tmp_path / "scans").mkdir()
    (tmp_path / "scans" / "one.png").write_bytes(LINE.read_bytes())
    manifest = tmp_path / "list.txt"
    manifest.write_text("# scans\nscans/one.png\n\ns3://archive/1901/p2.jpg\n../outside.png\n")
    docs = list(discover(str(manifest)))
    assert [d.name for d in docs] == ["scans/one.png", "archive/1901/p2.jpg", "outside.png"]
    assert docs[1].is_s3 and docs[0].origin == str(tmp_path / "scans" / "one.png")
    manifest.write_text("notes.docx\n")
    with pytest.raises(BadOptionError, match="not a png"):
        list(discover(str(manifest)))


def test_the_same_content_under_two_names_is_one_job(tmp_path):
    for name in ("a.png", "b.png"):
        (tmp_path / name).write_bytes(LINE.read_bytes())
    ids = [next(iter_pages(doc, dpi=300, objects=None, max_bytes=1 << 20)).job_id({"mode": "line"})
           for doc in discover(str(tmp_path))]
    assert ids[0] == ids[1]
    (page,) = iter_pages(Document("c.png", str(tmp_path / "a.png")), dpi=300, objects=None, max_bytes=1 << 20)
    assert page.job_id({"mode": "page"}) != ids[0]


def test_word_boxes_of_older_results_split_the_line_box_by_characters():
    split = estimated_words("ab  cdef", Box(0, 10, 80, 30))
    assert split == [("ab", Box(0, 10, 20, 30)), ("cdef", Box(40, 10, 80, 30))]


def test_the_pdf_text_layer_reads_back_latin_chinese_and_one_character_lines():
    import io

    import pypdfium2
    from PIL import Image

    from producer.formats import pdf
    from producer.formats.layout import PageOutput

    scan = io.BytesIO()
    Image.new("L", (600, 300), 255).save(scan, format="PNG")
    lines = [{"text": t, "confidence": 0.9, "box": [[10, y], [500, y], [500, y + 40], [10, y + 40]]}
             for t, y in (("Total RM 12.50", 10), ("米", 80), ("你好世界 2024", 150))]
    page = PageOutput(1, "job", {"width": 600, "height": 300, "lines": lines}, 150.0)
    document = pypdfium2.PdfDocument(pdf.render("t", [page], [scan.getvalue()]))
    assert document[0].get_size() == pytest.approx((288.0, 144.0))
    text = document[0].get_textpage().get_text_range()
    assert text.split() == ["Total", "RM", "12.50", "米", "你好世界", "2024"]


def test_inputs_whose_output_names_collide_fail_instead_of_overwriting(tmp_path):
    from producer.run import BulkRun, RunConfig

    (tmp_path / "in").mkdir()
    for name in ("a:b.png", "a_b.png"):
        (tmp_path / "in" / name).write_bytes(LINE.read_bytes())
    run = BulkRun(RunConfig(str(tmp_path / "in"), tmp_path / "out", ["json"], {"mode": "line"}), transport=None,
                  objects=None)
    todo = run.plan()
    assert len(todo) == 1 and run.stats.failed_documents == 1
    assert run.stats.failures[0]["kind"] == "name_collision"


def test_a_document_past_max_pages_fails_unsubmitted_and_is_counted_no_further(tmp_path):
    """A TIFF of many tiny pages must not stall the run's planning (Pillow's cost per page grows
    with the pages before it) nor become that many jobs: it fails with the reason, unsubmitted."""
    from producer.pages import page_count
    from producer.run import BulkRun, RunConfig
    from tests.producer_helpers import multipage

    (tmp_path / "in").mkdir()
    tiny = (ROOT / "samples" / "lines" / "address.png").read_bytes()
    (tmp_path / "in" / "many.tif").write_bytes(multipage([tiny] * 30, "TIFF"))
    (tmp_path / "in" / "few.tif").write_bytes(multipage([tiny] * 3, "TIFF"))
    docs = {doc.name: doc for doc in discover(str(tmp_path / "in"), None)}
    assert page_count(docs["many.tif"], None, 1 << 30, limit=10) == 11
    assert page_count(docs["few.tif"], None, 1 << 30, limit=10) == 3
    run = BulkRun(RunConfig(str(tmp_path / "in"), tmp_path / "out", ["json"], {"mode": "line"}, max_pages=10),
                  transport=None, objects=None)
    todo = run.plan()
    assert [doc.name for doc in todo] == ["few.tif"] and run.stats.pages == 3
    (failure,) = run.stats.failures
    assert (failure["document"], failure["kind"]) == ("many.tif", "too_many_pages")
    assert "more than 10 pages" in failure["message"]


def test_output_files_honour_the_umask(tmp_path):
    import os

    from producer.outputs import write_atomic

    before = os.umask(0o027)
    try:
        write_atomic(tmp_path / "a" / "out.txt", b"x")
    finally:
        os.umask(before)
    assert (tmp_path / "a" / "out.txt").stat().st_mode & 0o777 == 0o640
    os.umask(0o002)
    try:
        write_atomic(tmp_path / "b.txt", b"x")
    finally:
        os.umask(before)
    assert (tmp_path / "b.txt").stat().st_mode & 0o777 == 0o664


def test_alto_is_valid_against_the_official_schema_which_catches_a_broken_one(tmp_path):
    from producer.formats import alto
    from producer.formats.layout import PageOutput
    from tests.producer_helpers import alto_schema_errors

    lines = [{"text": t, "confidence": 0.9, "box": [[10, y], [500, y], [500, y + 40], [10, y + 40]]}
             for t, y in (("Total RM 12.50", 10), ("米 & <x>", 80))]
    blocks = [{"kind": "text", "box": [[10, 10], [500, 10], [500, 120], [10, 120]], "lines": [0, 1]}]
    page = PageOutput(1, "job", {"width": 600, "height": 300, "lines": lines, "blocks": blocks}, 150.0)
    path = tmp_path / "a.alto.xml"
    path.write_bytes(alto.render("a/b.png", [page]))
    assert alto_schema_errors(path) == []
    path.write_text(path.read_text().replace("<MeasurementUnit>pixel</MeasurementUnit>", "<Unit>pixel</Unit>"))
    assert alto_schema_errors(path)


def test_hocr_and_alto_carry_blocks_rotation_and_confidences(tmp_path):
    from lxml import etree

    from producer.formats import alto, hocr
    from producer.formats.layout import PageOutput
    from tests.producer_helpers import alto_schema_errors, hocr_property_errors

    lines = [{"text": t, "confidence": c, "box": [[y, 10], [y + 40, 10], [y + 40, 500], [y, 500]]}
             for t, c, y in (("first line", 0.9, 10), ("second", 0.7, 80))]
    blocks = [{"kind": "text", "box": [[10, 10], [120, 10], [120, 500], [10, 500]], "lines": [0, 1]}]
    page = PageOutput(1, "job", {"width": 300, "height": 600, "lines": lines, "blocks": blocks, "rotation": 90}, 150.0)
    tree = etree.fromstring(hocr.render("turned.png", [page]), etree.XMLParser(resolve_entities=False)).getroottree()
    assert hocr_property_errors(tree) == []
    ns = {"h": "http://www.w3.org/1999/xhtml"}
    assert "textangle 270" in tree.find(".//h:div[@class='ocr_carea']", ns).get("title")
    assert "x_wconf 70" in tree.findall(".//h:span[@class='ocr_line']", ns)[1].get("title")
    path = tmp_path / "turned.alto.xml"
    path.write_bytes(alto.render("turned.png", [page]))
    assert alto_schema_errors(path) == []
    alto_ns = {"a": "http://www.loc.gov/standards/alto/ns-v4#"}
    root = etree.parse(str(path)).getroot()
    assert root.find(".//a:TextBlock", alto_ns).get("ROTATION") == "270"
    assert root.find(".//a:Page", alto_ns).get("PC") == "0.800"
    broken = etree.fromstring(hocr.render("turned.png", [page]).replace(b"x_wconf 70", b"x_wconf high"),
                              etree.XMLParser(resolve_entities=False)).getroottree()
    assert hocr_property_errors(broken)


def test_a_pdf_page_too_large_at_the_dpi_renders_at_the_dpi_that_fits(tmp_path):
    """A poster (50 x 50 inches) at 300 dpi would be 225 MP, past the API's pixel limit: it
    renders at the largest whole DPI within it; a letter page keeps the DPI asked for."""
    import io

    from PIL import Image
    from reportlab.pdfgen import canvas

    from producer.pages import fitting_dpi

    out = io.BytesIO()
    pdf = canvas.Canvas(out, pagesize=(3600, 3600))
    pdf.drawString(100, 100, "a poster")
    pdf.showPage()
    pdf.setPageSize((612, 792))
    pdf.drawString(100, 100, "a letter page")
    pdf.save()
    assert fitting_dpi((612, 792), 300, 40_000_000) == 300
    dpi = fitting_dpi((3600, 3600), 300, 40_000_000)
    assert dpi == 125 and (50 * dpi + 1) ** 2 <= 40_000_000
    path = tmp_path / "poster.pdf"
    path.write_bytes(out.getvalue())
    poster, letter = iter_pages(Document("poster.pdf", str(path)), dpi=300, objects=None, max_bytes=1 << 24,
                                text_layer="force", max_pixels=40_000_000)
    with Image.open(io.BytesIO(poster.data)) as image:
        assert image.width * image.height <= 40_000_000 and poster.dpi == 125
    assert letter.dpi == 300


def test_a_pdf_page_past_the_pixel_limit_even_at_1_dpi_is_refused_before_rendering():
    from producer.pages import fitting_dpi
    from shared.errors import ImageTooLargeError

    assert fitting_dpi((500_000 / 100, 500_000 / 100), 300, 40_000_000) >= 1  # 69 inches a side fits at 1 dpi and more
    with pytest.raises(ImageTooLargeError, match="even at 1 dpi"):
        fitting_dpi((500_000, 500_000), 300, 40_000_000)  # 6,945 px a side at 1 dpi: 48 MP
    assert fitting_dpi((288_000, 288_000), 300, 40_000_000) == 1  # 4,001 px a side at 1 dpi: 16 MP fits


def test_a_file_name_that_is_not_utf8_is_written_under_its_own_bytes(tmp_path):
    import os

    from producer.formats.layout import PageOutput
    from producer.outputs import write_document

    name = os.fsdecode(b"bad\xff\xfename.png")
    page = PageOutput(1, "job", {"width": 100, "height": 40, "lines": [
        {"text": "hello", "confidence": 0.9, "box": [[1, 1], [90, 1], [90, 30], [1, 30]]}]}, 150.0)
    write_document(tmp_path, name, ["txt", "json", "hocr", "alto"], [page], [b""])
    written = sorted(os.listdir(os.fsencode(tmp_path)))
    assert b"bad\xff\xfename.png.txt" in written and len(written) == 4
    assert "bad\ufffd\ufffdname.png" in (tmp_path / os.fsdecode(b"bad\xff\xfename.png.hocr")).read_text()
