"""hOCR 1.2 output: XHTML with one ``ocr_page`` per page, an ``ocr_carea`` holding an ``ocr_par`` per
block of the result (in reading order), and ``ocr_line`` and ``ocrx_word`` spans, with ``x_wconf``
confidences and, where the page was found turned, ``textangle`` (counterclockwise degrees)."""

from __future__ import annotations

import xml.etree.ElementTree as ET

from producer.formats.layout import Box, PageOutput, enclosing, line_box, line_words
from shared.document import Line

XHTML = "http://www.w3.org/1999/xhtml"
DOCTYPE = ('<!DOCTYPE html PUBLIC "-//W3C//DTD XHTML 1.0 Transitional//EN" '
           '"http://www.w3.org/TR/xhtml1/DTD/xhtml1-transitional.dtd">\n')


def _conf(value: float) -> int:
    return int(round(max(0.0, min(1.0, float(value))) * 100))


def _bbox(box: Box) -> str:
    return f"bbox {box.x0} {box.y0} {box.x1} {box.y1}"


def _line(parent: ET.Element, ident: str, line: Line, box: Box, angle: str, size: tuple[int, int]) -> None:
    conf = _conf(line.confidence)
    span = ET.SubElement(parent, "span", {"class": "ocr_line", "id": f"line_{ident}",
                                         "title": f"{_bbox(box)}{angle}; x_wconf {conf}"})
    for w, word in enumerate(line_words(line, *size), 1):
        item = ET.SubElement(span, "span", {"class": "ocrx_word", "id": f"word_{ident}_{w}",
                                            "title": f"{_bbox(word.box)}; x_wconf {_conf(word.confidence)}"})
        item.text = word.text
        item.tail = " "
    if len(span):
        span[-1].tail = None
    span.tail = "\n"


def render(name: str, pages: list[PageOutput]) -> bytes:
    html = ET.Element("html", {"xmlns": XHTML, "xml:lang": "en", "lang": "en"})
    head = ET.SubElement(html, "head")
    ET.SubElement(head, "title").text = name
    ET.SubElement(head, "meta", {"http-equiv": "Content-Type", "content": "text/html;charset=utf-8"})
    ET.SubElement(head, "meta", {"name": "ocr-system", "content": "batchocr"})
    ET.SubElement(head, "meta", {"name": "ocr-capabilities", "content": "ocr_page ocr_carea ocr_par ocr_line ocrx_word"})
    body = ET.SubElement(html, "body")
    for page in pages:
        width, height = page.size
        div = ET.SubElement(body, "div", {
            "class": "ocr_page", "id": f"page_{page.number}",
            "title": f'image "{name}"; bbox 0 0 {width} {height}; ppageno {page.number - 1}; '
                     f"scan_res {page.dpi:g} {page.dpi:g}"})
        n, angle = 0, f"; textangle {page.text_angle}" if page.text_angle else ""
        for b, block in enumerate(page.blocks, 1):
            boxes = [line_box(line, width, height) for line in block]
            bbox = _bbox(enclosing(boxes)) + angle
            area = ET.SubElement(div, "div", {"class": "ocr_carea", "id": f"block_{page.number}_{b}", "title": bbox})
            par = ET.SubElement(area, "p", {"class": "ocr_par", "id": f"par_{page.number}_{b}", "title": bbox})
            for line, box in zip(block, boxes):
                n += 1
                _line(par, f"{page.number}_{n}", line, box, angle, page.size)
    return (b'<?xml version="1.0" encoding="UTF-8"?>\n' + DOCTYPE.encode()
            + ET.tostring(html, encoding="utf-8", xml_declaration=False) + b"\n")
