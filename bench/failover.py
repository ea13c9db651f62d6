"""Submits under a Redis Sentinel failover: acknowledged jobs lost, with and without durable submits.

    .venv/bin/python -m bench.failover [--trials 3] [--seconds 6] [--latency-jobs 300]

On loopback: a master, one replica and three sentinels (``ops.redis_server``), the API's app
(Flask's test client) reaching the master through the sentinels. Latency: single-line submits
with ``OCR_SUBMIT_REPLICAS`` 0 and 1, interleaved, replica up (medians and p95). Failover: per
trial and mode, a fresh cluster; one thread submits line jobs back to back, retrying on 503,
while the master is SIGKILLed after a third of ``--seconds``; once the sentinels have promoted
the replica, every job the API answered 202 for is looked up on the new master: "lost" are
acknowledged jobs that are not there (asynchronous replication dropped them).
"""

from __future__ import annotations

import argparse
import io
import json
import statistics
import threading
import time
from pathlib import Path

from redis import Redis

from api import create_app
from ops.redis_server import FailoverCluster

LINE = (Path(__file__).resolve().parent.parent / "samples" / "lines" / "address.png").read_bytes()


def _until(predicate, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError("cluster not ready")
        time.sleep(0.1)


def app_for(cluster: FailoverCluster, replicas: int):
    from shared.settings import Settings

    settings = Settings(redis_url="redis://127.0.0.1:1/0", redis_sentinels=cluster.sentinels.addresses,
                        queue_name="failover", submit_replicas=replicas, rate_limit_submit="1000000/second",
                        max_queued_jobs=1_000_000)
    return create_app(settings).test_client()


def post(client) -> tuple[int, str]:
    response = client.post("/v1/jobs", data={"file": (io.BytesIO(LINE), "a.png"), "mode": "line"})
    return response.status_code, (response.get_json() or {}).get("id", "")


def latency(jobs: int) -> dict:
    times: dict[int, list[float]] = {0: [], 1: []}
    with FailoverCluster() as cluster:
        clients = {replicas: app_for(cluster, replicas) for replicas in times}
        for i in range(jobs * 2):
            replicas = i % 2
            start = time.perf_counter()
            status, _ = post(clients[replicas])
            times[replicas].append((time.perf_counter() - start) * 1000)
            assert status == 202, status
    return {f"replicas={r}": {"median_ms": round(statistics.median(t), 2),
                              "p95_ms": round(sorted(t)[int(len(t) * 0.95)], 2)} for r, t in times.items()}


def failover_trial(replicas: int, seconds: float) -> dict:
    with FailoverCluster() as cluster:
        client = app_for(cluster, replicas)
        acknowledged, refused, stop = [], [0], threading.Event()

        def submitter() -> None:
            while not stop.is_set():
                status, job_id = post(client)
                if status == 202:
                    acknowledged.append(job_id)
                else:
                    refused[0] += 1
                    time.sleep(0.05)

        thread = threading.Thread(target=submitter)
        thread.start()
        time.sleep(seconds / 3)
        cluster.master.process.kill()
        killed = time.monotonic()
        _until(lambda: cluster.sentinels.master_port() == cluster.replica.port)
        promoted = time.monotonic() - killed
        time.sleep(max(0.0, seconds * 2 / 3 - promoted))
        stop.set()
        thread.join()
        survivor = Redis.from_url(cluster.replica.url)
        lost = [job_id for job_id in acknowledged if not survivor.exists(f"rq:job:{job_id}")]
    return {"acknowledged": len(acknowledged), "lost": len(lost), "refused_503": refused[0],
            "promoted_after_s": round(promoted, 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--trials", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=6.0)
    parser.add_argument("--latency-jobs", type=int, default=300)
    args = parser.parse_args()
    report = {"latency": latency(args.latency_jobs), "failover": {}}
    print(json.dumps(report["latency"]), flush=True)
    for trial in range(args.trials):
        for replicas in ((0, 1) if trial % 2 == 0 else (1, 0)):
            result = failover_trial(replicas, args.seconds)
            report["failover"].setdefault(f"replicas={replicas}", []).append(result)
            print(trial + 1, f"replicas={replicas}", json.dumps(result), flush=True)
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
