"""``batchocr up``: start the compose topology as local processes (no Docker needed).

Redis (an embedded server when no ``REDIS_URL``/``OCR_REDIS_URL`` is set), one API process and
N worker processes, each started by module name so this package imports neither ``api`` nor
``worker``. Workers get ``OCR_WORKERS_PER_HOST=N`` so their ONNX threads share the cores. A
worker that dies (a crash, the OOM killer, SIGKILL) is started again, as compose's
``restart: unless-stopped`` does; one that exits cleanly (SIGTERM) is not.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import subprocess
import sys
import threading
import time

from redis import Redis
from rq import Worker

from ops.health import api_ok
from ops.redis_server import RedisServer, free_port
from shared import logs, redis_connection
from shared.entry import console_script
from shared.errors import ConfigError
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
        restart_workers: bool = True,
    ) -> None:
        if workers < 1:
            raise ConfigError("--workers must be >= 1")
        self.env = dict(os.environ if env is None else env)
        self.workers = workers
        self.log_level = log_level
        self.api_port = api_port or free_port()
        self.redis_server: RedisServer | None = None
        self.processes: list[subprocess.Popen] = []
        self.workers_by_slot: dict[int, subprocess.Popen] = {}
        self.restart_workers = restart_workers
        self.restarts = 0
        self._stopping = threading.Event()
        self._supervisor: threading.Thread | None = None

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
        for slot in range(1, self.workers + 1):
            self._spawn_worker(slot)
        self._wait_ready(timeout)
        if self.restart_workers:
            self._supervisor = threading.Thread(target=self._supervise, name="batchocr-supervisor", daemon=True)
            self._supervisor.start()
        return self

    def _spawn(self, module: str, args: list[str], env: dict[str, str] | None = None) -> subprocess.Popen:
        command = [sys.executable, "-m", module, "--log-level", self.log_level, *args]
        process = subprocess.Popen(command, env=env or self.env)
        self.processes.append(process)
        return process

    def _spawn_worker(self, slot: int) -> None:
        """Worker ``slot``; with ``OCR_METRICS_PORT`` set, slot n serves metrics on port + n - 1."""
        name = f"batchocr-{os.getpid()}-{slot}-{self.restarts}"
        env = dict(self.env)
        if self.settings.metrics_port:
            env["OCR_METRICS_PORT"] = str(self.settings.metrics_port + slot - 1)
        self.workers_by_slot[slot] = self._spawn("worker", ["--name", name], env)

    def _supervise(self) -> None:
        """Start a worker again when it dies abnormally (non-zero exit or a signal)."""
        while not self._stopping.wait(0.5):
            for slot, process in list(self.workers_by_slot.items()):
                code = process.poll()
                if code is not None and code != 0 and not self._stopping.is_set():
                    self.restarts += 1
                    logger.warning("worker %d exited with %s; starting it again", slot, code)
                    self.processes.remove(process)
                    self._spawn_worker(slot)

    def _wait_ready(self, timeout: float) -> None:
        """Wait for the API's /healthz and for every worker to register with rq."""
        deadline = time.monotonic() + timeout
        with Redis.from_url(self.settings.redis_url) as connection:
            while time.monotonic() < deadline:
                dead = [p.args for p in self.processes if p.poll() is not None]
                if dead:
                    raise ConfigError(f"process exited during start-up: {dead}")
                if api_ok(self.api_url, timeout=1) and Worker.count(connection=connection) >= self.workers:
                    return
                time.sleep(0.2)
        raise ConfigError(f"topology not ready after {timeout:.0f} s")

    def stop(self) -> None:
        self._stopping.set()
        if self._supervisor is not None:
            self._supervisor.join(timeout=5)
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


@console_script("batchocr")
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="batchocr", description="Run batchocr's topology locally.")
    sub = parser.add_subparsers(dest="command", required=True)
    up = sub.add_parser("up", help="start Redis (embedded unless REDIS_URL is set), the API and N workers")
    up.add_argument("--workers", type=int, default=2)
    up.add_argument("--port", type=int, default=8000, help="API port")
    args = parser.parse_args(argv)
    logs.configure("INFO", Settings.from_env().log_format)
    with Topology(workers=args.workers, api_port=args.port) as topology:
        print(f"batchocr is up: API {topology.api_url}, {args.workers} workers, Redis {redis_connection.display_url(topology.settings.redis_url)}")
        print("Ctrl-C to stop.")
        # Block (after the children started, so they do not inherit the mask) and wait.
        signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT, signal.SIGTERM})
        signal.sigwait({signal.SIGINT, signal.SIGTERM})
    return 0
