"""Priorities through the real stack: interactive jobs behind a deep bulk backlog (issue 18 part 1).

    .venv/bin/python -m bench.priority [--bulk 5000] [--window 150] [--probe-every 7.5] [--rounds 2]

A local topology (embedded Redis, the API, 2 worker processes sharing the cores) gets ``--bulk``
bulk page jobs (SROIE receipts, long side 1280 px, cycled) queued at once. Then, alternating
for ``--rounds`` rounds, two windows of ``--window`` s each: bulk only, and bulk with an
interactive single-line job submitted through the API every ``--probe-every`` s (POST, then
``GET ?wait=30`` until it has ended), timed from before the POST to the finished view.

Bulk throughput per window counts only whole bulk batches that started and ended inside it, per
worker, over that worker's span from its first such batch's start to its last one's end (which
includes any interactive batch between them), so batch boundaries do not quantise the figure.
One batch's service time is the median bulk batch's duration (its first job's start to its last
job's end, from rq's job hashes). The goal: interactive p95 <= 2x one batch, bulk throughput with
probes within 5 % of bulk only.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time
from collections import defaultdict
from datetime import datetime, timezone
from pathlib import Path

import cv2
import numpy as np
from redis import Redis
from rq.job import Job
from rq.serializers import JSONSerializer

from ops.launcher import Topology
from shared import jobs
from shared.client import ApiClient
from shared.payload import JobOptions
from worker.offline.evaluation import page_images

EVAL = Path(__file__).resolve().parent.parent.parent / "shared" / "eval"


def bulk_pages(count: int, long_side: int = 1280) -> list[bytes]:
    """``count`` receipt scans, shrunk to ``long_side`` px and JPEG-encoded (5,000 fit in Redis)."""
    encoded = []
    for path in page_images(EVAL / "sroie_receipts" / "pages"):
        image = cv2.imread(str(path), cv2.IMREAD_COLOR)
        scale = min(1.0, long_side / max(image.shape[:2]))
        image = cv2.resize(image, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
        encoded.append(cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, 85])[1].tobytes())
    return [encoded[i % len(encoded)] for i in range(count)]


def probe_line() -> bytes:
    first = (EVAL / "uw3_lines" / "labels.tsv").read_text("utf-8").splitlines()[0].split("\t", 1)[0]
    return (EVAL / "uw3_lines" / first).read_bytes()


def probe(client: ApiClient, line: bytes) -> float:
    """Seconds from before the POST to the finished view of one interactive line job."""
    start = time.perf_counter()
    job_id = client.submit(line, mode="line", priority="interactive")["id"]
    while (view := client.get(job_id, wait=30))["status"] not in jobs.TERMINAL:
        pass
    assert view["status"] == "finished", view
    return time.perf_counter() - start


def window(client: ApiClient | None, seconds: float, every: float) -> tuple[datetime, datetime, list[float]]:
    """One window: its UTC bounds, and the probes' seconds (none without ``client``)."""
    began, deadline, probes = datetime.now(timezone.utc), time.monotonic() + seconds, []
    line = probe_line()
    while time.monotonic() < deadline:
        if client is None:
            time.sleep(min(1.0, deadline - time.monotonic()))
            continue
        due = time.monotonic() + every
        probes.append(probe(client, line))
        time.sleep(max(0.0, min(due, deadline) - time.monotonic()))
    return began, datetime.now(timezone.utc), probes


def bulk_batches(redis: Redis, settings, owner: str = "") -> list[dict]:
    """Every finished bulk batch (of ``owner``'s queue): worker, start, end (UTC) and its number
    of that queue's jobs."""
    registry = jobs.get_queue(redis, settings, "bulk", owner).finished_job_registry
    spans: dict[str, dict] = {}
    for job in Job.fetch_many(registry.get_job_ids(), connection=redis, serializer=JSONSerializer):
        if job is None or not isinstance(job.return_value(), dict):
            continue
        key = job.return_value()["batch_id"]
        span = spans.setdefault(key, {"worker": job.worker_name, "start": job.started_at, "end": job.ended_at, "jobs": 0})
        span["start"], span["end"] = min(span["start"], job.started_at), max(span["end"], job.ended_at)
        span["jobs"] += 1
    return list(spans.values())


