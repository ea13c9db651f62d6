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

import cv2
import numpy as np

from shared.charsets import LANGS
from shared.entry import console_script
from shared.errors import BatchOcrError, ConfigError
from shared.images import IMAGE_SUFFIXES
from shared.settings import Settings
from worker.pipeline import OcrPipeline, PageTask
from worker.preprocess import decode_image
from worker.offline.page_scores import PageScores
from worker.offline.scoring import ErrorCount, normalize


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


def evaluate_pages(pipeline: OcrPipeline, items, batch: int, ignore_case: bool, lang: str = "",
                   rotate: float = 0) -> dict:
    """Page CER (plain and gt-region), and the reading-order CER of the lines as returned
    (never re-sorted), on the pages turned ``rotate`` degrees clockwise (``turn``) with the
    predicted boxes turned back into the upright frame before scoring (``PageScores``)."""
    scores = PageScores(ignore_case)
    start = time.perf_counter()
    for group in _batches(items, batch):
        images = [read_image(path, pipeline.settings) for path, _ in group]
        results = pipeline.run([PageTask(turn(image, rotate), "page", lang) for image in images])
        for (_, labels), image, result in zip(group, images, results):
            lines = [] if isinstance(result, BaseException) else result.lines
            boxes = [upright_box(line.box, rotate, image.shape) for line in lines]
            scores.add([line.text for line in lines], boxes, labels, image.shape)
    seconds = time.perf_counter() - start
    return {**scores.figures(), "rotate": rotate, **speed_figures(len(items), seconds)}


ROTATE_CODES = {90: cv2.ROTATE_90_CLOCKWISE, 180: cv2.ROTATE_180, 270: cv2.ROTATE_90_COUNTERCLOCKWISE}


def turning(shape: tuple[int, ...], degrees: float) -> tuple[np.ndarray, tuple[int, int]]:
    """The 2 x 3 affine map of pixel positions of an image of ``shape`` turned ``degrees``
    clockwise about its centre onto a canvas that holds all of it, and that canvas' (W, H)."""
    h, w = shape[:2]
    matrix = cv2.getRotationMatrix2D(((w - 1) / 2, (h - 1) / 2), -degrees, 1.0)
    cos, sin = abs(matrix[0, 0]), abs(matrix[0, 1])
    size = (int(round(w * cos + h * sin)), int(round(w * sin + h * cos)))
    matrix[:, 2] += ((size[0] - 1) / 2 - (w - 1) / 2, (size[1] - 1) / 2 - (h - 1) / 2)
    return matrix, size


def turn(image: np.ndarray, degrees: float) -> np.ndarray:
    """``image`` turned ``degrees`` clockwise: exactly (``cv2.rotate``) at right angles, else
    resampled onto a larger white canvas (a skewed scan)."""
    degrees = degrees % 360
    if not degrees:
        return image
    if degrees in ROTATE_CODES:
        return cv2.rotate(image, ROTATE_CODES[int(degrees)])
    matrix, size = turning(image.shape, degrees)
    return cv2.warpAffine(image, matrix, size, flags=cv2.INTER_CUBIC, borderValue=(255, 255, 255))


def upright_box(box, degrees: float, upright_shape: tuple[int, ...]) -> list[list[float]]:
    """A box found on the page turned ``degrees`` clockwise (``turn``), in the upright page's pixels."""
    if not degrees % 360:
        return [[float(x), float(y)] for x, y in box]
    inverse = cv2.invertAffineTransform(turning(upright_shape, degrees % 360)[0])
    points = np.asarray(box, np.float64).reshape(-1, 2) @ inverse[:, :2].T + inverse[:, 2]
    return [[round(float(x), 3), round(float(y), 3)] for x, y in points]


def speed_figures(items: int, seconds: float) -> dict:
    """Throughput and peak RSS of this process, in the JSON shape every eval run reports."""
    return {
        "items": items,
        "seconds": round(seconds, 3),
        "items_per_s": round(items / seconds, 3) if seconds else 0.0,
        "ms_per_item": round(1000 * seconds / max(1, items), 1),
        "rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
    }


def _parser() -> argparse.ArgumentParser:
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
    parser.add_argument("--rotate", default="0", help="page sets: comma-separated clockwise turns in degrees to "
                        "score the pages at, e.g. 0,90,180,270 or -10,10 for skew (boxes are turned back before scoring)")
    parser.add_argument("--backend", help="inference backend as BACKEND[:PRECISION], e.g. openvino:bf16 "
                        "(default: OCR_BACKEND / OCR_PRECISION); reported with the figures")
    return parser


@console_script("batchocr-eval")
def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    settings = _settings(args, parser)
    try:
        angles = [float(a) for a in args.rotate.split(",") if a.strip()]
    except ValueError:
        angles = []
    if not angles or not all(np.isfinite(angles)) or any(abs(a) > 360 for a in angles):
        parser.error(f"--rotate takes angles in degrees (-360..360), comma-separated (got {args.rotate!r})")
    angles = [int(a) if a.is_integer() else a for a in angles]
    try:
        mode = args.mode or detect_mode(args.data)
        items = scored_items(args.data, mode)
    except ConfigError as exc:
        parser.error(exc.message)
    items = items[: args.limit] if args.limit else items
    versions = args.model or [settings.default_model]
    run = evaluate_lines if mode == "line" else evaluate_pages
    lang = args.lang or settings.default_lang
    if mode == "line" and any(angles):
        parser.error("--rotate applies to page sets")
    results = {}
    for version in versions:
        pipeline = OcrPipeline.load(version, settings)
        for angle in angles:
            extra = {"rotate": angle} if mode == "page" else {}
            scores = run(pipeline, items, max(1, args.batch), args.ignore_case, lang, **extra)
            key = version if len(angles) == 1 else f"{version}@{angle}"
            results[key] = {"set": args.data.name, "mode": mode, "model": version, "lang": lang,
                            "backend": pipeline.model.choice.label, **scores}
            print(_summary(results[key]))
    if args.json:
        single = len(results) == 1
        args.json.write_text(json.dumps(next(iter(results.values())) if single else
                                        {"set": args.data.name, "mode": mode, "models": results}, indent=2))
    return 0


def _settings(args: argparse.Namespace, parser: argparse.ArgumentParser) -> Settings:
    """The ``OCR_*`` settings, with the backend ``--backend`` names."""
    settings = Settings.from_env()
    if not args.backend:
        return settings
    backend, _, precision = args.backend.partition(":")
    try:
        return settings.replace(backend=backend, precision=precision or "auto")
    except ConfigError as exc:
        parser.error(exc.message)


def _summary(figures: dict) -> str:
    unit = "lines" if figures["mode"] == "line" else "pages"
    extra = f"  gt-region CER {figures['cer_gt_region']:.4f}  reading-order CER {figures['cer_reading_order']:.4f}" \
        + (f"  turned {figures['rotate']:g}°" if figures["rotate"] else "") if figures["mode"] == "page" else \
        f"  exact lines {figures['exact']:.3f}"
    return (f"{figures['set']} [{figures['model']} {figures['backend']}] ({figures['items']} {unit}): CER {figures['cer']:.4f}{extra}  "
            f"{figures['items_per_s']:.2f} {unit}/s  {figures['ms_per_item']:.0f} ms/{unit[:-1]}  "
            f"peak RSS {figures['rss_mb']:.0f} MB")


if __name__ == "__main__":
    sys.exit(main())
