"""Reading-order page CER, by the conventions of ``../shared/eval/README.md``.

The reference is a page's text blocks in reading order. OmniDocBench pages annotate it: the
spans of text blocks (``block`` in ``TEXT_BLOCKS``) with a non-null ``order``, grouped by
``block_id``, blocks sorted by ``order``, each block's spans in listed order. Sets that annotate
no order (receipts, forms, typescripts) fall back to the README's page-CER order: every labelled
line is its own block, top-to-bottom then left-to-right by box centre, in the image ("image
rows") or, given the page's skew, on the page turned upright ("upright rows": on a page scanned
a degree or two off, image rows split and merge its printed rows).

The prediction is the system's lines IN THE ORDER GIVEN (what a user gets as ``text``), keeping
only lines on labelled text (the gt-region rule of ``worker.offline.scoring.on_labelled_text``). Nothing
here re-sorts them. The oracle puts each kept line in the reference block its box overlaps most
(lines overlapping none go last), blocks in reference order, rows inside a block: the best any
ordering of those lines can score.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from worker.detect import reading_order as row_order
from worker.line_geometry import turn
from worker.offline.scoring import ErrorCount, on_labelled_text, quads

# The README's text blocks (title, text_block, list, reference, captions, footnotes, code_txt)
# under every name OmniDocBench gives them, as ../shared/tools/archive_eval.py spells them.
TEXT_BLOCKS = frozenset({
    "title", "text_block", "text", "list", "list_item", "reference", "code_txt", "text_caption",
    "table_caption", "figure_caption", "table_footnote", "figure_footnote", "equation_caption",
})


@dataclass(frozen=True)
class RefBlock:
    """One reference block: its text (spans joined) and the rectangle around its spans."""

    text: str
    rect: tuple[float, float, float, float]


def _rect(box: Sequence[float]) -> tuple[float, float, float, float]:
    points = np.asarray(box, np.float64).reshape(-1, 2)
    x0, y0 = points.min(axis=0)
    x1, y1 = points.max(axis=0)
    return float(x0), float(y0), float(x1), float(y1)


def _union(rects: list[tuple[float, float, float, float]]) -> tuple[float, float, float, float]:
    return (min(r[0] for r in rects), min(r[1] for r in rects), max(r[2] for r in rects), max(r[3] for r in rects))


def is_annotated(labels: Sequence[dict]) -> bool:
    """Whether a page's labels carry an annotated reading order (OmniDocBench's ``order``)."""
    return any("order" in label for label in labels)


def reference_blocks(labels: Sequence[dict], skew: float = 0.0) -> list[RefBlock]:
    """The page's reference blocks in reading order (see the module docstring).

    Args:
        labels: the page's labelled items, ``ignore`` ones already dropped (as
            ``worker.offline.evaluation.page_items`` gives them).
        skew: for pages without an annotated order, the page's angle in degrees: the labels'
            rows are then taken on the page turned upright by it (0: the README's image rows).
    """
    if not labels:
        return []
    if not is_annotated(labels):
        upright = turn(quads([label["box"] for label in labels]), -np.radians(skew)).astype(np.float32)
        return [RefBlock(labels[i]["text"], _rect(labels[i]["box"])) for i in row_order(upright)]
    blocks: dict[object, list] = {}
    for label in labels:
        if label.get("order") is None or label.get("block") not in TEXT_BLOCKS or not label["text"].strip():
            continue
        entry = blocks.setdefault(label["block_id"], [label["order"], [], []])
        entry[1].append(label["text"])
        entry[2].append(_rect(label["box"]))
    ranked = sorted(blocks.values(), key=lambda entry: entry[0])
    return [RefBlock("".join(texts), _union(rects)) for _, texts, rects in ranked]


def kept_lines(boxes: Sequence, labels: Sequence[dict], shape: tuple[int, int]) -> list[int]:
    """Indices (in the order given) of the predicted lines that lie on labelled text.

    Args:
        boxes: P boxes, each 4 [x, y] points or 8 numbers; labels: the page's labelled items;
            shape: the image's (height, width).
    """
    if not len(boxes) or not labels:
        return []
    keep = on_labelled_text(quads(boxes), quads([label["box"] for label in labels]), shape)
    return [i for i in range(len(boxes)) if keep[i]]


def oracle_order(boxes: Sequence, blocks: Sequence[RefBlock]) -> list[int]:
    """The oracle order of predicted lines: by the reference block each overlaps most.

    Args:
        boxes: P boxes (4 [x, y] points or 8 numbers); blocks: reference blocks in order.

    Returns:
        The P indices: lines grouped by block in reference order (lines overlapping no block
        last), rows inside a group.
    """
    if not len(boxes):
        return []
    points = quads(boxes)
    lo, hi = points.min(axis=1), points.max(axis=1)
    rects = np.asarray([block.rect for block in blocks], np.float64).reshape(-1, 4)
    width = np.minimum(hi[:, None, 0], rects[None, :, 2]) - np.maximum(lo[:, None, 0], rects[None, :, 0])
    height = np.minimum(hi[:, None, 1], rects[None, :, 3]) - np.maximum(lo[:, None, 1], rects[None, :, 1])
    overlap = np.clip(width, 0, None) * np.clip(height, 0, None)
    best = overlap.argmax(axis=1) if len(blocks) else np.zeros(len(points), int)
    group = np.where(overlap.max(axis=1, initial=0.0) > 0, best, len(blocks))
    order: list[int] = []
    for block in range(len(blocks) + 1):
        members = np.flatnonzero(group == block)
        order.extend(int(members[i]) for i in row_order(points[members]))
    return order


def order_errors(texts_in_order: Sequence[str], blocks: Sequence[RefBlock], ignore_case: bool = False) -> ErrorCount:
    """Edit distance of the given lines, joined as given, against the blocks joined in order."""
    count = ErrorCount()
    count.add("".join(texts_in_order), "".join(block.text for block in blocks), ignore_case)
    return count


def page_order_scores(texts: Sequence[str], boxes: Sequence, labels: Sequence[dict], shape: tuple[int, int],
                      orders: dict[str, Sequence[int]], ignore_case: bool = False,
                      skew: float = 0.0) -> dict[str, ErrorCount]:
    """Reading-order errors of one page under each named ordering, plus ``"oracle"``.

    Args:
        texts, boxes: the pipeline's lines (P texts; P boxes of 4 [x, y] points or 8 numbers);
            labels: the page's labelled items; shape: (height, width); orders: name -> a
            permutation of ``range(P)``; skew: as for ``reference_blocks``.

    Returns:
        name -> ErrorCount; the kept lines are scored in each ordering's own sequence.
    """
    blocks = reference_blocks(labels, skew)
    keep = set(kept_lines(boxes, labels, shape))
    scores = {}
    for name, order in orders.items():
        scores[name] = order_errors([texts[i] for i in order if i in keep], blocks, ignore_case)
    kept = sorted(keep)
    oracle = oracle_order([boxes[i] for i in kept], blocks)
    scores["oracle"] = order_errors([texts[kept[i]] for i in oracle], blocks, ignore_case)
    return scores
