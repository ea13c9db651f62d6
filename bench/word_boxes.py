"""Word boxes against the printed words: the recogniser's alignment vs the character-count split.

    .venv/bin/python -m bench.word_boxes [--set funsd_forms ...] [--pages N]

Ground truth: every labelled item of a dev page set whose text is one word (no whitespace; not
``ignore``, not ``vertical``) is that word's printed box (FUNSD's single-word entities, SROIE's
and the others' one-word lines). Each is matched to the OCR word with the same text
(case-folded) whose line box overlaps it most; that word's box is scored both ways: "aligned"
(``Line.words``, from the recogniser's CTC alignment, ``worker.words``) and "estimated" (the line
box split by character count, ``producer.formats.layout.estimated_words``, what hOCR, ALTO and
the PDF layer used before). IoU of axis-aligned boxes, and the horizontal IoU (x extents only:
what the two differ in; the line's height is the detector's either way). Words on one-word lines
score the same both ways, so the words on lines of 2+ words are reported on their own.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from statistics import mean

from bench.accuracy import EVAL
from producer.formats.layout import Box, estimated_words, line_box, word_box
from shared.settings import Settings
from worker.offline.evaluation import page_items, read_image
from worker.pipeline import OcrPipeline, PageTask

SETS = ["funsd_forms", "sroie_receipts", "tapuscorpus_fr", "omnidocbench_pages"]


def truth_words(items: list[dict]) -> list[tuple[str, Box]]:
    """The one-word items of a page: their case-folded text and axis-aligned box."""
    out = []
    for item in items:
        text = item["text"].strip()
        if item.get("vertical") or not text or len(text.split()) != 1:
            continue
        xs, ys = item["box"][0::2], item["box"][1::2]
        out.append((text.casefold(), Box(int(min(xs)), int(min(ys)), int(round(max(xs))), int(round(max(ys))))))
    return out


def iou(a: Box, b: Box) -> float:
    w = max(0, min(a.x1, b.x1) - max(a.x0, b.x0))
    h = max(0, min(a.y1, b.y1) - max(a.y0, b.y0))
    union = a.width * a.height + b.width * b.height - w * h
    return w * h / union if union > 0 else 0.0


def x_iou(a: Box, b: Box) -> float:
    inter = max(0, min(a.x1, b.x1) - max(a.x0, b.x0))
    union = max(a.x1, b.x1) - min(a.x0, b.x0)
    return inter / union if union > 0 else 0.0


def ocr_words(result, width: int, height: int) -> list[tuple[str, Box, Box, Box, int]]:
    """Every OCR word: case-folded text, its line's box, its aligned and estimated boxes, and
    how many words its line has (lines whose alignment gave no words are left out)."""
    out = []
    for line in result.lines:
        box = line_box(line, width, height)
        estimated = estimated_words(line.text, box)
        if len(line.words) != len(estimated):
            continue
        for word, (_, guess) in zip(line.words, estimated):
            out.append((word.text.casefold(), box, word_box(word.box, width, height), guess, len(estimated)))
    return out


def score_page(truth: list[tuple[str, Box]], found: list[tuple[str, Box, Box, Box, int]]) -> list[dict]:
    rows = []
    for text, gt in truth:
        candidates = [w for w in found if w[0] == text and iou(w[1], gt) > 0]
        if not candidates:
            continue
        _, _, aligned, guess, count = max(candidates, key=lambda w: iou(w[1], gt))
        rows.append({"multi": count > 1, "aligned": iou(aligned, gt), "estimated": iou(guess, gt),
                     "x_aligned": x_iou(aligned, gt), "x_estimated": x_iou(guess, gt)})
    return rows


def summary(rows: list[dict], truth: int) -> dict:
    def figures(subset: list[dict]) -> dict:
        if not subset:
            return {"words": 0}
        out = {"words": len(subset)}
        for way in ("aligned", "estimated"):
            out[way] = {"iou": round(mean(r[way] for r in subset), 3),
                        "iou>=0.5": round(mean(r[way] >= 0.5 for r in subset), 3),
                        "x_iou": round(mean(r["x_" + way] for r in subset), 3)}
        return out
    return {"truth_words": truth, "matched": len(rows), "all": figures(rows),
            "on_lines_of_2+_words": figures([r for r in rows if r["multi"]])}


def measure(pipeline: OcrPipeline, data: Path, pages: int | None) -> dict:
    rows, truth = [], 0
    for path, items in page_items(data)[:pages]:
        image = read_image(path, pipeline.settings)
        (result,) = pipeline.run([PageTask(image, "page", "")])
        words = truth_words(items)
        truth += len(words)
        rows += score_page(words, ocr_words(result, image.shape[1], image.shape[0]))
    return summary(rows, truth)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--set", action="append", help=f"page sets (default: {', '.join(SETS)})")
    parser.add_argument("--pages", type=int, help="pages per set (the first N; default all)")
    args = parser.parse_args()
    settings = Settings(backend="onnxruntime")
    pipeline = OcrPipeline.load(settings.default_model, settings)
    report = {}
    for name in args.set or SETS:
        report[name] = measure(pipeline, EVAL / name, args.pages)
        print(name, json.dumps(report[name]), flush=True)
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
