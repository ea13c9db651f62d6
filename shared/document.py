"""The result contract: the JSON document a finished OCR job returns.

Built by the worker, stored in Redis or S3 (``shared.results``), served by the API and read by
the producer's output writers and the sync endpoint. ``ResultDocument`` is its one declaration:
a new field is added here and filled where the worker builds the document. ``from_json`` reads
documents of older releases too (a missing field takes its default).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from typing import Any

Point = tuple[int | float, int | float]


@dataclass(frozen=True)
class Word:
    """One word of a line (its text split on whitespace), placed by the recogniser's own
    alignment (``worker.words``). ``box``: 4 [x, y] corners, in the line box's frame and order;
    ``confidence``: the mean of its characters', 0..1."""

    text: str
    confidence: float
    box: tuple[Point, ...]

    def to_json(self) -> dict[str, Any]:
        return {"text": self.text, "confidence": self.confidence, "box": [list(p) for p in self.box]}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Word:
        return cls(str(data.get("text", "")), float(data.get("confidence", 0.0)),
                   tuple((x, y) for x, y in data.get("box", ())))


@dataclass(frozen=True)
class Line:
    """One recognised line. ``box``: 4 [x, y] corners in the pixels of the image the client
    sent, clockwise from top-left; ``confidence``: the recogniser's mean, 0..1; ``words``: its
    words in reading order (empty from releases before them, and where the recogniser's
    alignment gave none)."""

    text: str
    confidence: float
    box: tuple[Point, ...]
    words: tuple[Word, ...] = ()

    def to_json(self) -> dict[str, Any]:
        return {"text": self.text, "confidence": self.confidence, "box": [list(p) for p in self.box],
                "words": [word.to_json() for word in self.words]}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Line:
        return cls(str(data.get("text", "")), float(data.get("confidence", 0.0)),
                   tuple((x, y) for x, y in data.get("box", ())),
                   tuple(Word.from_json(word) for word in data.get("words") or ()))


@dataclass(frozen=True)
class Block:
    """One block of a page (a column's paragraph, a title, a table-like region, a vertical CJK
    column group), in reading order. ``kind``: ``text``, ``title``, ``table`` or ``vertical``;
    ``box``: 4 [x, y] corners around its lines, clockwise from top-left, in the pixels of the
    image the client sent (a skewed page's blocks are turned with it); ``lines``: indices into
    the document's ``lines``, which run block after block."""

    kind: str
    box: tuple[Point, ...]
    lines: tuple[int, ...]

    def to_json(self) -> dict[str, Any]:
        return {"kind": self.kind, "box": [list(p) for p in self.box], "lines": list(self.lines)}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Block:
        return cls(str(data.get("kind", "text")), tuple((x, y) for x, y in data.get("box", ())),
                   tuple(int(i) for i in data.get("lines", ())))


def joined_text(lines: tuple[Line, ...] | list[Line], blocks: tuple[Block, ...] | list[Block]) -> str:
    """A page's ``text``: lines joined by newlines in reading order, blocks separated by a blank
    line. Without blocks (line jobs, documents of older releases), lines joined by newlines."""
    if not blocks:
        return "\n".join(line.text for line in lines)
    return "\n\n".join("\n".join(lines[i].text for i in block.lines) for block in blocks)


@dataclass(frozen=True)
class Timings:
    """Milliseconds: ``queue_wait`` (submission to batch start), ``decode``, ``detection``,
    ``recognition`` (the batch's shared pass) and ``total`` (submission to result)."""

    queue_wait: float = 0.0
    decode: float = 0.0
    detection: float = 0.0
    recognition: float = 0.0
    total: float = 0.0


@dataclass(frozen=True)
class ResultDocument:
    """A finished job's result. ``text``: the lines in reading order (``joined_text``: a blank
    line between blocks); ``lines``: every line, in reading order; ``blocks``: how page jobs'
    lines group (empty for line jobs); ``skew``: the page's text angle in degrees (positive:
    lines fall to the right); ``rotation``: clockwise degrees (0, 90, 180, 270) the page was
    found turned by, read upright, with every box in the pixels of the image as sent (corners
    clockwise from the top-left of the text as read); ``width``/``height``: of the decoded image;
    ``model``: the model version; ``inference``: the backend and precision it ran on
    (``onnxruntime:fp32``, ``openvino:bf16``); ``batch_size``: jobs
    in the batch it ran in; ``attempts``: workers it took (1 + crashes)."""

    text: str = ""
    lines: tuple[Line, ...] = ()
    blocks: tuple[Block, ...] = ()
    skew: float = 0.0
    rotation: int = 0
    width: int = 0
    height: int = 0
    model: str = ""
    inference: str = ""
    mode: str = "page"
    batch_size: int = 1
    batch_id: str = ""
    attempts: int = 1
    timings_ms: Timings = field(default_factory=Timings)

    def to_json(self) -> dict[str, Any]:
        document = {f.name: getattr(self, f.name) for f in fields(self)}
        document["lines"] = [line.to_json() for line in self.lines]
        document["blocks"] = [block.to_json() for block in self.blocks]
        document["timings_ms"] = asdict(self.timings_ms)
        return document

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ResultDocument:
        values = {f.name: data[f.name] for f in fields(cls) if f.name in data}
        values["lines"] = tuple(Line.from_json(line) for line in data.get("lines", ()))
        values["blocks"] = tuple(Block.from_json(block) for block in data.get("blocks", ()))
        names = {f.name for f in fields(Timings)}
        values["timings_ms"] = Timings(**{k: v for k, v in (data.get("timings_ms") or {}).items() if k in names})
        return cls(**values)