def throughput(batches: list[dict], began: datetime, ended: datetime) -> tuple[float, list[float]]:
    """Bulk pages/s in the window (per worker, whole batches, summed) and those batches' seconds."""
    inside = [b for b in batches if b["start"].replace(tzinfo=timezone.utc) >= began
              and b["end"].replace(tzinfo=timezone.utc) <= ended]
    by_worker: dict[str, list[dict]] = defaultdict(list)
    for batch in inside:
        by_worker[batch["worker"]].append(batch)
    rate = 0.0
    for own in by_worker.values():
        span = (max(b["end"] for b in own) - min(b["start"] for b in own)).total_seconds()
        rate += sum(b["jobs"] for b in own) / span if span > 0 else 0.0
    return rate, [(b["end"] - b["start"]).total_seconds() for b in inside]


def run(args: argparse.Namespace) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("OCR_") and k != "REDIS_URL"}
    env |= {"OCR_MAX_QUEUED_BYTES": str(4 << 30), "OCR_MAX_QUEUED_JOBS": str(args.bulk * 2)}
    figures: dict[str, list] = {"bulk_only": [], "with_probes": [], "probes": [], "batch_s": []}
    with Topology(workers=2, env=env, log_level="WARNING", restart_workers=False) as topology:
        redis, settings = Redis.from_url(topology.settings.redis_url), topology.settings
        options = JobOptions.parse({"mode": "page", "priority": "bulk"}, settings)
        for page in bulk_pages(args.bulk):
            jobs.submit(redis, settings, page, options)
        client = ApiClient(topology.api_url, timeout=60)
        while len(bulk_batches(redis, settings)) < 4:  # models loaded and warm in both workers
            time.sleep(1)
        for _ in range(args.rounds):
            for kind in ("bulk_only", "with_probes"):
                began, ended, probes = window(client if kind == "with_probes" else None, args.window, args.probe_every)
                rate, batch_s = throughput(bulk_batches(redis, settings), began, ended)
                figures[kind].append(rate)
                figures["probes"] += probes
                figures["batch_s"] += batch_s
                print(f"{kind}: {rate:.3f} pages/s, {len(batch_s)} batches, probes {[round(p, 1) for p in probes]}",
                      flush=True)
        left = jobs.get_queue(redis, settings, "bulk").count
    return report(args, figures, left)


def report(args: argparse.Namespace, figures: dict[str, list], left: int) -> dict:
    probes, batch_s = sorted(figures["probes"]), statistics.median(figures["batch_s"])
    p95 = float(np.percentile(probes, 95))
    bulk_only, with_probes = statistics.median(figures["bulk_only"]), statistics.median(figures["with_probes"])
    return {
        "machine": f"{platform.node()}, {os.cpu_count()} cores, {time.strftime('%Y-%m-%d')}",
        "bulk_jobs": args.bulk, "bulk_still_queued_at_end": left, "window_s": args.window, "rounds": args.rounds,
        "batch_service_s_median": round(batch_s, 2),
        "interactive_s": {"n": len(probes), "median": round(statistics.median(probes), 2), "p95": round(p95, 2),
                          "max": round(probes[-1], 2)},
        "p95_over_batch": round(p95 / batch_s, 2),
        "bulk_pages_per_s": {"bulk_only": [round(r, 3) for r in figures["bulk_only"]],
                             "with_probes": [round(r, 3) for r in figures["with_probes"]]},
        "bulk_with_probes_vs_only": round(with_probes / bulk_only, 3),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--bulk", type=int, default=5000)
    parser.add_argument("--window", type=float, default=150)
    parser.add_argument("--probe-every", type=float, default=7.5)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--json", type=Path, help="also write the report here")
    args = parser.parse_args()
    result = run(args)
    print(json.dumps(result, indent=2))
    if args.json:
        args.json.write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
