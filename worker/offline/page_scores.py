"""One page set's figures, summed page by page, for batchocr and the peers it is compared with.

Every system's lines are scored the same way (``../shared/eval/README.md``): page CER on all
lines in row order, gt-region CER on the lines that lie on labelled text, and reading-order CER
on those lines in the order the system returned them, never re-sorted.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from worker.line_geometry import skew_angle
from worker.offline.reading_scoring import page_order_scores
from worker.offline.scoring import ErrorCount, in_reading_order, on_labelled_text, quads


@dataclass
class PageScores:
    """Edits and characters of a page set under the three page scores (``add`` each page)."""

    ignore_case: bool = False
    full: ErrorCount = field(default_factory=ErrorCount)
    region: ErrorCount = field(default_factory=ErrorCount)
    order: ErrorCount = field(default_factory=ErrorCount)

    def add(self, texts: Sequence[str], boxes: Sequence, labels: Sequence[dict], shape: tuple[int, ...]) -> None:
        """One page's lines as the system returned them: P texts and P boxes (4 [x, y] points,
        in the labelled page's pixels), ``labels`` as ``page_items`` gives them, ``shape`` the
        labelled page's (H, W, ...)."""
        reference = in_reading_order([g["text"] for g in labels], [g["box"] for g in labels])
        self.full.add(in_reading_order(texts, boxes), reference, self.ignore_case)
        keep = on_labelled_text(quads(boxes), quads([g["box"] for g in labels]), shape[:2]) \
            if len(texts) else np.zeros(0, bool)
        kept = [i for i in range(len(texts)) if keep[i]]
        self.region.add(in_reading_order([texts[i] for i in kept], [boxes[i] for i in kept]), reference,
                        self.ignore_case)
        # rows of labels without an annotated order are taken along the page's own skew
        skew = float(np.degrees(skew_angle(quads(boxes)))) if len(texts) else 0.0
        self.order.merge(page_order_scores(texts, boxes, labels, shape[:2], {"returned": range(len(texts))},
                                           self.ignore_case, skew)["returned"])

    def figures(self) -> dict:
        """CERs and edit counts in the JSON shape of ``batchocr-eval``."""
        return {"cer": self.full.cer, "cer_gt_region": self.region.cer, "cer_reading_order": self.order.cer,
                "edits": self.full.errors, "edits_gt_region": self.region.errors, "chars": self.full.chars}
