"""Admission control through the real stack: API (gunicorn) and workers as processes, their
own Redis, every submission over HTTP.

    .venv/bin/python -m bench.backlog bounds [--jobs-bound 100]
    .venv/bin/python -m bench.backlog s3 [--jobs 20000] [--workers 2]

``bounds``: (1) a Redis with ``maxmemory 150mb`` and ``OCR_MAX_QUEUED_JOBS``: five times the
bound submitted while no worker runs, then drained; (2) the issue's own case, 600 receipts
against a 150 MB Redis with the bounds derived from it; (3) the API and a worker started
against a Redis set to ``allkeys-lru``. Receipts are sent as ``mode=line`` jobs: the real image
bytes wait in Redis, and draining them is cheap (what is measured is the queue, not OCR).
``s3``: ``OCR_IMAGE_STORE=s3`` on moto's S3 server; UW3 line crops (cycled) queued while no
worker runs, Redis bytes per queued job measured, then drained by burst workers.
Every run ends with every accepted job looked up: finished, failed or lost.
"""

from __future__ import annotations

import argparse
import base64
import collections
import json
import os
import platform
import subprocess
import sys
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from redis import Redis

from ops.health import api_ok
from ops.redis_server import RedisServer, free_port, terminate
from shared import backlog

EVAL = Path(__file__).resolve().parent.parent.parent / "shared" / "eval"


def post(url: str, image: bytes) -> tuple[int, str]:
    """One submission; (HTTP status, job id or error kind). Never retried: every answer counts."""
    body = json.dumps({"image_base64": base64.b64encode(image).decode(), "mode": "line"}).encode()
    request = urllib.request.Request(url + "/v1/jobs", data=body, method="POST",
                                     headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status, json.load(response)["id"]
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read() or b"{}").get("error", {}).get("kind", "?")


def submit_all(url: str, images: list[bytes], count: int, threads: int = 8) -> list[tuple[int, str]]:
    with ThreadPoolExecutor(threads) as pool:
        return list(pool.map(lambda i: post(url, images[i % len(images)]), range(count)))


class Stack:
    """An API process (and later workers) on ``redis_url`` with ``env`` settings."""

    def __init__(self, redis_url: str, env: dict[str, str]) -> None:
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("OCR_") and k != "REDIS_URL"}
        self.env.update(REDIS_URL=redis_url, OCR_API_PORT=str(free_port()), OCR_RATE_LIMIT_SUBMIT="",
                        OCR_RATE_LIMIT_READ="", OCR_INTRA_OP_THREADS="1", **env)
        self.url = f"http://127.0.0.1:{self.env['OCR_API_PORT']}"
        self.api: subprocess.Popen | None = None

    def start_api(self, timeout: float = 60) -> int | None:
        """Start the API; None once it answers /healthz, or its exit status if it refused to run."""
        self.api = subprocess.Popen([sys.executable, "-m", "api", "--log-level", "WARNING"], env=self.env,
                                    stderr=subprocess.PIPE, text=True)
        deadline = time.monotonic() + timeout
        while not api_ok(self.url, timeout=1):
            if self.api.poll() is not None:
                print("  api said:", self.api.stderr.read().strip().splitlines()[-1][:300])
                return self.api.returncode
            if time.monotonic() > deadline:
                raise RuntimeError("the API did not come up")
            time.sleep(0.2)
        return None

    def drain(self, workers: int) -> int:
        """Burst workers until the queue is empty; the worst exit status."""
        procs = [subprocess.Popen([sys.executable, "-m", "worker", "--burst", "--log-level", "WARNING"],
                                  env=self.env, stderr=subprocess.PIPE, text=True) for _ in range(workers)]
        codes = [p.wait() for p in procs]
        for p in procs:
            if p.returncode:
                print("  worker said:", (p.stderr.read().strip().splitlines() or [""])[-1][:300])
        return max(codes)

    def stop(self) -> None:
        terminate(self.api, grace=20)


def outcome(redis: Redis, accepted: list[str]) -> collections.Counter:
    """Every accepted job by its final status; 'lost' where the job is gone."""
    from rq.job import Job
    from rq.serializers import JSONSerializer

    counts: collections.Counter = collections.Counter()
    for job_id in accepted:
        try:
            counts[Job.fetch(job_id, connection=redis, serializer=JSONSerializer).get_status().value] += 1
        except Exception:
            counts["lost"] += 1
    return counts


