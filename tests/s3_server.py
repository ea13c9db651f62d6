"""A real S3-protocol HTTP server on loopback for the tests: moto's standalone server, run as
its own process (boto3 talks HTTP to it; nothing in-process is patched)."""

from __future__ import annotations

import subprocess
import sys
import time
import urllib.error
import urllib.request

from ops.redis_server import free_port, terminate

ACCESS_KEY = "test-access-key"
SECRET_KEY = "test-secret-key-never-logged"
REGION = "us-east-1"


class S3Server:
    def __init__(self) -> None:
        self.port = free_port()
        self.endpoint = f"http://127.0.0.1:{self.port}"
        self.process: subprocess.Popen | None = None

    def __enter__(self) -> S3Server:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(self.port)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 30
        while True:
            try:
                urllib.request.urlopen(self.endpoint + "/", timeout=1).close()
                return self
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                if self.process.poll() is not None or time.monotonic() > deadline:
                    self.__exit__()
                    raise RuntimeError(f"moto S3 server did not start on port {self.port}") from None
                time.sleep(0.1)

    def __exit__(self, *exc) -> None:
        terminate(self.process, grace=10)

    def settings_overrides(self, bucket: str, inputs: str = "") -> dict:
        return {
            "s3_endpoint_url": self.endpoint, "s3_region": REGION, "s3_bucket": bucket,
            "s3_access_key_id": ACCESS_KEY, "s3_secret_access_key": SECRET_KEY, "s3_input_buckets": inputs,
        }
