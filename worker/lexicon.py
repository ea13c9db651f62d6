"""English word correction for lines read as English (the ``en`` hint, or lines ``auto`` finds
English), scored by the recogniser.

Greedy CTC takes the likeliest class at every step. Where that spells a lowercase token that
is not English ("quatemions", "ff"), a known word in mostly-capital irregular case ("KuHN"), or
a full stop before a lowercase word ("Thomas. and"), the reading the recogniser rated second is
often the printed one. For such tokens, alternatives are scored with the CTC forward algorithm
over the token's own time steps, and one replaces the greedy reading only when the recogniser
rates it at least ``1 / PRIOR`` times as likely: the dictionary breaks near-ties, it does not
overrule a confident reading. Capitalised and all-capital tokens (names, codes: "Smyth", "BHD"),
mixed-case words ("pH", "iPhone"), numbers, and abbreviations before a lowercase word ("et al.
reported") are never changed; nor is the line's spacing.

Words and frequencies come from pyspellchecker's English list (MIT, ~160k words).
"""

from __future__ import annotations

import functools
import math
import re
import threading
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from rapidfuzz import process
from rapidfuzz.distance import Levenshtein

# An English word (or a comma before a lowercase word) is this many times likelier a priori
# than the string greedy decoding spelled; the recogniser's own odds must make up the rest.
PRIOR = 10.0
# Tokens whose every step is at least this sure have no near-tie to resolve (speed gate).
SURE = 0.9
NEAR_CACHE = 10_000
NEAR_LIMIT = 20
# A full stop after these is an abbreviation's, even before a lowercase word.
ABBREVIATIONS = frozenset(
    "al approx ca cf ch co dept dr eq eqs esp et etc fig figs inc jr ltd mr mrs ms no nos pg pp "
    "prof ref refs resp sec sr st vol vols vs viz".split()
)
_WORD = re.compile(r"^([^A-Za-z]*)([A-Za-z]+)([^A-Za-z]*)$")
_PUNCT_OK = frozenset("\"'()[]{},.;:!?")


@dataclass(frozen=True)
class Token:
    """A space-separated run of decoded characters, its time steps [start, end) and where it
    begins in the decoded line (``offset``, characters)."""

    text: str
    start: int
    end: int
    offset: int


class Lexicon:
    """English words by length, with counts (ties go to the commoner word); built once per
    worker process (``english()``)."""

    def __init__(self, counts: dict[str, int]) -> None:
        self.counts = counts
        self.by_length: dict[int, list[str]] = {}
        for word in counts:
            self.by_length.setdefault(len(word), []).append(word)
        self._pools: dict[tuple[int, int], list[str]] = {}
        self._near: dict[str, list[str]] = {}  # answers for recent words (receipts repeat theirs)

    def __contains__(self, word: str) -> bool:
        return word.lower() in self.counts

    def count(self, text: str) -> int:
        """How common the word in ``text`` is (punctuation and case ignored; 0 = unknown)."""
        return self.counts.get("".join(ch for ch in text.lower() if ch.isalpha()), 0)

    def near(self, word: str) -> list[str]:
        """Known words within edit distance 1 (words up to 4 letters) or 2 of ``word``."""
        word = word.lower()
        cached = self._near.get(word)
        if cached is not None:
            return cached
        limit = 1 if len(word) <= 4 else 2
        key = (len(word), limit)
        if key not in self._pools:  # words of a length within reach, listed once per length
            lengths = range(len(word) - limit, len(word) + limit + 1)
            self._pools[key] = [w for n in lengths for w in self.by_length.get(n, ())]
        found = process.extract(word, self._pools[key], scorer=Levenshtein.distance, score_cutoff=limit,
                                limit=NEAR_LIMIT)
        words = [w for w, _, _ in found]
        if len(self._near) >= NEAR_CACHE:
            self._near.clear()
        self._near[word] = words
        return words


_LOADING = threading.Lock()


@functools.lru_cache(maxsize=1)
def _english() -> Lexicon:
    from spellchecker import SpellChecker

    return Lexicon(dict(SpellChecker(language="en", distance=1).word_frequency.dictionary))


def english() -> Lexicon:
    """The English lexicon, loaded on first use (about 0.3 s) and shared by the process."""
    with _LOADING:
        return _english()


