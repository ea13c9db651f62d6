"""``batchocr-health api|worker``: container health checks (exit 0 = healthy).

``api``: ``GET /healthz`` on the local API answers ok (which pings Redis); the API is looked
for where ``batchocr-api`` binds with the same settings (``OCR_API_HOST``, ``OCR_API_PORT`` and
their defaults; loopback for a wildcard host). ``worker``: Redis
answers and an rq worker of this host (its hostname) is registered, i.e. the worker process
has loaded its models and is in its loop.
"""

from __future__ import annotations

import argparse
import json
import socket
import sys
import urllib.request

from rq import Worker

from shared import redis_connection
from shared.settings import Settings


def api_ok(url: str, timeout: float = 3) -> bool:
    try:
        with urllib.request.urlopen(url.rstrip("/") + "/healthz", timeout=timeout) as response:
            return json.load(response).get("status") == "ok"
    except (OSError, ValueError):
        return False


def worker_ok(settings: Settings, hostname: str) -> tuple[bool, str]:
    """Whether a worker of ``hostname`` is registered, and if not, why (Redis unreachable, or
    none registered)."""
    try:
        with redis_connection.connect(settings, socket_connect_timeout=2, socket_timeout=3) as connection:
            if any(w.hostname == hostname for w in Worker.all(connection=connection)):
                return True, ""
    except Exception as exc:
        where = redis_connection.display_url(settings.redis_url)
        return False, f"Redis at {where} did not answer ({type(exc).__name__}: {exc})"
    return False, f"no worker of host {hostname} is registered in Redis"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="batchocr-health", description=__doc__.split("\n\n")[0])
    parser.add_argument("role", choices=("api", "worker"))
    parser.add_argument("--url", help="API base URL (default: where the API binds, from OCR_API_HOST and "
                        "OCR_API_PORT)")
    args = parser.parse_args(argv)
    settings = Settings.from_env()
    if args.role == "api":
        url = args.url or settings.api_local_url
        healthy, problem = api_ok(url), f"{url.rstrip('/')}/healthz did not answer ok"
    else:
        healthy, problem = worker_ok(settings, socket.gethostname())
    print("ok" if healthy else f"unhealthy: {problem}", file=sys.stderr)
    return 0 if healthy else 1


if __name__ == "__main__":
    raise SystemExit(main())
