"""Accuracy scoring by the conventions of ``../shared/eval/README.md``.

CER = total edit distance / total reference characters, after NFKC normalisation and removal of
all whitespace (optionally case-folded, for SROIE's upper-case labels). Page text is scored in
reading order: lines sorted top-to-bottom, left-to-right by box centre, rows grouped with a
tolerance of half the median line height, for prediction and ground truth alike.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np
from rapidfuzz.distance import Levenshtein

from worker.detect import reading_order

_SPACE = re.compile(r"\s+")


def normalize(text: str, ignore_case: bool = False) -> str:
    text = _SPACE.sub("", unicodedata.normalize("NFKC", text))
    return text.upper() if ignore_case else text


@dataclass
class ErrorCount:
    """Running edit distance and reference length; ``cer`` is their ratio."""

    errors: int = 0
    chars: int = 0

    def add(self, prediction: str, reference: str, ignore_case: bool = False) -> int:
        ref = normalize(reference, ignore_case)
        distance = Levenshtein.distance(normalize(prediction, ignore_case), ref)
        self.errors += distance
        self.chars += len(ref)
        return distance

    def merge(self, other: ErrorCount) -> None:
        self.errors += other.errors
        self.chars += other.chars

    @property
    def cer(self) -> float:
        return self.errors / self.chars if self.chars else 0.0


def cer(predictions: Sequence[str], references: Sequence[str], ignore_case: bool = False) -> float:
    count = ErrorCount()
    for prediction, reference in zip(predictions, references, strict=True):
        count.add(prediction, reference, ignore_case)
    return count.cer


def quads(boxes: Sequence[Sequence[float]]) -> np.ndarray:
    """Boxes as 8 numbers or 4 [x, y] points -> K x 4 x 2 float32."""
    return np.asarray(boxes, np.float32).reshape(-1, 4, 2)


def in_reading_order(texts: Sequence[str], boxes: Sequence[Sequence[float]]) -> str:
    """Concatenate ``texts`` ordered by their boxes (README's page-CER ordering)."""
    if not texts:
        return ""
    return "".join(texts[i] for i in reading_order(quads(boxes)))


def on_labelled_text(pred_boxes: np.ndarray, gt_boxes: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Which predicted boxes lie on labelled text (the README's "gt-region" rule).

    A predicted box counts if labelled boxes cover at least 50 % of it, or its centre lies
    inside a labelled box, or it contains at least 50 % of some labelled box.

    Args:
        pred_boxes: P x 4 x 2; gt_boxes: G x 4 x 2 (image pixels); shape: (height, width).

    Returns:
        P booleans.
    """
    height, width = shape
    labelled = np.zeros((height, width), np.uint8)
    cv2.fillPoly(labelled, [np.round(g).astype(np.int32) for g in gt_boxes], 1)
    keep = np.zeros(len(pred_boxes), bool)
    gt_areas = [max(cv2.contourArea(g), 1.0) for g in gt_boxes]
    for i, box in enumerate(pred_boxes):
        corners = np.round(box).astype(np.int32)
        x0, y0 = np.clip(corners.min(axis=0), 0, [width - 1, height - 1])
        x1, y1 = np.clip(corners.max(axis=0) + 1, 1, [width, height])
        mask = np.zeros((y1 - y0, x1 - x0), np.uint8)
        cv2.fillPoly(mask, [corners - (x0, y0)], 1)
        area = int(mask.sum())
        covered = int((mask & labelled[y0:y1, x0:x1]).sum())
        cx, cy = np.clip(box.mean(axis=0), 0, [width - 1, height - 1]).astype(int)
        if (area and covered >= 0.5 * area) or labelled[cy, cx]:
            keep[i] = True
            continue
        for gt, gt_area in zip(gt_boxes, gt_areas):
            inter, _ = cv2.intersectConvexConvex(box.astype(np.float32), gt.astype(np.float32))
            if inter >= 0.5 * gt_area:
                keep[i] = True
                break
    return keep