def ctc_log_likelihood(logp: np.ndarray, labels: Sequence[int]) -> float:
    """log P(labels | steps) summed over all CTC alignments.

    ``logp``: T x C log-probabilities, column 0 the blank; ``labels``: column ids (no blanks).
    """
    states = np.zeros(2 * len(labels) + 1, dtype=np.int64)
    states[1::2] = labels
    # A state may skip the blank before it when its label differs from the one two back.
    skip = np.zeros(len(states), dtype=bool)
    skip[3::2] = np.asarray(labels[1:]) != np.asarray(labels[:-1]) if len(labels) > 1 else []
    alpha = np.full(len(states), -np.inf)
    alpha[0] = logp[0, 0]
    if len(labels):
        alpha[1] = logp[0, states[1]]
    for t in range(1, logp.shape[0]):
        prev = alpha.copy()
        shifted = np.concatenate(([-np.inf], prev[:-1]))
        skipped = np.where(skip, np.concatenate(([-np.inf, -np.inf], prev[:-2])), -np.inf)
        alpha = np.logaddexp(np.logaddexp(prev, shifted), skipped) + logp[t, states]
    tail = alpha[-2:] if len(labels) else alpha[-1:]
    return float(np.logaddexp.reduce(tail))


def tokens(path: np.ndarray, space: int, chars: Sequence[str]) -> list[Token]:
    """Split a greedy path (T column ids, 0 = blank) into space-separated tokens with spans.

    ``chars[c]`` is column ``c``'s character. A token spans from the step after the previous
    space's last step to the step before the next space.
    """
    found: list[Token] = []
    text, start, t, offset = "", 0, 0, 0
    while t < len(path):
        column = int(path[t])
        run_end = t
        while run_end + 1 < len(path) and path[run_end + 1] == column:
            run_end += 1
        if column == space:
            if text:
                found.append(Token(text, start, t, offset - len(text)))
            text, start = "", run_end + 1
            offset += 1
        elif column:
            text += chars[column]
            offset += 1
        t = run_end + 1
    if text:
        found.append(Token(text, start, len(path), offset - len(text)))
    return found


def correct(text: str, probs: np.ndarray, path: np.ndarray, chars: Sequence[str], lexicon: Lexicon) -> str:
    """``text`` (the greedy reading of one line) with its near-tie tokens resolved.

    ``probs``: T x C' probabilities over the allowed columns (0 = blank), ``path``: the greedy
    column per step, ``chars``: the character of each column (``chars[0]`` unused). A
    vocabulary that repeats a character, or has no space, is left alone.
    """
    column = {ch: c for c, ch in enumerate(chars) if c}
    if " " not in column or len(column) != len(chars) - 1:
        return text
    found = tokens(path, column[" "], chars)
    texts = [token.text for token in found]
    for i, token in enumerate(found):
        step_probs = probs[token.start : token.end]
        if not len(step_probs) or step_probs.max(axis=1).min() >= SURE:
            continue
        following = texts[i + 1] if i + 1 < len(texts) else ""
        options = alternatives(token.text, following, lexicon)
        options = [o for o in options if all(ch in column for ch in o)]
        if not options:
            continue
        logp = np.log(np.maximum(step_probs, 1e-12))
        greedy = ctc_log_likelihood(logp, [column[ch] for ch in token.text])
        scored = [(ctc_log_likelihood(logp, [column[ch] for ch in o]), lexicon.count(o), o) for o in options]
        score, _, best = max(scored)
        if score >= greedy - math.log(PRIOR):
            texts[i] = best
    for token, new in sorted(zip(found, texts), key=lambda pair: -pair[0].offset):
        if new != token.text:
            text = text[: token.offset] + new + text[token.offset + len(token.text) :]
    return text


def alternatives(token: str, following: str, lexicon: Lexicon) -> list[str]:
    """Readings of ``token`` a reader of English would expect instead, or [] if it looks fine."""
    match = _WORD.match(token)
    if match is None:
        return []
    head, word, tail = match.groups()
    if not set(head + tail) <= _PUNCT_OK:
        return []
    options: list[str] = []
    if tail == "." and len(word) > 1 and word.lower() not in ABBREVIATIONS and following[:1].islower():
        options.append(f"{head}{word},")
    if _capitals_slipped(word) and word in lexicon:
        options.append(f"{head}{word.upper()}{tail}")
    elif word.islower() and len(word) > 1 and word not in lexicon:
        options += [f"{head}{known}{tail}" for known in lexicon.near(word)]
    return options


def _capitals_slipped(word: str) -> bool:
    """A word of capitals with a lowercase letter or two among them ("KuHN", not "PhD", "pH")."""
    upper = sum(ch.isupper() for ch in word)
    return len(word) >= 4 and not word.istitle() and upper > len(word) - upper > 0
