"""Output formats of a bulk run, one module each; ``FORMATS`` maps a format to its file suffix."""

from __future__ import annotations

import json
from typing import Any

from producer.formats import alto, hocr
from producer.formats.layout import PageOutput

FORMATS = {"json": ".json", "txt": ".txt", "hocr": ".hocr", "alto": ".alto.xml", "pdf": ".pdf"}


def render_json(name: str, pages: list[PageOutput]) -> bytes:
    document: dict[str, Any] = {
        "source": name,
        "pages": [{"page": p.number, "job_id": p.job_id, "dpi": p.dpi, **p.result} for p in pages],
    }
    return json.dumps(document, ensure_ascii=False, indent=1).encode("utf-8") + b"\n"


def render_text(name: str, pages: list[PageOutput]) -> bytes:
    """Plain text; pages end with a form feed, as Tesseract's text output does."""
    return "".join(p.document.text + "\n\f" for p in pages).encode("utf-8")


RENDERERS = {"json": render_json, "txt": render_text, "hocr": hocr.render, "alto": alto.render}
