"""``batchocr-eval``: score batchocr's own pipeline on a labelled folder.

    batchocr-eval --data ../shared/eval/uw3_lines
    batchocr-eval --data ../shared/eval/sroie_receipts --ignore-case --json sroie.json

A folder is either a line set (``labels.tsv``: ``image path<TAB>text``) or a page set
(``pages/<id>.<png|jpg|jpeg|tif|tiff|bmp|webp>`` + ``pages/<id>.json``, a list of
``{"box": [x1, y1, ..., x4, y4], "text"}`` with optional ``"ignore": true``). Images are decoded
as the worker decodes them and read in groups of ``--batch`` through the same pipeline (all
lines of a group recognised together). Settings come from the ``OCR_*`` environment, as in a
worker. A folder with nothing to score is refused (exit status 2), never scored as perfect.
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import time
from pathlib import Path

import numpy as np

from shared.charsets import LANGS
from shared.errors import BatchOcrError, ConfigError
from shared.images import IMAGE_SUFFIXES
from shared.settings import Settings
from worker.pipeline import OcrPipeline, PageTask
from worker.preprocess import decode_image
from worker.offline.scoring import ErrorCount, in_reading_order, normalize, on_labelled_text, quads


def detect_mode(data: Path) -> str:
    if (data / "labels.tsv").is_file():
        return "line"
    if (data / "pages").is_dir():
        return "page"
    raise ConfigError(f"{data} has neither labels.tsv (lines) nor pages/ (pages)")


def line_items(data: Path) -> list[tuple[Path, str]]:
    if not (data / "labels.tsv").is_file():
        raise ConfigError(f"{data} has no labels.tsv: not a line set")
    rows = [row.split("\t", 1) for row in (data / "labels.tsv").read_text("utf-8").splitlines() if row]
    return [(data / path, label) for path, label in rows]


def page_images(pages: Path) -> list[Path]:
    """The scans in a page set's ``pages/`` folder, sorted: every file of a type the worker
    reads (``shared.images.IMAGE_SUFFIXES``, in any case)."""
    if not pages.is_dir():
        raise ConfigError(f"{pages} is not a folder: not a page set")
    return sorted(p for p in pages.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)


def page_items(data: Path) -> list[tuple[Path, list[dict]]]:
    items = []
    for image in page_images(data / "pages"):
        labels = image.with_suffix(".json")
        if not labels.is_file():
            raise ConfigError(f"{image} has no labels beside it ({labels.name})")
        kept = [dict(item, text=item["text"].removeprefix("\\t"))
                for item in json.loads(labels.read_text("utf-8")) if not item.get("ignore")]
        items.append((image, kept))
    return items


def scored_items(data: Path, mode: str) -> list:
    """The line or page items of ``data``; ConfigError when there is nothing to score."""
    items = line_items(data) if mode == "line" else page_items(data)
    if not items:
        found = "no labelled lines in labels.tsv" if mode == "line" else \
            f"no page images ({', '.join(sorted(IMAGE_SUFFIXES))}) in pages/"
        raise ConfigError(f"{data} has nothing to score: {found}")
    return items


def read_image(path: Path, settings: Settings) -> np.ndarray:
    """An image decoded as the worker decodes job images (limits, alpha, EXIF orientation)."""
    try:
        return decode_image(path.read_bytes(), settings)
    except (OSError, BatchOcrError) as exc:
        raise ConfigError(f"cannot read image {path}: {getattr(exc, 'message', exc)}") from None


def _batches(items: list, size: int):
    for begin in range(0, len(items), size):
        yield items[begin : begin + size]


def evaluate_lines(pipeline: OcrPipeline, items, batch: int, ignore_case: bool, lang: str = "") -> dict:
    count, exact = ErrorCount(), 0
    start = time.perf_counter()
    for group in _batches(items, batch):
        results = pipeline.run([PageTask(read_image(path, pipeline.settings), "line", lang) for path, _ in group])
        for (_, label), result in zip(group, results):
            text = result.text if not isinstance(result, BaseException) else ""
            exact += normalize(text, ignore_case) == normalize(label, ignore_case)
            count.add(text, label, ignore_case)
    seconds = time.perf_counter() - start
    return {"cer": count.cer, "edits": count.errors, "chars": count.chars, "exact": exact / max(1, len(items)),
            **speed_figures(len(items), seconds)}


def evaluate_pages(pipeline: OcrPipeline, items, batch: int, ignore_case: bool, lang: str = "") -> dict:
    full, region = ErrorCount(), ErrorCount()
    start = time.perf_counter()
    for group in _batches(items, batch):
        images = [read_image(path, pipeline.settings) for path, _ in group]
        results = pipeline.run([PageTask(image, "page", lang) for image in images])
        for (_, labels), image, result in zip(group, images, results):
            lines = [] if isinstance(result, BaseException) else result.lines
            reference = in_reading_order([g["text"] for g in labels], [g["box"] for g in labels])
            texts, boxes = [line.text for line in lines], [line.box for line in lines]
            full.add(in_reading_order(texts, boxes), reference, ignore_case)
            keep = on_labelled_text(quads(boxes), quads([g["box"] for g in labels]), image.shape[:2]) \
                if lines else np.zeros(0, bool)
            kept = [i for i in range(len(lines)) if keep[i]]
            region.add(in_reading_order([texts[i] for i in kept], [boxes[i] for i in kept]), reference, ignore_case)
    seconds = time.perf_counter() - start
    return {"cer": full.cer, "cer_gt_region": region.cer, "edits": full.errors, "edits_gt_region": region.errors,
            "chars": full.chars, **speed_figures(len(items), seconds)}


def speed_figures(items: int, seconds: float) -> dict:
    """Throughput and peak RSS of this process, in the JSON shape every eval run reports."""
    return {
        "items": items,
        "seconds": round(seconds, 3),
        "items_per_s": round(items / seconds, 3) if seconds else 0.0,
        "ms_per_item": round(1000 * seconds / max(1, items), 1),
        "rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="batchocr-eval", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, required=True, help="a line or page set folder")
    parser.add_argument("--mode", choices=("line", "page"), help="default: from the folder's layout")
    parser.add_argument("--json", type=Path, help="write the figures to this file as JSON")
    parser.add_argument("--ignore-case", action="store_true", help="compare upper-cased (SROIE labels)")
    parser.add_argument("--batch", type=int, default=8, help="images per pipeline batch (as max_batch)")
    parser.add_argument("--limit", type=int, help="only the first N items")
    parser.add_argument("--model", action="append", help="model version (default: OCR_DEFAULT_MODEL); "
                        "give it twice for an A/B report: both versions on the same images, side by side")
    parser.add_argument("--lang", choices=LANGS, help="charset hint, as the job option 'lang' "
                        "(default: OCR_DEFAULT_LANG, as for a job that gives none)")
    args = parser.parse_args(argv)
    settings = Settings.from_env()
    try:
        mode = args.mode or detect_mode(args.data)
        items = scored_items(args.data, mode)
    except ConfigError as exc:
        parser.error(exc.message)
    items = items[: args.limit] if args.limit else items
    versions = args.model or [settings.default_model]
    run = evaluate_lines if mode == "line" else evaluate_pages
    lang = args.lang or settings.default_lang
    results = {}
    for version in versions:
        scores = run(OcrPipeline.load(version, settings), items, max(1, args.batch), args.ignore_case, lang)
        results[version] = {"set": args.data.name, "mode": mode, "model": version, "lang": lang, **scores}
        print(_summary(results[version]))
    if args.json:
        single = len(versions) == 1
        args.json.write_text(json.dumps(results[versions[0]] if single else
                                        {"set": args.data.name, "mode": mode, "models": results}, indent=2))
    return 0


def _summary(figures: dict) -> str:
    unit = "lines" if figures["mode"] == "line" else "pages"
    extra = f"  gt-region CER {figures['cer_gt_region']:.4f}" if figures["mode"] == "page" else \
        f"  exact lines {figures['exact']:.3f}"
    return (f"{figures['set']} [{figures['model']}] ({figures['items']} {unit}): CER {figures['cer']:.4f}{extra}  "
            f"{figures['items_per_s']:.2f} {unit}/s  {figures['ms_per_item']:.0f} ms/{unit[:-1]}  "
            f"peak RSS {figures['rss_mb']:.0f} MB")


if __name__ == "__main__":
    sys.exit(main())
