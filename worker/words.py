"""Word boxes from the recogniser's own alignment.

A CTC recogniser emits each character at the time steps where it sees it: step ``t`` covers
input columns ``[t * REC_STRIDE, (t + 1) * REC_STRIDE)`` of the line crop resized to the
model's height. A character's run of steps sits on the character, so a word reaches from its
first character's centre less ``LEAD`` character pitches (the line's median distance between
neighbouring characters' centres) to its last one's plus ``TRAIL``, never past a neighbouring
word's edge. The spans are fractions of the crop's width, placed on the line's
quad afterwards: where the crop was turned (tall lines read along their height, lines read
upside down), the fractions turn with it.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass

import numpy as np

from shared.document import Word

# Pitches a word starts before its first character's run centre and ends after its last one's.
# The recogniser emits a character slightly past its centre, so the lead is the longer: 0.75 /
# 0.5 placed words better than 0.5 / 0.5 on every dev page set, 1.0 / 0.5 worse on receipts
# (docs/BENCHMARKS.md, "Word boxes from the recogniser").
LEAD = 0.75
TRAIL = 0.5


@dataclass(frozen=True)
class Span:
    """One word of a line's reading: ``start`` and ``end`` are fractions (0..1) of the line
    crop's width, in reading direction; ``confidence``: the mean probability of its characters
    (as the line's confidence is of all of them)."""

    start: float
    end: float
    confidence: float


def spans(ids: np.ndarray, best: np.ndarray, separators: Collection[int], width: float) -> tuple[Span, ...]:
    """The words of one greedy CTC path, in reading order.

    Args:
        ids: T class ids per time step (0 = blank), over the model's whole vocabulary.
        best: T probabilities of those ids.
        separators: the class ids of whitespace (the space): what separates words.
        width: the crop's own width in steps (its resized width / REC_STRIDE); steps past it
            are the tail pad, where a line's last character may still be emitted.
    """
    runs = _runs(ids)
    if not runs:
        return ()
    centres = np.asarray([(first + last + 1) / 2 for _, first, last in runs], np.float64)
    pitch = float(np.median(np.diff(centres))) if len(runs) > 1 else float(width)
    words: list[list[int]] = [[]]
    for k, (cls, _, _) in enumerate(runs):
        if cls in separators:
            words.append([])
        else:
            words[-1].append(k)
    bounds, found = [], []
    for members in (w for w in words if w):
        bounds.append([centres[members[0]] - pitch * LEAD, centres[members[-1]] + pitch * TRAIL])
        found.append(float(np.mean([best[runs[k][1]] for k in members])))
    for left, right in zip(bounds, bounds[1:]):  # neighbours meet, never overlap
        if left[1] > right[0]:
            left[1] = right[0] = (left[1] + right[0]) / 2
    scale = max(float(width), 1e-6)
    return tuple(Span(min(max(a / scale, 0.0), 1.0), min(max(b / scale, 0.0), 1.0), conf)
                 for (a, b), conf in zip(bounds, found))


def _runs(ids: np.ndarray) -> list[tuple[int, int, int]]:
    """``(class, first step, last step)`` of each run of one non-blank class."""
    if not len(ids):
        return []
    change = np.flatnonzero(np.diff(ids)) + 1
    starts = np.concatenate(([0], change))
    ends = np.concatenate((change, [len(ids)])) - 1
    return [(int(ids[s]), int(s), int(e)) for s, e in zip(starts, ends) if ids[s] != 0]


def mirrored(found: Sequence[Span]) -> tuple[Span, ...]:
    """The spans of a reading of the crop turned 180 degrees, in the unturned crop's frame."""
    return tuple(Span(1.0 - span.end, 1.0 - span.start, span.confidence) for span in found)


def line_words(text: str, found: Sequence[Span], quad: np.ndarray, along_height: bool) -> tuple[Word, ...]:
    """A line's words placed on its quad (4 x 2 corners, clockwise from where the text
    starts, as ``crop_quad`` cut it); ``along_height``: the crop was turned a quarter (a tall
    line), so its width ran from the quad's first edge to its third. No words where the text's
    words do not pair one to one with the spans (a vocabulary without a space)."""
    names = text.split()
    if not names or len(names) != len(found):
        return ()
    quad = np.asarray(quad, np.float64)
    return tuple(Word(name, round(span.confidence, 4), _corners(quad, span, along_height))
                 for name, span in zip(names, found))


def _corners(quad: np.ndarray, span: Span, along_height: bool) -> tuple[tuple[int, int], ...]:
    """The part of ``quad`` between fractions ``span.start`` and ``span.end`` of its reading
    axis, corners in the quad's own order."""
    def point(u: float, v: float) -> tuple[int, int]:
        top = quad[0] + (quad[1] - quad[0]) * u
        bottom = quad[3] + (quad[2] - quad[3]) * u
        x, y = top + (bottom - top) * v
        return round(float(x)), round(float(y))

    a, b = span.start, span.end
    if along_height:
        return point(0, a), point(1, a), point(1, b), point(0, b)
    return point(a, 0), point(b, 0), point(b, 1), point(a, 1)
