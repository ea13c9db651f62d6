"""Soak: many single-line jobs through the local topology; nothing lost, nothing duplicated,
worker memory flat after warm-up.

    .venv/bin/python -m bench.soak [--jobs 10000] [--workers 2] [--redis-restarts N --down-s S]

Real UW3 line crops (cycled) are submitted straight to Redis in waves that keep about 500 jobs
queued. Every 2 s the workers' resident memory (VmRSS) is sampled; growth is measured from the
sample at 10 % of the jobs (warm-up: arenas and caches filled) to the end. At the end every job
must be finished with exactly one rq result.

With ``--redis-restarts N`` the bench runs its own Redis with AOF and restarts it N times under
load (evenly spaced by jobs done; down ``--down-s`` seconds each, longer than a lease by
default so every lease lapses); it then also reports worker exits and jobs whose result counts
a crash (``attempts`` > 1): both must be 0.
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

from ops.launcher import Topology
from ops.redis_server import RedisServer
from shared import jobs
from shared.payload import JobOptions

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
    parser.add_argument("--redis-restarts", type=int, default=0)
    parser.add_argument("--down-s", type=float, default=40.0)
    args = parser.parse_args()
    if args.redis_restarts:
        with RedisServer(appendonly=True) as server:
            soak(args, server)
    else:
        soak(args, None)


def soak(args: argparse.Namespace, server: RedisServer | None) -> None:
    rows = [line.split("\t", 1)[0] for line in (EVAL / "labels.tsv").read_text().splitlines()[:300]]
    images = [(EVAL / row).read_bytes() for row in rows]
    env = {k: v for k, v in os.environ.items() if not k.startswith("OCR_") and k != "REDIS_URL"}
    if server is not None:
        env["REDIS_URL"] = server.url
    restart_at = [args.jobs * (i + 1) // (args.redis_restarts + 1) for i in range(args.redis_restarts)]
    with Topology(workers=args.workers, env=env, log_level="WARNING", restart_workers=False) as topology:
        redis = Redis.from_url(topology.settings.redis_url)
        settings = topology.settings
        queue = jobs.get_queue(redis, settings)
        options = JobOptions.parse({"mode": "line"}, settings)
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
            if restart_at and done >= restart_at[0]:
                restart_at.pop(0)
                print(f"restarting Redis at {done} jobs done, down {args.down_s:.0f} s", flush=True)
                server.restart(down_for=args.down_s)
            time.sleep(0.05)
        seconds = time.monotonic() - start
        samples.append((args.jobs, [rss_mb(pid) for pid in pids]))
        fetched = [Job.fetch(i, connection=redis, serializer=JSONSerializer) for i in ids]
        finished = sum(job.get_status().value == "finished" for job in fetched)
        duplicated = sum(len(job.results()) > 1 for job in fetched)
        crashed = sum(job.return_value()["attempts"] > 1 for job in fetched if job.get_status().value == "finished")
        exits = sum(p.poll() is not None for p in topology.workers_by_slot.values())
        distinct = len(set(ids))
    warm = next(rss for done, rss in samples if done >= args.jobs // 10)
    final = samples[-1][1]
    growth = [(f - w) / w * 100 for w, f in zip(warm, final)]
    print(f"{platform.node()} {os.cpu_count()} cores, {time.strftime('%Y-%m-%d')}")
    print(f"jobs {args.jobs}: distinct ids {distinct}, finished {finished}, lost {args.jobs - finished}, "
          f"with more than one result {duplicated}; {seconds:.0f} s, {args.jobs / seconds:.1f} jobs/s")
    if server is not None:
        print(f"Redis restarted {args.redis_restarts} times (down {args.down_s:.0f} s each): worker exits {exits}, "
              f"jobs whose result counts a crash {crashed}")
    for n, (w, f, g) in enumerate(zip(warm, final, growth), 1):
        print(f"worker {n}: RSS after warm-up {w:.0f} MB, at the end {f:.0f} MB, growth {g:+.1f} %")
    print(f"median RSS over the run: {statistics.median(sum(r) / len(r) for _, r in samples):.0f} MB per worker")


if __name__ == "__main__":
    main()
