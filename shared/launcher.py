"""``batchocr up``: start the compose topology as local processes (no Docker needed).

Redis (an embedded server when no ``REDIS_URL``/``OCR_REDIS_URL`` is set), one API process and
N worker processes, each started by module name so this package imports neither ``api`` nor
``worker``. Workers get ``OCR_WORKERS_PER_HOST=N`` so their ONNX threads share the cores.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import subprocess
import sys
import time
import urllib.request

from redis import Redis
from rq import Worker

from shared.errors import ConfigError
from shared.redis_server import RedisServer, free_port
from shared.settings import Settings

logger = logging.getLogger(__name__)


class Topology:
    """Redis + API + ``workers`` worker processes on this host. Use as a context manager."""

    def __init__(
        self,
        workers: int = 2,
        api_port: int | None = None,
        env: dict[str, str] | None = None,
        log_level: str = "INFO",
    ) -> None:
        if workers < 1:
            raise ConfigError("--workers must be >= 1")
        self.env = dict(os.environ if env is None else env)
        self.workers = workers
        self.log_level = log_level
        self.api_port = api_port or free_port()
        self.redis_server: RedisServer | None = None
        self.processes: list[subprocess.Popen] = []

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.api_port}"

    def start(self, timeout: float = 120.0) -> Topology:
        try:
            return self._start(timeout)
        except BaseException:
            self.stop()
            raise

    def _start(self, timeout: float) -> Topology:
        redis_url = self.env.get("OCR_REDIS_URL") or self.env.get("REDIS_URL")
        if not redis_url:
            self.redis_server = RedisServer().start()
            redis_url = self.redis_server.url
            logger.info("started embedded Redis at %s", redis_url)
        self.env.update(OCR_REDIS_URL=redis_url, OCR_API_HOST="127.0.0.1", OCR_API_PORT=str(self.api_port),
                        OCR_WORKERS_PER_HOST=str(self.workers))
        self.env.pop("REDIS_URL", None)
        self.settings = Settings.from_env(self.env)
        self._spawn("api", [])
        for i in range(self.workers):
            self._spawn("worker", ["--name", f"batchocr-{os.getpid()}-{i + 1}"])
        self._wait_ready(timeout)
        return self

    def _spawn(self, module: str, args: list[str]) -> None:
        command = [sys.executable, "-m", module, "--log-level", self.log_level, *args]
        self.processes.append(subprocess.Popen(command, env=self.env))

    def _wait_ready(self, timeout: float) -> None:
        """Wait for the API's /healthz and for every worker to register with rq."""
        deadline = time.monotonic() + timeout
        with Redis.from_url(self.settings.redis_url) as connection:
            while time.monotonic() < deadline:
                dead = [p.args for p in self.processes if p.poll() is not None]
                if dead:
                    raise ConfigError(f"process exited during start-up: {dead}")
                if _healthy(self.api_url) and Worker.count(connection=connection) >= self.workers:
                    return
                time.sleep(0.2)
        raise ConfigError(f"topology not ready after {timeout:.0f} s")

    def stop(self) -> None:
        for process in self.processes:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process in self.processes:
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        self.processes.clear()
        if self.redis_server:
            self.redis_server.stop()
            self.redis_server = None

    def __enter__(self) -> Topology:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


def _healthy(url: str) -> bool:
    try:
        with urllib.request.urlopen(url + "/healthz", timeout=1) as response:
            return json.load(response).get("status") == "ok"
    except OSError:
        return False


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="batchocr", description="Run batchocr's topology locally.")
    sub = parser.add_subparsers(dest="command", required=True)
    up = sub.add_parser("up", help="start Redis (embedded unless REDIS_URL is set), the API and N workers")
    up.add_argument("--workers", type=int, default=2)
    up.add_argument("--port", type=int, default=8000, help="API port")
    args = parser.parse_args(argv)
    logging.basicConfig(level="INFO", format="%(asctime)s %(name)s %(levelname)s %(message)s")
    with Topology(workers=args.workers, api_port=args.port) as topology:
        print(f"batchocr is up: API {topology.api_url}, {args.workers} workers, Redis {topology.settings.redis_url}")
        print("Ctrl-C to stop.")
        # Block (after the children started, so they do not inherit the mask) and wait.
        signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT, signal.SIGTERM})
        signal.sigwait({signal.SIGINT, signal.SIGTERM})
    return 0
