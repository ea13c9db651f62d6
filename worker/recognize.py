"""Batched recognition: width-sorted chunks of line crops through one session call each."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from worker.ctc import Hint, ctc_greedy_decode
from worker.model_loading import OcrModel
from worker.preprocess import REC_STRIDE, pad_stack, rec_normalize, rec_width


def plan_chunks(widths: Sequence[int], budget: int, pad_slack: float) -> list[list[int]]:
    """Group line indices into chunks, narrowest first, each padded to its widest line.

    A chunk takes the next (wider) line while ``lines x widest <= budget`` (memory bound) and
    the padded area stays within ``1 + pad_slack`` times the lines' own area. Recognition cost
    on CPU grows with padded pixels and batching itself saves little per line, so padding a
    short line to a long one costs more than a second session call.
    """
    chunks: list[list[int]] = []
    area = 0
    for idx in sorted(range(len(widths)), key=lambda i: widths[i]):
        width = widths[idx]
        if chunks:
            lines = len(chunks[-1]) + 1
            if lines * width <= budget and lines * width <= (1 + pad_slack) * (area + width):
                chunks[-1].append(idx)
                area += width
                continue
        chunks.append([idx])
        area = width
    return chunks


def recognize_lines(
    model: OcrModel,
    crops: Sequence[np.ndarray],
    *,
    max_width: int,
    budget: int,
    pad_slack: float,
    hints: Sequence[Hint] | None = None,
    tail_pad: int = 0,
    width_scale: float = 1.0,
) -> list[tuple[str, float]]:
    """Recognise BGR line crops; returns one ``(text, confidence)`` per crop, in input order.

    ``hints`` (optional, one per crop) say how each line is decoded: a character set, a
    lexicon, English detection (``worker.ctc.Hint``).
    ``tail_pad`` px of blank (zero) input follow every line and are decoded with it: the
    recogniser needs right context to emit the last characters, so without it line ends are
    clipped when the line runs alone and read when a wider batch-mate pads it.
    ``width_scale`` scales each line's width at the model's height (see ``rec_width``).
    """
    height = model.spec.rec_height
    widths = [rec_width(crop.shape, height, max_width, width_scale) for crop in crops]
    tail = -(-tail_pad // REC_STRIDE) * REC_STRIDE
    slots = [width + tail for width in widths]
    results: list[tuple[str, float]] = [("", 0.0)] * len(crops)
    for chunk in plan_chunks(slots, budget, pad_slack):
        tensors = [rec_normalize(crops[i], height, widths[i]) for i in chunk]
        probs = model.rec(pad_stack(tensors, max(slots[i] for i in chunk)))
        steps = [slots[i] // REC_STRIDE for i in chunk]
        chunk_hints = [hints[i] for i in chunk] if hints is not None else None
        for i, decoded in zip(chunk, ctc_greedy_decode(probs, steps, model.vocab, chunk_hints)):
            results[i] = decoded
    return results
