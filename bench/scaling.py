"""Scaling: pages/s with 1, 2, 4, 8 workers against one Redis, over a fixed set of pages.

    .venv/bin/python -m bench.scaling [--workers 1,2,4,8] [--copies 4] [--set sroie_receipts]

For each worker count a fresh local topology starts (embedded Redis, API, N workers with
OCR_WORKERS_PER_HOST=N, so each gets cores / N ONNX threads, or its cgroup quota's share), the
set's pages (``--copies`` times) are enqueued at once, and the time to the last finished job is
taken. Efficiency = speed-up over 1 worker / N.
"""

from __future__ import annotations

import argparse
import os
import platform
import time
from pathlib import Path

from redis import Redis

from ops.launcher import Topology
from shared import jobs
from shared.cpu import available_cpus
from shared.payload import JobOptions
from worker.offline.evaluation import page_images

EVAL = Path(__file__).resolve().parent.parent.parent / "shared" / "eval"


def run(workers: int, pages: list[bytes]) -> float:
    env = {k: v for k, v in os.environ.items() if not k.startswith("OCR_") and k != "REDIS_URL"}
    with Topology(workers=workers, env=env, log_level="WARNING", restart_workers=False) as topology:
        redis = Redis.from_url(topology.settings.redis_url)
        settings = topology.settings
        options = JobOptions.parse({"mode": "page"}, settings)
        queue = jobs.get_queue(redis, settings)
        start = time.perf_counter()
        for page in pages:
            jobs.submit(redis, settings, page, options)
        while len(queue.finished_job_registry) + len(queue.failed_job_registry) < len(pages):
            time.sleep(0.05)
        seconds = time.perf_counter() - start
        assert len(queue.failed_job_registry) == 0
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workers", default="1,2,4,8")
    parser.add_argument("--copies", type=int, default=4)
    parser.add_argument("--set", default="sroie_receipts")
    args = parser.parse_args()
    pages = [p.read_bytes() for p in page_images(EVAL / args.set / "pages")] * args.copies
    counts = [int(n) for n in args.workers.split(",")]
    results = {n: run(n, pages) for n in counts}
    base = len(pages) / results[counts[0]]
    print(f"{platform.node()}: {os.cpu_count()} cores ({available_cpus()} usable), {time.strftime('%Y-%m-%d')}, "
          f"{len(pages)} pages of {args.set}")
    print("| workers | seconds | pages/s | speed-up | efficiency |\n|---|---|---|---|---|")
    for n in counts:
        rate = len(pages) / results[n]
        print(f"| {n} | {results[n]:.1f} | {rate:.3f} | {rate / base:.2f}× | {rate / base / (n / counts[0]):.2f} |")


if __name__ == "__main__":
    main()
