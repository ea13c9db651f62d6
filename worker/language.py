"""Is a line English? The cheap test behind ``lang=auto``, run on a line's unrestricted reading.

A line reads as English when it has no CJK character, no letter beyond ASCII (an accent is
what restricting the line to ASCII would take away: French "présentation" would pass the word
test as "presentation"), and at least ``ENGLISH_SHARE`` of its words (runs of two or more
letters, any script) are in the English word list. The tests err towards "no": a line with one
Chinese character or one accented letter, or with French, German or Malay words, keeps what the
recogniser read; only then is anything restricted. Measured on ../shared/eval (BENCHMARKS):
142 of 150 UW3 lines and 1 of 150 Chinese lines passed before the accent test was added, which
costs UW3 two edits and saves French typescripts 126.
"""

from __future__ import annotations

import re

from worker.lexicon import Lexicon

ENGLISH_SHARE = 0.6
_WORDS = re.compile(r"[^\W\d_]{2,}")
# CJK radicals, punctuation, kana, ideographs (with extension A), Hangul, compatibility
# ideographs and full-width forms: scripts an English line never contains.
_CJK = re.compile("[\u2e80-\u9fff\uac00-\ud7af\uf900-\ufaff\uff00-\uffef]")
# Any letter outside ASCII: accented Latin, Greek, Cyrillic, ...
_FOREIGN_LETTER = re.compile(r"[^\W\d_a-zA-Z]")


def reads_as_english(text: str, lexicon: Lexicon) -> bool:
    """True if ``text`` (one decoded line) has no CJK character, no non-ASCII letter and
    mostly English words."""
    if _CJK.search(text) or _FOREIGN_LETTER.search(text):
        return False
    words = _WORDS.findall(text)
    return bool(words) and sum(word in lexicon for word in words) >= ENGLISH_SHARE * len(words)
