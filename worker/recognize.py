"""Batched recognition: chunks of equally wide line crops through one session call each.

A line's input is its own crop, its tail pad and blank up to its width bucket, never padding
for a wider batch-mate, so its text and confidence do not depend on the batch it is in."""

from __future__ import annotations

import contextlib
from collections.abc import Sequence

import numpy as np

from worker.ctc import Hint, Reading, ctc_greedy_decode
from worker.model_loading import OcrModel
from worker.preprocess import REC_STRIDE, pad_stack, rec_normalize, rec_width


def plan_chunks(widths: Sequence[int], budget: int) -> list[list[int]]:
    """Group line indices into chunks of one width each, narrowest first, ``lines x width <=
    budget`` (memory bound; a line wider than the budget runs alone), each chunk a power of two
    lines (7 lines of one width run as 4 + 2 + 1).

    Lines share a session call only with lines of their own padded width, so no line is padded
    for a batch-mate: the recogniser's global mixing sees the same input whatever the batch, and
    a line reads the same alone or among any others (batch invariance). Power-of-two chunk
    sizes make input shapes recur (at most 1 + log2(budget / width) per width), which is what
    a backend that compiles per shape needs (OpenVINO: ~0.15 s the first time it meets a shape,
    docs/BENCHMARKS.md). Recognition cost on CPU grows with pixels and batching itself saves
    little per line, so more, narrower calls cost little.
    """
    chunks: list[list[int]] = []
    order = sorted(range(len(widths)), key=lambda i: (widths[i], i))
    start = 0
    while start < len(order):
        width = widths[order[start]]
        end = start
        while end < len(order) and widths[order[end]] == width:
            end += 1
        while start < end:
            size = _power_of_two_at_most(min(end - start, max(1, budget // max(1, width))))
            chunks.append(order[start:start + size])
            start += size
    return chunks


def _power_of_two_at_most(n: int) -> int:
    """The largest power of two <= ``n`` (n >= 1)."""
    return 1 << (n.bit_length() - 1)


def slot_width(width: int, tail: int, bucket: int) -> int:
    """A line's padded input width: its own ``width`` plus ``tail`` px, rounded up to a multiple
    of ``bucket`` (lines of similar width then share a call)."""
    return -(-(width + tail) // bucket) * bucket


def recognize_lines(
    model: OcrModel,
    crops: Sequence[np.ndarray],
    *,
    max_width: int,
    budget: int,
    bucket: int = REC_STRIDE,
    hints: Sequence[Hint] | None = None,
    tail_pad: int = 0,
    width_scale: float = 1.0,
) -> list[Reading]:
    """Recognise BGR line crops; returns one ``Reading`` (text, confidence, word spans) per
    crop, in input order.

    ``hints`` (optional, one per crop) say how each line is decoded: a character set, a
    lexicon, English detection (``worker.ctc.Hint``).
    ``tail_pad`` px of blank (zero) input follow every line and are decoded with it: the
    recogniser needs right context to emit the last characters: without it, the end of a line
    whose width fills its bucket is clipped.
    ``width_scale`` scales each line's width at the model's height (see ``rec_width``).
    ``bucket`` (a multiple of ``REC_STRIDE``): line input widths, tail included, are rounded
    up to a multiple of it (``slot_width``), so lines
    of similar width share a call; a line's input and reading never depend on its batch-mates.
    """
    height = model.spec.rec_height
    widths = [rec_width(crop.shape, height, max_width, width_scale) for crop in crops]
    slots = [slot_width(width, tail_pad, bucket) for width in widths]
    results: list[Reading] = [Reading("", 0.0)] * len(crops)
    chunks = spread(plan_chunks(slots, budget), model.rec.streams)
    batches = (pad_stack([rec_normalize(crops[i], height, widths[i]) for i in chunk], slots[chunk[0]])
               for chunk in chunks)
    with contextlib.closing(model.rec.map(batches)) as outputs:  # nothing left running if decoding fails
        for chunk, probs in zip(chunks, outputs):
            steps = [slots[i] // REC_STRIDE for i in chunk]
            chunk_hints = [hints[i] for i in chunk] if hints is not None else None
            own = [widths[i] / REC_STRIDE for i in chunk]
            for i, decoded in zip(chunk, ctc_greedy_decode(probs, steps, model.vocab, chunk_hints, own)):
                results[i] = decoded
    return results


def spread(chunks: list[list[int]], streams: int) -> list[list[int]]:
    """Fewer chunks than the recogniser has streams leave streams idle: halve the largest
    (powers of two stay powers of two) until every stream has one or no chunk has 2 lines."""
    chunks = list(chunks)
    while len(chunks) < streams:
        largest = max(range(len(chunks)), key=lambda i: len(chunks[i]), default=None)
        if largest is None or len(chunks[largest]) < 2:
            break
        chunk = chunks.pop(largest)
        half = len(chunk) // 2
        chunks[largest:largest] = [chunk[:half], chunk[half:]]
    return chunks
