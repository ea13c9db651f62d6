"""``batchocr-health api|worker``: container health checks (exit 0 = healthy).

``api``: ``GET /healthz`` on the local API answers ok (which pings Redis). ``worker``: Redis
answers and an rq worker of this host (its hostname) is registered, i.e. the worker process
has loaded its models and is in its loop.
"""

from __future__ import annotations

import argparse
import json
import socket
import sys
import urllib.request

from redis import Redis
from rq import Worker

from shared.settings import Settings


def api_ok(url: str, timeout: float = 3) -> bool:
    try:
        with urllib.request.urlopen(url.rstrip("/") + "/healthz", timeout=timeout) as response:
            return json.load(response).get("status") == "ok"
    except (OSError, ValueError):
        return False


def worker_ok(settings: Settings, hostname: str) -> bool:
    try:
        with Redis.from_url(settings.redis_url, socket_connect_timeout=2, socket_timeout=3) as connection:
            return any(w.hostname == hostname for w in Worker.all(connection=connection))
    except Exception:
        return False


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="batchocr-health", description=__doc__.split("\n\n")[0])
    parser.add_argument("role", choices=("api", "worker"))
    parser.add_argument("--url", help="API base URL (default: http://127.0.0.1:$OCR_API_PORT)")
    args = parser.parse_args(argv)
    settings = Settings.from_env()
    if args.role == "api":
        healthy = api_ok(args.url or f"http://127.0.0.1:{settings.api_port}")
    else:
        healthy = worker_ok(settings, socket.gethostname())
    print("ok" if healthy else "unhealthy", file=sys.stderr)
    return 0 if healthy else 1


if __name__ == "__main__":
    raise SystemExit(main())
