"""ALTO 4.2 XML output: one ``Page`` per page (``PC``: its mean line confidence), a ``TextBlock``
per block of the result (in reading order; ``ROTATION``, counterclockwise degrees, where the page
was found turned), a ``TextLine`` per line and a ``String`` (with ``SP`` between, ``WC`` its
confidence) per word. Coordinates are in pixels of the image as sent."""

from __future__ import annotations

import xml.etree.ElementTree as ET

from producer.formats.layout import Box, PageOutput, enclosing, line_box, line_words
from shared.document import Line

NS = "http://www.loc.gov/standards/alto/ns-v4#"
XSI = "http://www.w3.org/2001/XMLSchema-instance"
SCHEMA = f"{NS} http://www.loc.gov/alto/v4/alto-4-2.xsd"


def _pos(box: Box) -> dict[str, str]:
    return {"HPOS": str(box.x0), "VPOS": str(box.y0), "WIDTH": str(box.width), "HEIGHT": str(box.height)}


def _description(root: ET.Element, name: str) -> None:
    description = ET.SubElement(root, "Description")
    ET.SubElement(description, "MeasurementUnit").text = "pixel"
    ET.SubElement(ET.SubElement(description, "sourceImageInformation"), "fileName").text = name
    step = ET.SubElement(ET.SubElement(description, "OCRProcessing", {"ID": "OCR_0"}), "ocrProcessingStep")
    ET.SubElement(ET.SubElement(step, "processingSoftware"), "softwareName").text = "batchocr"


def _page(layout: ET.Element, page: PageOutput) -> None:
    width, height = page.size
    pid = f"P{page.number}"
    element = ET.SubElement(layout, "Page", {"ID": pid, "PHYSICAL_IMG_NR": str(page.number),
                                             "WIDTH": str(width), "HEIGHT": str(height),
                                             "PC": f"{max(0.0, min(1.0, page.confidence)):.3f}"})
    rotation = {"ROTATION": str(page.text_angle)} if page.text_angle else {}
    space = ET.SubElement(element, "PrintSpace", _pos(Box(0, 0, max(width, 1), max(height, 1))))
    n = 0
    for b, block in enumerate(page.blocks, 1):
        boxes = [line_box(line, width, height) for line in block]
        text_block = ET.SubElement(space, "TextBlock", {"ID": f"{pid}_B{b}", **_pos(enclosing(boxes)), **rotation})
        for line, box in zip(block, boxes):
            n += 1
            _line(text_block, f"{pid}_L{n}", line, box, page.size)


def _line(parent: ET.Element, lid: str, line: Line, box: Box, size: tuple[int, int]) -> None:
    text_line = ET.SubElement(parent, "TextLine", {"ID": lid, **_pos(box)})
    for w, word in enumerate(line_words(line, *size), 1):
        if w > 1:
            ET.SubElement(text_line, "SP")
        ET.SubElement(text_line, "String", {"ID": f"{lid}_W{w}", "CONTENT": word.text, **_pos(word.box),
                                            "WC": f"{max(0.0, min(1.0, word.confidence)):.3f}"})


def render(name: str, pages: list[PageOutput]) -> bytes:
    ET.register_namespace("", NS)
    ET.register_namespace("xsi", XSI)
    root = ET.Element(f"{{{NS}}}alto", {f"{{{XSI}}}schemaLocation": SCHEMA})
    _description(root, name)
    layout = ET.SubElement(root, "Layout")
    for page in pages:
        _page(layout, page)
    _qualify(root)
    return ET.tostring(root, encoding="utf-8", xml_declaration=True) + b"\n"


def _qualify(element: ET.Element) -> None:
    """Put every unqualified element into the ALTO namespace."""
    for item in element.iter():
        if not item.tag.startswith("{"):
            item.tag = f"{{{NS}}}{item.tag}"
