"""Soak: many single-line jobs through the local topology; nothing lost, nothing duplicated,
worker memory flat after warm-up.

    .venv/bin/python -m bench.soak [--jobs 10000] [--workers 2]

Real UW3 line crops (cycled) are submitted straight to Redis in waves that keep about 500 jobs
queued. Every 2 s the workers' resident memory (VmRSS) is sampled; growth is measured from the
sample at 10 % of the jobs (warm-up: arenas and caches filled) to the end. At the end every job
must be finished with exactly one rq result.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time
from pathlib import Path

from redis import Redis
from rq.job import Job
from rq.serializers import JSONSerializer

from shared import jobs
from shared.launcher import Topology

EVAL = Path(__file__).resolve().parent.parent.parent / "shared" / "eval" / "uw3_lines"


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--jobs", type=int, default=10_000)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    rows = [line.split("\t", 1)[0] for line in (EVAL / "labels.tsv").read_text().splitlines()[:300]]
    images = [(EVAL / row).read_bytes() for row in rows]
    env = {k: v for k, v in os.environ.items() if not k.startswith("OCR_") and k != "REDIS_URL"}
    with Topology(workers=args.workers, env=env, log_level="WARNING", restart_workers=False) as topology:
        redis = Redis.from_url(topology.settings.redis_url)
        settings = topology.settings
        queue = jobs.get_queue(redis, settings)
        options = jobs.JobOptions.parse({"mode": "line"}, settings)
        pids = [p.pid for p in topology.workers_by_slot.values()]
        ids: list[str] = []
        samples: list[tuple[int, list[float]]] = []
        start = last_sample = time.monotonic()
        while True:
            done = len(queue.finished_job_registry) + len(queue.failed_job_registry)
            while len(ids) < args.jobs and len(ids) - done < 500:
                ids.append(jobs.submit(redis, settings, images[len(ids) % len(images)], options).job.id)
            if time.monotonic() - last_sample >= 2:
                samples.append((done, [rss_mb(pid) for pid in pids]))
                last_sample = time.monotonic()
            if done >= args.jobs:
                break
            time.sleep(0.05)
        seconds = time.monotonic() - start
        samples.append((args.jobs, [rss_mb(pid) for pid in pids]))
        fetched = [Job.fetch(i, connection=redis, serializer=JSONSerializer) for i in ids]
        finished = sum(job.get_status().value == "finished" for job in fetched)
        duplicated = sum(len(job.results()) > 1 for job in fetched)
        distinct = len(set(ids))
    warm = next(rss for done, rss in samples if done >= args.jobs // 10)
    final = samples[-1][1]
    growth = [(f - w) / w * 100 for w, f in zip(warm, final)]
    print(f"{platform.node()} {os.cpu_count()} cores, {time.strftime('%Y-%m-%d')}")
    print(f"jobs {args.jobs}: distinct ids {distinct}, finished {finished}, lost {args.jobs - finished}, "
          f"with more than one result {duplicated}; {seconds:.0f} s, {args.jobs / seconds:.1f} jobs/s")
    for n, (w, f, g) in enumerate(zip(warm, final, growth), 1):
        print(f"worker {n}: RSS after warm-up {w:.0f} MB, at the end {f:.0f} MB, growth {g:+.1f} %")
    print(f"median RSS over the run: {statistics.median(sum(r) / len(r) for _, r in samples):.0f} MB per worker")


if __name__ == "__main__":
    main()
