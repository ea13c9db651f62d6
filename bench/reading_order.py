"""Reading-order CER per page set: the pipeline's order today (row order), the order of
``worker.reading_order``, and the oracle (``worker.offline.reading_scoring``).

    .venv/bin/python -m bench.reading_order                  # all four page sets
    .venv/bin/python -m bench.reading_order --skew -10 -3 3 10 --sweep

OCR runs once per page: the lines (text, confidence, box, in the order the pipeline returns
them) go to ``--cache`` (default: the system temp folder, never the repository) and every later
run orders and scores those, so trying an ordering takes seconds. ``--refresh`` reads again.

OmniDocBench pages are scored against their annotated order. The other sets annotate none:
their reference is their labelled lines in rows ("image rows", the README's page-CER order) and,
second, in rows of the page turned upright by its skew ("upright rows"), which is how a page
scanned a degree or two off reads. Row references cannot judge a page with columns (two-page
spreads in tapuscorpus), so pages read as columns there are listed rather than counted as
worse. ``--skew`` turns every page's boxes (lines and labels) by those degrees, the reference
kept as the page's own. ``--sweep`` moves each ordering constant and counts the pages whose
order changes.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import tempfile
from pathlib import Path

import numpy as np

from shared.settings import Settings
from worker.detect import reading_order as row_order
from worker.line_geometry import turn
from worker.offline.evaluation import page_items
from worker.offline.reading_scoring import is_annotated, page_order_scores
from worker.offline.scoring import ErrorCount
from worker.reading_order import Params, analyse

EVAL = Path(__file__).resolve().parent.parent.parent / "shared" / "eval"
SETS = ("omnidocbench_pages", "sroie_receipts", "funsd_forms", "tapuscorpus_fr")
DEFAULT_CACHE = Path(tempfile.gettempdir()) / "batchocr_reading_order_lines.json"
# Each constant at the edges of its plateau (the defaults' order on every dev page) and beyond.
SWEEP = {"long_row": (5.0, 10.5, 11.0), "min_column_rows": (8, 9, 21, 22), "text_share": (0.1, 0.7, 0.8),
         "cell_gap": (0.3, 5.0), "band_gap": (0.1, 5.0)}
WORSE = 0.005
ORDERS = ("current", "new", "oracle")


def cached_lines(root: Path, sets: list[str], path: Path, refresh: bool) -> dict:
    """set -> page id -> {width, height, lines}: read from ``path``, OCRing (once) the pages
    it lacks with the default model and ``OCR_*`` settings, as a worker would."""
    from worker.pipeline import OcrPipeline, PageTask
    from worker.preprocess import decode_image

    cache = json.loads(path.read_text("utf-8")) if path.is_file() and not refresh else {}
    pipeline = None
    for name in sets:
        pages = cache.setdefault(name, {})
        for image_path, _ in page_items(root / name):
            if image_path.stem in pages:
                continue
            if pipeline is None:
                settings = Settings.from_env()
                pipeline = OcrPipeline.load(settings.default_model, settings)
            image = decode_image(image_path.read_bytes(), pipeline.settings)
            result = pipeline.run([PageTask(image, "page")])[0]
            lines = [] if isinstance(result, BaseException) else [line.to_json() for line in result.lines]
            pages[image_path.stem] = {"width": image.shape[1], "height": image.shape[0], "lines": lines}
            print(f"OCR {name}/{image_path.stem}: {len(lines)} lines", flush=True)
            path.write_text(json.dumps(cache, ensure_ascii=False), "utf-8")
    return cache


def layouts_of(root: Path, name: str) -> dict[str, str]:
    """Page id -> the manifest's ``layout`` (OmniDocBench: single_column, double_column, ...)."""
    manifest = root / name / "manifest.tsv"
    if not manifest.is_file():
        return {}
    rows = [row.split("\t") for row in manifest.read_text("utf-8").splitlines()]
    if "layout" not in rows[0]:
        return {}
    column = rows[0].index("layout")
    return {row[0]: row[column] for row in rows[1:] if len(row) > column}


def turned(page: dict, labels: list[dict], degrees: float) -> tuple[list[dict], list[dict], tuple[int, int]]:
    """A page's lines and labels with every box turned by ``degrees`` about the page centre, on
    a canvas that holds them; the lines re-sorted into row order as the pipeline would return
    them; labels without an annotated order keep the image-row order of the page as scanned."""
    if not is_annotated(labels) and labels:
        ranks = row_order(np.asarray([label["box"] for label in labels], np.float32).reshape(-1, 4, 2))
        labels = [dict(labels[i], order=rank, block_id=rank, block="text_block") for rank, i in enumerate(ranks)]
    width, height = page["width"], page["height"]
    side = int(np.hypot(width, height)) + 2

    def move(box) -> np.ndarray:
        points = np.asarray(box, np.float64).reshape(-1, 2) - (width / 2, height / 2)
        return turn(points, np.radians(degrees)) + side / 2

    lines = [dict(line, box=move(line["box"]).round().astype(int).tolist()) for line in page["lines"]]
    if lines:
        lines = [lines[i] for i in row_order(np.asarray([line["box"] for line in lines], np.float32))]
    return lines, [dict(label, box=move(label["box"]).reshape(-1).tolist()) for label in labels], (side, side)


