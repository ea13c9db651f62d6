"""Greedy CTC decoding of recognition outputs (pure NumPy), with each line's charset hint: a
class mask, an English lexicon pass (``worker.lexicon``), and for ``lang=auto`` the choice,
per line, between the unrestricted reading and the English one (``worker.language``)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from worker.language import reads_as_english
from worker.lexicon import Lexicon, correct
from worker.words import Span, spans


@dataclass(frozen=True)
class Hint:
    """How one line is decoded.

    ``classes``: None (every class) or the sorted class ids the line may decode to, blank
    included. ``lexicon``: resolves near-ties in the words of a line decoded over ``classes``.
    ``detect``: None, or the word list that decides whether the line is English: the line is
    decoded over every class first, and over ``classes`` (with ``lexicon``) only if it is.
    """

    classes: np.ndarray | None = None
    lexicon: Lexicon | None = None
    detect: Lexicon | None = None


NO_HINT = Hint()


class Reading(NamedTuple):
    """One line as read: its text, the mean probability of its characters (0.0 for an empty
    line) and its words' spans along the crop (``worker.words``)."""

    text: str
    confidence: float
    words: tuple[Span, ...] = ()


def ctc_greedy_decode(
    probs: np.ndarray,
    lengths: Sequence[int],
    vocab: Sequence[str],
    hints: Sequence[Hint] | None = None,
    widths: Sequence[float] | None = None,
) -> list[Reading]:
    """Decode softmax outputs into text, a confidence and word spans per line.

    Args:
        probs: N x T x C float32 class probabilities; class 0 is the CTC blank.
        lengths: valid time steps of each line (its own slot width / 8); steps beyond a line's
            length are padding and are ignored (``worker.recognize`` pads no line for a
            batch-mate, so they are none there).
        vocab: C strings, ``vocab[0]`` being the blank.
        hints: per line, how to decode it (default: every class, no lexicon).
        widths: per line, the steps its own crop fills (its resized width / stride; the rest
            of ``lengths`` is tail pad): what word spans are fractions of (default: lengths).

    Returns:
        One ``Reading`` per line; confidence is the mean probability of the kept characters.
    """
    characters: dict[int, list[str]] = {}  # per allowed-column set: each column's character
    separators = _separators(vocab)
    out = []
    for row in range(probs.shape[0]):
        steps = probs[row, : int(lengths[row])]
        width = float(widths[row]) if widths is not None else float(lengths[row])
        hint = hints[row] if hints is not None else NO_HINT
        if hint.detect is not None:
            read = _decode(steps, None, vocab, None, characters, (separators, width))
            if not reads_as_english(read.text, hint.detect):
                out.append(read)
                continue
        out.append(_decode(steps, hint.classes, vocab, hint.lexicon, characters, (separators, width)))
    return out


_SEPARATORS: dict[int, tuple[Sequence[str], frozenset[int]]] = {}


def _separators(vocab: Sequence[str]) -> frozenset[int]:
    """The class ids of whitespace characters (PP-OCR's space; any other a vocabulary has),
    which separate words as ``str.split`` does; found once per vocabulary."""
    known = _SEPARATORS.get(id(vocab))
    if known is None or known[0] is not vocab:
        known = (vocab, frozenset(i for i, ch in enumerate(vocab) if i and ch.isspace()))
        _SEPARATORS[id(vocab)] = known
    return known[1]


def _decode(steps: np.ndarray, classes: np.ndarray | None, vocab: Sequence[str], lexicon: Lexicon | None,
            characters: dict[int, list[str]], layout: tuple[frozenset[int], float]) -> Reading:
    """One line's T x C steps, argmax over ``classes`` (None: all), then the lexicon pass
    (which changes words, never how many); ``layout``: the whitespace ids and the crop's width."""
    if classes is not None:
        steps = steps[:, classes]
    best_col = steps.argmax(axis=1)
    best = steps[np.arange(len(best_col)), best_col]
    ids = classes[best_col] if classes is not None else best_col
    keep = ids != 0
    keep[1:] &= ids[1:] != ids[:-1]
    chars = ids[keep]
    text = "".join(vocab[i] for i in chars)
    if lexicon is not None and classes is not None and chars.size:
        if id(classes) not in characters:
            characters[id(classes)] = [vocab[i] for i in classes]
        text = correct(text, steps, best_col, characters[id(classes)], lexicon)
    confidence = float(best[keep].mean()) if chars.size else 0.0
    return Reading(text, confidence, spans(ids, best, *layout))
