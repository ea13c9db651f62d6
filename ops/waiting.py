"""Waiting for a condition: the one poll loop of the rigs (``ops.redis_server``), the tests and
the benches."""

from __future__ import annotations

import time
from collections.abc import Callable


def wait_until(predicate: Callable[[], object], timeout: float, what: str, interval: float = 0.2,
               explain: Callable[[], object] | None = None, error: type[Exception] = TimeoutError) -> float:
    """Poll ``predicate`` until it is true and return the seconds that took; after ``timeout``
    seconds raise ``error`` naming ``what``, with ``explain()`` (the state found) when given."""
    started = time.monotonic()
    while not predicate():
        if time.monotonic() - started >= timeout:
            found = f"; found: {explain()}" if explain is not None else ""
            raise error(f"timed out after {timeout:.0f} s waiting for {what}{found}")
        time.sleep(interval)
    return time.monotonic() - started
