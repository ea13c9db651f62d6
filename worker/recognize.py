"""Batched recognition: width-sorted chunks of line crops through one session call each."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from worker.ctc import ctc_greedy_decode
from worker.models import OcrModel
from worker.preprocess import REC_STRIDE, pad_stack, rec_normalize, rec_width


def plan_chunks(widths: Sequence[int], budget: int) -> list[list[int]]:
    """Group line indices into chunks, narrowest first, so that lines x widest <= budget.

    Sorting by width keeps padding small (lines in a chunk pad to its widest); the budget
    bounds the memory one session call can take.
    """
    chunks: list[list[int]] = []
    for idx in sorted(range(len(widths)), key=lambda i: widths[i]):
        if chunks and (len(chunks[-1]) + 1) * widths[idx] <= budget:
            chunks[-1].append(idx)
        else:
            chunks.append([idx])
    return chunks


def recognize_lines(
    model: OcrModel, crops: Sequence[np.ndarray], *, max_width: int, budget: int
) -> list[tuple[str, float]]:
    """Recognise BGR line crops; returns one ``(text, confidence)`` per crop, in input order."""
    height = model.spec.rec_height
    widths = [rec_width(crop.shape, height, max_width) for crop in crops]
    results: list[tuple[str, float]] = [("", 0.0)] * len(crops)
    for chunk in plan_chunks(widths, budget):
        tensors = [rec_normalize(crops[i], height, widths[i]) for i in chunk]
        probs = model.rec(pad_stack(tensors, max(widths[i] for i in chunk)))
        steps = [widths[i] // REC_STRIDE for i in chunk]
        for i, decoded in zip(chunk, ctc_greedy_decode(probs, steps, model.vocab)):
            results[i] = decoded
    return results
