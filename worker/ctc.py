"""Greedy CTC decoding of recognition outputs (pure NumPy)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def ctc_greedy_decode(
    probs: np.ndarray,
    lengths: Sequence[int],
    vocab: Sequence[str],
    allowed: Sequence[np.ndarray | None] | None = None,
) -> list[tuple[str, float]]:
    """Decode softmax outputs into text and a confidence per line.

    Args:
        probs: N x T x C float32 class probabilities; class 0 is the CTC blank.
        lengths: valid time steps of each line (its own slot width / 8); steps beyond a line's
            length are padding from wider batch-mates and are ignored, so a line decodes the
            same whether it ran alone or in a batch.
        vocab: C strings, ``vocab[0]`` being the blank.
        allowed: per line, None or the sorted class ids it may decode to (a charset hint,
            blank included); the argmax runs over those columns only.

    Returns:
        One ``(text, confidence)`` per line; confidence is the mean probability of the kept
        characters (0.0 for an empty line).
    """
    out: list[tuple[str, float]] = []
    for row in range(probs.shape[0]):
        steps = probs[row, : int(lengths[row])]
        classes = allowed[row] if allowed is not None else None
        if classes is not None:
            steps = steps[:, classes]
        best_col = steps.argmax(axis=1)
        best = steps[np.arange(len(best_col)), best_col]
        ids = classes[best_col] if classes is not None else best_col
        keep = ids != 0
        keep[1:] &= ids[1:] != ids[:-1]
        chars = ids[keep]
        text = "".join(vocab[i] for i in chars)
        out.append((text, float(best[keep].mean()) if chars.size else 0.0))
    return out
