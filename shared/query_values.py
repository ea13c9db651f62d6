"""Numbers in query strings, read strictly: ASCII digits only (no ``1_0``, no ``١``, no
``1e3``), a bounded length before any conversion (Python refuses to convert past 4,300 digits),
and a range; anything else is a BadOptionError naming the parameter and its range (HTTP 400)."""

from __future__ import annotations

import re

from shared.errors import BadOptionError

_WHOLE = re.compile(r"[0-9]{1,12}")
_SECONDS = re.compile(r"[0-9]{1,6}(\.[0-9]{1,6})?")


def whole_number(raw: object, name: str, low: int, high: int) -> int:
    """``raw`` as an int in ``low..high``."""
    text = str(raw)
    if not _WHOLE.fullmatch(text) or not low <= int(text) <= high:
        raise BadOptionError(f"{name} must be a whole number {low}..{high}; got {text[:16]!r}")
    return int(text)


def seconds(raw: object, name: str, high: float) -> float:
    """``raw`` (``5``, ``0.25``) as seconds in ``0..high``; empty is 0."""
    text = str(raw)
    if text == "":
        return 0.0
    if not _SECONDS.fullmatch(text) or not 0 <= float(text) <= high:
        raise BadOptionError(f"{name} must be a number of seconds 0..{high:g}; got {text[:16]!r}")
    return float(text)
