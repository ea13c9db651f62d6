"""Character-set hints a job may give (``lang`` option): names and the characters each allows.

PP-OCR recognisers read Chinese and Latin text with one 18,710-class vocabulary. On English
documents that breadth costs accuracy: rows of asterisks or dots on receipts come out as CJK
characters, and dashes or letters come out with stray diacritics. The worker masks the classes
outside the hint's set before the CTC argmax.

- ``all``: every class, as read.
- ``en``: printable ASCII, for a job the user knows is English.
- ``auto`` (the default, ``OCR_DEFAULT_LANG``): every line is read with every class first; a
  line with no CJK character whose words are mostly English is then read as English, with the
  currency, degree and math signs English text uses kept. A line with any CJK character is
  never restricted, so mixed Chinese and English documents lose nothing.
"""

from __future__ import annotations

import string

ASCII = frozenset(string.ascii_letters + string.digits + string.punctuation + " ")
# Signs English documents print that are not ASCII; 'auto' keeps them (the user did not ask for
# ASCII), 'en' does not (SROIE CER is a little lower without them; docs/BENCHMARKS.md).
SIGNS = frozenset("£€¥¢°±×©®µ")

# 'en' is printable ASCII: typographic dashes and quotes decode to their ASCII forms. Measured
# on ../shared/eval (docs/BENCHMARKS.md): CER on UW3 and SROIE is lower than with them allowed.
CHARSETS: dict[str, frozenset[str]] = {"en": ASCII, "auto": ASCII | SIGNS}
LANGS = ("all", "en", "auto")
DEFAULT = "auto"
