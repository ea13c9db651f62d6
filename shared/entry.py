"""What every console script does with a problem its user fixes, not its developer: a bad
setting (ConfigError) or a Redis that does not answer is one line on stderr naming it, and an
exit status (2 and 3), instead of a traceback."""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable

import redis

from shared.errors import ConfigError

Main = Callable[[list[str] | None], int]


def console_script(prog: str) -> Callable[[Main], Main]:
    """Wrap an entry point's ``main(argv) -> int`` with the one-line errors above."""

    def wrap(main: Main) -> Main:
        @functools.wraps(main)
        def run(argv: list[str] | None = None) -> int:
            try:
                return main(argv)
            except ConfigError as exc:
                print(f"{prog}: {exc.message}", file=sys.stderr)
                return 2
            except (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError) as exc:
                print(f"{prog}: Redis did not answer ({type(exc).__name__}: {exc}); "
                      "is OCR_REDIS_URL (or REDIS_URL) right?", file=sys.stderr)
                return 3

        return run

    return wrap
