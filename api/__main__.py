"""``batchocr-api``: serve the API with gunicorn (``OCR_API_WORKERS`` processes x
``OCR_API_THREADS`` threads), a production WSGI server; SIGTERM stops it gracefully."""

from __future__ import annotations

import argparse
import logging

from gunicorn.app.base import BaseApplication

from api import create_app
from shared import logs
from shared.entry import console_script
from shared.errors import EvictingRedisError
from shared.settings import Settings

logger = logging.getLogger("batchocr-api")


class GunicornServer(BaseApplication):
    """gunicorn run from Python with our app object and settings (no config file)."""

    def __init__(self, app, options: dict) -> None:
        self.application = app
        self.options = options
        super().__init__()

    def load_config(self) -> None:
        for key, value in self.options.items():
            self.cfg.set(key, value)

    def load(self):
        return self.application


@console_script("batchocr-api")
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="batchocr-api", description=__doc__)
    parser.add_argument("--log-level", default="INFO")
    args = parser.parse_args(argv)
    settings = Settings.from_env()
    logs.configure(args.log_level, settings.log_format)
    options = {
        "bind": settings.api_bind,
        "workers": settings.api_workers,
        "threads": settings.api_threads,
        "worker_class": "gthread",
        "timeout": 60,
        "graceful_timeout": 20,
        "loglevel": args.log_level.lower(),
        "accesslog": None,
    }
    try:
        app = create_app(settings)
    except EvictingRedisError as exc:
        logger.error("%s", exc.message)
        return 2
    GunicornServer(app, options).run()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
