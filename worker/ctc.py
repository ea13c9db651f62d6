"""Greedy CTC decoding of recognition outputs (pure NumPy), with an optional English lexicon
pass for lines that carry the ``en`` hint (``worker.lexicon``)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from worker.lexicon import Lexicon, correct


def ctc_greedy_decode(
    probs: np.ndarray,
    lengths: Sequence[int],
    vocab: Sequence[str],
    allowed: Sequence[np.ndarray | None] | None = None,
    lexicons: Sequence[Lexicon | None] | None = None,
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
        lexicons: per line, None or a lexicon whose near-ties with the greedy reading are
            resolved (only for lines with ``allowed`` columns).

    Returns:
        One ``(text, confidence)`` per line; confidence is the mean probability of the kept
        characters (0.0 for an empty line).
    """
    out: list[tuple[str, float]] = []
    characters: dict[int, list[str]] = {}  # per allowed-column set: each column's character
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
        lexicon = lexicons[row] if lexicons is not None and classes is not None else None
        if lexicon is not None and chars.size:
            if id(classes) not in characters:
                characters[id(classes)] = [vocab[i] for i in classes]
            text = correct(text, steps, best_col, characters[id(classes)], lexicon)
        out.append((text, float(best[keep].mean()) if chars.size else 0.0))
    return out
