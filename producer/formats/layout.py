"""Page geometry shared by the output writers: line boxes and word boxes.

The worker returns each line as a quadrilateral (4 [x, y] corners in image pixels) and its
words placed by the recogniser's own alignment (``worker.words``). hOCR, ALTO and the PDF text
layer want axis-aligned boxes. Results of releases before word boxes (or a line whose
alignment gave none) get words estimated from their character offsets within the line's box
(characters assumed equally wide).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any

from shared.document import Line, Point, ResultDocument


@dataclass(frozen=True)
class Box:
    """Axis-aligned box in image pixels; x1, y1 exclusive."""

    x0: int
    y0: int
    x1: int
    y1: int

    @property
    def width(self) -> int:
        return self.x1 - self.x0

    @property
    def height(self) -> int:
        return self.y1 - self.y0


@dataclass(frozen=True)
class PageOutput:
    """One OCRed page of a document: its job's result document and the scan's DPI."""

    number: int
    job_id: str
    result: dict[str, Any]  # as the API sent it: the JSON output keeps fields of newer releases
    dpi: float

    @functools.cached_property
    def document(self) -> ResultDocument:
        return ResultDocument.from_json(self.result)

    @property
    def size(self) -> tuple[int, int]:
        return int(self.document.width or 0), int(self.document.height or 0)

    @property
    def text_angle(self) -> int:
        """Counterclockwise degrees the text runs at in the image (hOCR ``textangle``, ALTO
        ``ROTATION``): the page was found turned ``rotation`` degrees clockwise."""
        return (360 - int(self.document.rotation or 0)) % 360

    @property
    def confidence(self) -> float:
        """The mean confidence of the page's lines (0 without lines)."""
        lines = self.lines
        return sum(line.confidence for line in lines) / len(lines) if lines else 0.0

    @property
    def lines(self) -> list[Line]:
        return [line for line in self.document.lines if line.text.strip()]

    @property
    def blocks(self) -> list[list[Line]]:
        """The page's non-empty lines grouped by block, in reading order; one group of all
        lines where the document has no blocks (line jobs, older releases)."""
        document = self.document
        if not document.blocks:
            return [self.lines] if self.lines else []
        groups = [[document.lines[i] for i in block.lines if 0 <= i < len(document.lines)]
                  for block in document.blocks]
        return [kept for kept in ([line for line in group if line.text.strip()] for group in groups) if kept]


def enclosing(boxes: list[Box]) -> Box:
    """The smallest Box holding ``boxes`` (at least one)."""
    return Box(min(b.x0 for b in boxes), min(b.y0 for b in boxes), max(b.x1 for b in boxes), max(b.y1 for b in boxes))


def line_box(line: Line, width: int, height: int) -> Box:
    """The bounding box of a line's quad, clipped to the page (at least 1 px each way)."""
    return word_box(line.box, width, height)


def word_box(quad: tuple[Point, ...], width: int, height: int) -> Box:
    """The bounding box of a quad (a line's, a word's), clipped to the page (>= 1 px each way)."""
    xs = [point[0] for point in quad] or [0]
    ys = [point[1] for point in quad] or [0]
    x0 = min(max(int(min(xs)), 0), max(width - 1, 0))
    y0 = min(max(int(min(ys)), 0), max(height - 1, 0))
    x1 = max(min(int(round(max(xs))), width), x0 + 1)
    y1 = max(min(int(round(max(ys))), height), y0 + 1)
    return Box(x0, y0, x1, y1)


@dataclass(frozen=True)
class PlacedWord:
    """A word as the writers draw it: its text, axis-aligned box, confidence (0..1) and
    quad (4 [x, y] corners in the line's order)."""

    text: str
    box: Box
    confidence: float
    quad: tuple[Point, ...]


def line_words(line: Line, width: int, height: int) -> list[PlacedWord]:
    """A line's words: as the recogniser placed them (``Line.words``) where they pair with the
    line's text, estimated from character counts otherwise (each with the line's confidence)."""
    names = line.text.split()
    if line.words and [word.text for word in line.words] == names:
        return [PlacedWord(word.text, word_box(word.box, width, height), word.confidence, word.box)
                for word in line.words]
    box = line_box(line, width, height)
    return [PlacedWord(name, wbox, line.confidence, _corners(wbox)) for name, wbox in estimated_words(line.text, box)]


def _corners(box: Box) -> tuple[Point, ...]:
    return (box.x0, box.y0), (box.x1, box.y0), (box.x1, box.y1), (box.x0, box.y1)


def estimated_words(text: str, box: Box) -> list[tuple[str, Box]]:
    """Split ``text`` on spaces; each word gets the share of ``box`` its characters span."""
    total = max(len(text), 1)
    out, start = [], 0
    for word in text.split(" "):
        if word:
            x0 = box.x0 + box.width * start // total
            x1 = box.x0 + box.width * (start + len(word)) // total
            out.append((word, Box(x0, box.y0, max(x1, x0 + 1), box.y1)))
        start += len(word) + 1
    return out
