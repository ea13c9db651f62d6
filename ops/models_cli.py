"""``batchocr-models``: list the model versions, start a canary, roll it back.

    batchocr-models list
    batchocr-models canary ppocrv6-small-int8 10     # 10 % of unversioned jobs, the rest default
    batchocr-models rollback                         # every unversioned job to the default again

The split is stored in Redis (``OCR_REDIS_URL``): API processes apply it to the next job,
without a restart.
"""

from __future__ import annotations

import argparse
import json
import sys


from shared import canary, redis_connection
from shared.entry import console_script
from shared.errors import BatchOcrError
from shared.settings import Settings


@console_script("batchocr-models")
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="batchocr-models", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("list", help="versions, installed or not, and the canary split")
    start = sub.add_parser("canary", help="send PERCENT of unversioned jobs to VERSION")
    start.add_argument("version")
    start.add_argument("percent", type=float)
    sub.add_parser("rollback", help="remove the canary split")
    args = parser.parse_args(argv)
    try:
        settings = Settings.from_env()
        connection = redis_connection.connect(settings, socket_connect_timeout=3, socket_timeout=5)
        if args.command == "canary":
            canary.set_canary(connection, settings, args.version, args.percent)
        elif args.command == "rollback":
            canary.rollback(connection)
        print(json.dumps(canary.describe(connection, settings), indent=1))
        return 0
    except BatchOcrError as exc:
        print(f"batchocr-models: {exc.message}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
