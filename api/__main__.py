"""``batchocr-api``: serve the API (Werkzeug's threaded server; use gunicorn in production)."""

from __future__ import annotations

import argparse
import logging

from werkzeug.serving import run_simple

from api import create_app
from shared.settings import Settings


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="batchocr-api", description=__doc__)
    parser.add_argument("--log-level", default="INFO")
    args = parser.parse_args(argv)
    logging.basicConfig(level=args.log_level, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    logging.getLogger("werkzeug").setLevel(args.log_level)
    settings = Settings.from_env()
    run_simple(settings.api_host, settings.api_port, create_app(settings), threaded=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
