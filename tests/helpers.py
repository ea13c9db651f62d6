"""Shared test helpers: eval data access and CER as defined in ../shared/eval/README.md."""

from __future__ import annotations

import json
import re
import unicodedata
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
    root = eval_dir(name) / "pages"
    return (root / f"{page_id}.jpg").read_bytes(), json.loads((root / f"{page_id}.json").read_text("utf-8"))


def normalize(text: str, ignore_case: bool = False) -> str:
    text = re.sub(r"\s+", "", unicodedata.normalize("NFKC", text))
    return text.upper() if ignore_case else text


def edit_distance(a: str, b: str) -> int:
    previous = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        current = [i]
        for j, cb in enumerate(b, 1):
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (ca != cb)))
        previous = current
    return previous[-1]


def cer(predictions: list[str], references: list[str], ignore_case: bool = False) -> float:
    """Total edit distance / total reference characters, after NFKC and whitespace removal."""
    refs = [normalize(r, ignore_case) for r in references]
    errors = sum(edit_distance(normalize(p, ignore_case), r) for p, r in zip(predictions, refs))
    return errors / max(1, sum(len(r) for r in refs))
