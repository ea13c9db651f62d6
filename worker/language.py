"""Is a line English? The cheap test behind ``lang=auto``, run on a line's unrestricted reading.

A line reads as English when it has no CJK character and at least ``ENGLISH_SHARE`` of its words
(runs of two or more letters, any script) are in the English word list. Both tests err towards
"no": a line with one Chinese character, or with French, German or Malay words, keeps what the
recogniser read; only then is anything restricted. Measured on ../shared/eval (BENCHMARKS):
142 of 150 UW3 lines and 1 of 150 Chinese lines pass.
"""

from __future__ import annotations

import re

from worker.lexicon import Lexicon

ENGLISH_SHARE = 0.6
_WORDS = re.compile(r"[^\W\d_]{2,}")
# CJK radicals, punctuation, kana, ideographs (with extension A), Hangul, compatibility
# ideographs and full-width forms: scripts an English line never contains.
_CJK = re.compile("[\u2e80-\u9fff\uac00-\ud7af\uf900-\ufaff\uff00-\uffef]")


def reads_as_english(text: str, lexicon: Lexicon) -> bool:
    """True if ``text`` (one decoded line) has no CJK character and mostly English words."""
    if _CJK.search(text):
        return False
    words = _WORDS.findall(text)
    return bool(words) and sum(word in lexicon for word in words) >= ENGLISH_SHARE * len(words)
