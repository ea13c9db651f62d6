"""Greedy CTC decoding of recognition outputs (pure NumPy)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def ctc_greedy_decode(
    probs: np.ndarray,
    lengths: Sequence[int],
    vocab: Sequence[str],
    masks: Sequence[np.ndarray | None] | None = None,
) -> list[tuple[str, float]]:
    """Decode softmax outputs into text and a confidence per line.

    Args:
        probs: N x T x C float32 class probabilities; class 0 is the CTC blank.
        lengths: valid time steps of each line (its own width / 8); steps beyond a line's
            length are padding from wider batch-mates and are ignored, so a line decodes the
            same whether it ran alone or in a batch.
        vocab: C strings, ``vocab[0]`` being the blank.
        masks: per line, None or C booleans of the classes it may decode to (a charset hint);
            other classes are zeroed before the argmax.

    Returns:
        One ``(text, confidence)`` per line; confidence is the mean probability of the kept
        characters (0.0 for an empty line).
    """
    if masks is not None and any(m is not None for m in masks):
        probs = probs.copy()
        for row, mask in enumerate(masks):
            if mask is not None:
                probs[row, :, ~mask] = 0.0
    ids = probs.argmax(axis=2)
    best = probs.max(axis=2)
    out: list[tuple[str, float]] = []
    for row, (line_ids, line_best) in enumerate(zip(ids, best)):
        n = int(lengths[row])
        line_ids, line_best = line_ids[:n], line_best[:n]
        keep = line_ids != 0
        keep[1:] &= line_ids[1:] != line_ids[:-1]
        chars = line_ids[keep]
        text = "".join(vocab[i] for i in chars)
        confidence = float(line_best[keep].mean()) if chars.size else 0.0
        out.append((text, confidence))
    return out
