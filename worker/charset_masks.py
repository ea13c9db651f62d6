"""Decoding restrictions for a job's character-set hint (the sets live in ``shared.charsets``).

The model still runs once for the whole batch; each line is decoded with its own job's mask.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from shared.charsets import CHARSETS


def allowed_classes(vocab: Sequence[str], lang: str) -> np.ndarray | None:
    """Sorted ids of the classes ``lang`` allows ('' or 'all': None, every class); always the
    blank (0). For 'auto' these are the classes a line found to be English is decoded with."""
    if lang in ("", "all"):
        return None
    charset = CHARSETS[lang]
    return np.array([0, *(i for i, token in enumerate(vocab) if i and token in charset)], dtype=np.int64)
