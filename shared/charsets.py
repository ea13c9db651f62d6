"""Character-set hints a job may give (``lang`` option): names and the characters each allows.

PP-OCR recognisers read Chinese and Latin text with one 18,710-class vocabulary. On English
documents that breadth costs accuracy: rows of asterisks or dots on receipts come out as CJK
characters. The worker masks the classes outside the hint's set before the CTC argmax.
"""

from __future__ import annotations

import string

# 'en' is printable ASCII: typographic dashes and quotes decode to their ASCII forms. Measured
# on ../shared/eval (docs/BENCHMARKS.md): CER on UW3 and SROIE is lower than with them allowed.
CHARSETS: dict[str, frozenset[str]] = {
    "en": frozenset(string.ascii_letters + string.digits + string.punctuation + " "),
}
LANGS = ("", *CHARSETS)
