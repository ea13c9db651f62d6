"""Fair share between API keys through the real stack (issue 18 part 2).

    .venv/bin/python -m bench.fair_share [--backlog 2000] [--jobs 10] [--rounds 3]

A local topology (embedded Redis, the API with two API keys, 2 worker processes sharing the
cores) gets ``--backlog`` bulk page jobs of key A (SROIE receipts, long side 1280 px, cycled)
queued at once. Then, alternating for ``--rounds`` rounds, key B submits ``--jobs`` page jobs of
the same priority through the API and waits for them all (``GET ?wait=30``), timed from before
the first POST to the last finished view:

- alone: A's backlog parked (its queue renamed aside, then the workers' batches in hand
  finished), so B's time is its own service time on idle workers;
- behind A's backlog: A's queue back in its rotation, workers busy with A's pages.

The goal: B's jobs behind the backlog finish in about their own service time, delayed by a few
batches at most (reported: the delay over alone in A's median full-batch service times), where
first-come-first-served would make them wait for the whole backlog ahead (estimated from A's
throughput).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time

from redis import Redis
from rq import Queue

from bench.priority import bulk_batches, bulk_pages
from ops.launcher import Topology
from ops.waiting import wait_until
from shared import jobs, keys, tenants
from shared.auth import key_id
from shared.client import ApiClient
from shared.payload import JobOptions

A_KEY, B_KEY = "bench-key-a-0123456789abcdef", "bench-key-b-fedcba9876543210"


def b_run(client: ApiClient, pages: list[bytes]) -> float:
    """Seconds from before B's first POST to its last job's finished view."""
    start = time.perf_counter()
    ids = [client.submit(page, mode="page", priority="bulk")["id"] for page in pages]
    for job_id in ids:
        while (view := client.get(job_id, wait=30))["status"] not in jobs.TERMINAL:
            pass
        assert view["status"] == "finished", view
    return time.perf_counter() - start


def idle(redis: Redis, queue: Queue) -> bool:
    """No job of A's is running or being gathered."""
    return not redis.zcard(queue.started_job_registry.key) and not redis.llen(queue.intermediate_queue_key)


def park(redis: Redis, queue: Queue) -> None:
    """A's queued jobs aside, then wait until the workers finished A's batches in hand."""
    redis.rename(queue.key, queue.key + ":parked")
    wait_until(lambda: idle(redis, queue), timeout=600, interval=0.2, what="A's batches in hand to finish")


def unpark(redis: Redis, queue: Queue) -> None:
    redis.rename(queue.key + ":parked", queue.key)
    tenants.register(redis, queue)


def run(args: argparse.Namespace) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("OCR_") and k != "REDIS_URL"}
    env |= {"OCR_MAX_QUEUED_BYTES": str(4 << 30), "OCR_MAX_QUEUED_JOBS": str(args.backlog * 2),
            "OCR_API_KEYS": f"{A_KEY},{B_KEY}", "OCR_QUEUE_SHARE_PER_KEY": "1"}
    figures: dict[str, list[float]] = {"alone": [], "behind_backlog": []}
    pages = bulk_pages(args.backlog)
    mine = pages[:: max(1, len(pages) // args.jobs)][: args.jobs]
    with Topology(workers=2, env=env, log_level="WARNING", restart_workers=False) as topology:
        redis, settings = Redis.from_url(topology.settings.redis_url), topology.settings
        client = ApiClient(topology.api_url, timeout=60, api_key=B_KEY)
        b_run(client, mine)  # models loaded and warm in both workers
        options = JobOptions.parse({"mode": "page", "priority": "bulk"}, settings)
        for page in pages:
            jobs.submit(redis, settings, page, options, owner=key_id(A_KEY))
        a_queue = jobs.get_queue(redis, settings, "bulk", key_id(A_KEY))
        started = time.perf_counter()
        for _ in range(args.rounds):
            park(redis, a_queue)
            figures["alone"].append(b_run(client, mine))
            unpark(redis, a_queue)
            time.sleep(args.settle)  # the workers back on A's pages
            figures["behind_backlog"].append(b_run(client, mine))
            print({k: [round(v, 1) for v in vs] for k, vs in figures.items()}, flush=True)
        a_left = a_queue.count
        a_done = args.backlog - a_left
        span = time.perf_counter() - started
        batch_s = [(b["end"] - b["start"]).total_seconds() for b in bulk_batches(redis, settings, key_id(A_KEY))
                   if b["jobs"] == settings.max_batch]
        rotation = [m.decode() for m in redis.lrange(keys.rotation_key(tenants.priority_queue_of(a_queue.name)), 0, -1)]
    return report(args, figures, a_done / span, a_left, rotation, statistics.median(batch_s))


def report(args: argparse.Namespace, figures: dict[str, list[float]], a_rate: float, a_left: int,
           rotation: list[str], batch_s: float) -> dict:
    alone, behind = statistics.median(figures["alone"]), statistics.median(figures["behind_backlog"])
    return {
        "machine": f"{platform.node()}, {os.cpu_count()} cores, {time.strftime('%Y-%m-%d')}",
        "backlog_jobs_of_a": args.backlog, "jobs_of_b": args.jobs, "rounds": args.rounds,
        "b_seconds": {k: [round(v, 1) for v in vs] for k, vs in figures.items()},
        "b_median_alone_s": round(alone, 1), "b_median_behind_backlog_s": round(behind, 1),
        "behind_over_alone": round(behind / alone, 2),
        "a_batch_of_8_service_s_median": round(batch_s, 1),
        "delay_in_batches": round((behind - alone) / batch_s, 2),
        "a_pages_per_s_overall": round(a_rate, 3), "a_still_queued_at_end": a_left,
        "fifo_estimate_s": round(a_left / a_rate, 0) if a_rate else None,
        "rotation_at_end": rotation,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--backlog", type=int, default=2000)
    parser.add_argument("--jobs", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--settle", type=float, default=5.0, help="seconds between unparking A and B's run")
    parser.add_argument("--json", help="also write the report here")
    args = parser.parse_args()
    result = run(args)
    print(json.dumps(result, indent=2))
    if args.json:
        with open(args.json, "w", encoding="utf-8") as out:
            json.dump(result, out, indent=2)


if __name__ == "__main__":
    main()
