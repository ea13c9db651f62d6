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
class Line:
    """One recognised line. ``box``: 4 [x, y] corners in the pixels of the image the client
    sent, clockwise from top-left; ``confidence``: the recogniser's mean, 0..1."""

    text: str
    confidence: float
    box: tuple[Point, ...]

    def to_json(self) -> dict[str, Any]:
        return {"text": self.text, "confidence": self.confidence, "box": [list(p) for p in self.box]}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Line:
        return cls(str(data.get("text", "")), float(data.get("confidence", 0.0)),
                   tuple((x, y) for x, y in data.get("box", ())))


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
    """A finished job's result. ``text``: the lines joined by newlines in reading order;
    ``width``/``height``: of the decoded image; ``batch_size``: jobs in the batch it ran in;
    ``attempts``: workers it took (1 + crashes)."""

    text: str = ""
    lines: tuple[Line, ...] = ()
    width: int = 0
    height: int = 0
    model: str = ""
    mode: str = "page"
    batch_size: int = 1
    batch_id: str = ""
    attempts: int = 1
    timings_ms: Timings = field(default_factory=Timings)

    def to_json(self) -> dict[str, Any]:
        document = {f.name: getattr(self, f.name) for f in fields(self)}
        document["lines"] = [line.to_json() for line in self.lines]
        document["timings_ms"] = asdict(self.timings_ms)
        return document

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ResultDocument:
        values = {f.name: data[f.name] for f in fields(cls) if f.name in data}
        values["lines"] = tuple(Line.from_json(line) for line in data.get("lines", ()))
        names = {f.name for f in fields(Timings)}
        values["timings_ms"] = Timings(**{k: v for k, v in (data.get("timings_ms") or {}).items() if k in names})
        return cls(**values)
