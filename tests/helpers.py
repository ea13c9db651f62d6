"""Shared test helpers: access to the labelled scans in ../shared/eval."""

from __future__ import annotations

import json
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
EVAL = ROOT.parent / "shared" / "eval"


def eval_dir(name: str) -> Path:
    path = EVAL / name
    if not path.is_dir():
        raise FileNotFoundError(f"evaluation data missing: {path} (the repo expects ../shared/eval beside it)")
    return path


def eval_lines(name: str, count: int, start: int = 0) -> list[tuple[bytes, str]]:
    """(image bytes, label) of ``count`` line crops from an eval set's labels.tsv."""
    root = eval_dir(name)
    rows = [line.rstrip("\n").split("\t", 1) for line in (root / "labels.tsv").read_text("utf-8").splitlines()]
    return [((root / path).read_bytes(), label) for path, label in rows[start : start + count]]


def eval_page(name: str, page_id: str) -> tuple[bytes, list[dict]]:
    """(image bytes, labels) of page ``page_id`` of a page set, whatever its image type."""
    from worker.offline.evaluation import page_images

    root = eval_dir(name) / "pages"
    (image,) = [path for path in page_images(root) if path.stem == page_id]
    return image.read_bytes(), json.loads((root / f"{page_id}.json").read_text("utf-8"))


def clean_env(**extra: str) -> dict[str, str]:
    """This process's environment without any batchocr or Redis settings, plus ``extra``."""
    import os

    env = {k: v for k, v in os.environ.items() if not k.startswith("OCR_") and k != "REDIS_URL"}
    return env | extra


def wait_until(predicate, timeout: float, what: str, interval: float = 0.2, explain=None) -> None:
    """Poll ``predicate`` until it is true; fail the test after ``timeout`` seconds, with
    ``explain()`` (the state that was found) in the message when given (``ops.waiting``)."""
    from ops.waiting import wait_until as wait

    wait(predicate, timeout, what, interval, explain, error=AssertionError)
