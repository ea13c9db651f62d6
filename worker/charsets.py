"""Decoding masks for a job's character-set hint (the sets live in ``shared.charsets``).

The model still runs once for the whole batch; each line is decoded with its own job's mask.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from shared.charsets import CHARSETS


def allowed_mask(vocab: Sequence[str], lang: str) -> np.ndarray | None:
    """C booleans, True where ``vocab[i]`` is allowed for ``lang`` ('' = all: returns None).

    The CTC blank (index 0) is always allowed.
    """
    if not lang:
        return None
    charset = CHARSETS[lang]
    mask = np.fromiter((token in charset for token in vocab), dtype=bool, count=len(vocab))
    mask[0] = True
    return mask