def report(what: str, answers: list[tuple[int, str]], redis: Redis, before: int, stack: Stack, workers: int) -> None:
    codes = collections.Counter(code for code, _ in answers)
    accepted = [job for code, job in answers if code == 202]
    used = redis.info("memory")["used_memory"]
    per_job = (used - before) / max(1, len(accepted))
    kinds = collections.Counter(kind for code, kind in answers if code != 202)
    print(f"{what}: {len(answers)} submitted: " + ", ".join(f"{c} x{n}" for c, n in sorted(codes.items()))
          + f" ({dict(kinds)}); Redis +{used - before} bytes = {per_job:.0f} bytes per accepted job", flush=True)
    started = time.monotonic()
    status = stack.drain(workers)
    final = outcome(redis, accepted)
    print(f"  drained in {time.monotonic() - started:.0f} s by {workers} worker(s) (exit {status}): {dict(final)}; "
          f"lost {final['lost']}; backlog after: {backlog.totals(redis)}", flush=True)


def receipts() -> list[bytes]:
    return [p.read_bytes() for p in sorted((EVAL / "sroie_receipts" / "pages").glob("*.jpg"))]


def bounds_run(args: argparse.Namespace) -> None:
    images = receipts()
    print(f"receipts: {len(images)} images, mean {sum(map(len, images)) / len(images) / 1024:.0f} KB")
    for label, env, count in (
        (f"OCR_MAX_QUEUED_JOBS={args.jobs_bound}", {"OCR_MAX_QUEUED_JOBS": str(args.jobs_bound)}, 5 * args.jobs_bound),
        ("bounds derived from maxmemory 150mb", {}, 600),
    ):
        with RedisServer(extra_args=("--maxmemory", "150mb", "--maxmemory-policy", "noeviction")) as server:
            redis, stack = Redis.from_url(server.url), Stack(server.url, env)
            try:
                assert stack.start_api() is None
                before = redis.info("memory")["used_memory"]
                report(label, submit_all(stack.url, images, count), redis, before, stack, 1)
            finally:
                stack.stop()
    with RedisServer(extra_args=("--maxmemory", "150mb", "--maxmemory-policy", "allkeys-lru")) as server:
        stack = Stack(server.url, {})
        print(f"allkeys-lru: API exit status {stack.start_api()}, worker exit status {stack.drain(1)}")
        stack.stop()


def s3_run(args: argparse.Namespace) -> None:
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    from tests.s3_server import S3Server

    rows = [line.split("\t", 1)[0] for line in (EVAL / "uw3_lines" / "labels.tsv").read_text().splitlines()[:300]]
    images = [(EVAL / "uw3_lines" / row).read_bytes() for row in rows]
    with S3Server() as s3, RedisServer() as server:
        env = {f"OCR_{k.upper()}": v for k, v in s3.settings_overrides("batchocr-images").items()}
        env.update(OCR_IMAGE_STORE="s3", OCR_IMAGE_TTL_S="86400")
        import boto3

        client = boto3.client("s3", endpoint_url=s3.endpoint, region_name="us-east-1",
                              aws_access_key_id=env["OCR_S3_ACCESS_KEY_ID"],
                              aws_secret_access_key=env["OCR_S3_SECRET_ACCESS_KEY"])
        client.create_bucket(Bucket="batchocr-images")
        redis, stack = Redis.from_url(server.url), Stack(server.url, env)
        try:
            assert stack.start_api() is None
            before = redis.info("memory")["used_memory"]
            started = time.monotonic()
            answers = submit_all(stack.url, images, args.jobs)
            print(f"submitted {args.jobs} in {time.monotonic() - started:.0f} s; "
                  f"objects under batchocr/images/: {_count(client)}", flush=True)
            report("OCR_IMAGE_STORE=s3", answers, redis, before, stack, args.workers)
            print(f"  objects under batchocr/images/ after the drain: {_count(client)}")
        finally:
            stack.stop()


def _count(client) -> int:
    pages = client.get_paginator("list_objects_v2").paginate(Bucket="batchocr-images", Prefix="batchocr/images/")
    return sum(page.get("KeyCount", 0) for page in pages)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("scenario", choices=("bounds", "s3"))
    parser.add_argument("--jobs-bound", type=int, default=100)
    parser.add_argument("--jobs", type=int, default=20_000)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    print(f"{platform.node()}, {os.cpu_count()} cores, {time.strftime('%Y-%m-%d %H:%M')}", flush=True)
    bounds_run(args) if args.scenario == "bounds" else s3_run(args)


if __name__ == "__main__":
    main()