def measure(cache: dict, items: dict, params: Params, degrees: float = 0.0) -> list[dict]:
    """One row per page: reference -> current / new / oracle ErrorCounts; the new order, the
    page's skew and how many areas (columns, bands beside them) the layout found."""
    rows = []
    for name, pages in items.items():
        for image_path, labels in pages:
            page, annotated = cache[name][image_path.stem], is_annotated(labels)
            lines, labels, shape = turned(page, labels, degrees) if degrees else \
                (page["lines"], labels, (page["height"], page["width"]))
            layout = analyse([line["box"] for line in lines], params)
            orders = {"current": range(len(lines)), "new": layout.order}
            references = {"annotated" if annotated else "image rows": 0.0}
            if not annotated and not degrees:
                references["upright rows"] = layout.skew
            texts, boxes = [line["text"] for line in lines], [line["box"] for line in lines]
            scores = {reference: page_order_scores(texts, boxes, labels, shape, orders, name == "sroie_receipts", skew)
                      for reference, skew in references.items()}
            rows.append({"set": name, "page": image_path.stem, "scores": scores, "order": layout.order,
                         "skew": layout.skew, "areas": len({block.area for block in layout.blocks})})
    return rows


def totals(rows: list[dict]) -> dict[tuple[str, str], dict[str, ErrorCount]]:
    """(set, reference) -> name -> the set's summed ErrorCount."""
    table: dict[tuple[str, str], dict[str, ErrorCount]] = {}
    for row in rows:
        for reference, scores in row["scores"].items():
            entry = table.setdefault((row["set"], reference), {})
            for name, count in scores.items():
                total = entry.setdefault(name, ErrorCount())
                total.errors += count.errors
                total.chars += count.chars
    return table


def report(rows: list[dict], layouts: dict[str, dict[str, str]], worst: int) -> None:
    """Print the per-set table, the worst pages, and the pages a row reference cannot judge."""
    print(f"{'set':20s} {'pages':>5s}  {'reference':13s} {'current':>8s} {'new':>8s} {'oracle':>8s}")
    for (name, reference), entry in totals(rows).items():
        pages = sum(1 for row in rows if row["set"] == name)
        print(f"{name:20s} {pages:5d}  {reference:13s} " + " ".join(f"{entry[k].cer:8.4f}" for k in ORDERS))
    print(f"\nworst pages of each set by new reading-order CER (top {worst}):")
    for name in dict.fromkeys(row["set"] for row in rows):
        ranked = sorted((row for row in rows if row["set"] == name), key=lambda row: -_first(row)["new"].cer)
        print("\n".join("  " + _page_line(row) for row in ranked[:worst]))
    judged = [row for row in rows if layouts.get(row["set"], {}).get(row["page"], "single_column") == "single_column"]
    annotated = [row for row in judged if "annotated" in row["scores"]]
    single = annotated + [row for row in judged if row not in annotated and row["areas"] == 1]
    print(f"\nsingle-column pages (manifest, or one area found) worse than current by > {WORSE}:")
    worse = [row for row in single if _first(row)["new"].cer > _first(row)["current"].cer + WORSE]
    print("\n".join("  " + _page_line(row) for row in worse) or "  none")
    columns = [row for row in judged if row not in annotated and row["areas"] > 1]
    print("\npages read as columns that a row reference cannot judge (check them by eye):")
    print("\n".join("  " + _page_line(row) for row in columns) or "  none")


def _first(row: dict) -> dict[str, ErrorCount]:
    """The page's scores against its first reference (annotated order, or image rows)."""
    return next(iter(row["scores"].values()))


def _page_line(row: dict) -> str:
    figures = " | ".join(f"{reference}: current {scores['current'].cer:.4f} new {scores['new'].cer:.4f} "
                         f"oracle {scores['oracle'].cer:.4f}" for reference, scores in row["scores"].items())
    return f"{row['set'][:12]:12s} {row['page'][:40]:40s} areas {row['areas']} skew {row['skew']:+.2f}  {figures}"


def sweep(cache: dict, items: dict, base: list[dict]) -> None:
    """Each ordering constant moved alone: the new order's CER per set and reference, and the
    pages whose order differs from the defaults'."""
    default = {(row["set"], row["page"]): row["order"] for row in base}
    for field, values in SWEEP.items():
        for value in values:
            rows = measure(cache, items, dataclasses.replace(Params(), **{field: value}))
            changed = sorted({row["page"] for row in rows if row["order"] != default[(row["set"], row["page"])]})
            figures = "  ".join(f"{name[:6]}/{reference[:5]} {entry['new'].cer:.4f}"
                                for (name, reference), entry in totals(rows).items())
            print(f"{field}={value}: {figures}  pages changed: {len(changed)} {' '.join(p[:24] for p in changed)}")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=EVAL, help="folder holding the page sets")
    parser.add_argument("--sets", nargs="+", default=list(SETS))
    parser.add_argument("--cache", type=Path, default=DEFAULT_CACHE, help="the lines of every page, as OCRed once")
    parser.add_argument("--refresh", action="store_true", help="OCR every page again")
    parser.add_argument("--skew", type=float, nargs="*", default=[], help="also turn every page by these degrees")
    parser.add_argument("--sweep", action="store_true", help="move each ordering constant in turn")
    parser.add_argument("--worst", type=int, default=3, help="worst pages listed per set")
    args = parser.parse_args(argv)
    cache = cached_lines(args.data, args.sets, args.cache, args.refresh)
    items = {name: page_items(args.data / name) for name in args.sets}
    layouts = {name: layouts_of(args.data, name) for name in args.sets}
    rows = measure(cache, items, Params())
    report(rows, layouts, args.worst)
    for degrees in args.skew:
        print(f"\nturned by {degrees:+g} degrees:")
        for (name, reference), entry in totals(measure(cache, items, Params(), degrees)).items():
            print(f"  {name:20s} {reference:13s} " + " ".join(f"{k} {entry[k].cer:.4f}" for k in ORDERS))
    if args.sweep:
        print("\nsweep (defaults: " + ", ".join(f"{f}={getattr(Params(), f)}" for f in SWEEP) + "):")
        sweep(cache, items, rows)


if __name__ == "__main__":
    main()
