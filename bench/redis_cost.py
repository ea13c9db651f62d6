"""What one job costs Redis: commands, round trips and Redis CPU per job, by phase.

    .venv/bin/python -m bench.redis_cost [--lines 200] [--pages 16]

Round trips are counted in this process (every send of a command or a pipeline). A fresh
embedded Redis; jobs submitted through the API (Flask's test client: the same Redis
calls as over HTTP), run by one in-process BatchWorker in burst mode (batches of 8), and each
result fetched once with ``GET /v1/jobs/<id>``. Before each phase ``CONFIG RESETSTAT``; after
it ``INFO commandstats`` (calls and microseconds per command) and ``INFO stats`` / ``INFO cpu``
(commands processed, Redis's own CPU seconds). Line jobs (UW3 lines) and page jobs (SROIE
receipts), results in Redis and then in S3 (moto's S3 server on loopback, as the tests run it). Redis runs commands on one thread, so its CPU seconds per job set
the ceiling: jobs/s at saturation <= 1 / (Redis CPU seconds per job), before the network and
the clients' own limits.
"""

from __future__ import annotations

import argparse
import io
import json
import time
from collections import Counter
from pathlib import Path

import redis.connection
from redis import Redis

from api import create_app
from ops.redis_server import RedisServer
from shared.s3 import ObjectStore
from shared.settings import Settings
from tests.s3_server import S3Server
from worker.__main__ import build_worker, load_pipelines

EVAL = Path(__file__).resolve().parent.parent.parent / "shared" / "eval"


SENDS = Counter()  # round trips: each send of a command or a pipeline to Redis, in this process


def _counting(send):
    def counted(self, *args, **kwargs):
        SENDS["sends"] += 1
        return send(self, *args, **kwargs)
    return counted


redis.connection.AbstractConnection.send_packed_command = _counting(
    redis.connection.AbstractConnection.send_packed_command)


def snapshot(connection: Redis) -> dict:
    stats = connection.info("commandstats")
    cpu = connection.info("cpu")
    return {"commands": {name.removeprefix("cmdstat_"): (v["calls"], v["usec"]) for name, v in stats.items()},
            "cpu_s": cpu["used_cpu_user"] + cpu["used_cpu_sys"]}


def phase(connection: Redis, action) -> dict:
    connection.config_resetstat()
    before = connection.info("cpu")
    start, sends = time.perf_counter(), SENDS["sends"]
    action()
    seconds, sends = time.perf_counter() - start, SENDS["sends"] - sends
    after = snapshot(connection)
    after["round_trips"] = sends
    after["cpu_s"] -= before["used_cpu_user"] + before["used_cpu_sys"]
    after["seconds"] = seconds
    return after


def run(connection: Redis, settings: Settings, pipelines, images: list[bytes], mode: str) -> dict:
    connection.flushall()
    client = create_app(settings, connection=connection).test_client()
    ids: list[str] = []

    def submit() -> None:
        for image in images:
            response = client.post("/v1/jobs", data={"file": (io.BytesIO(image), "a.png"), "mode": mode})
            assert response.status_code == 202, response.get_json()
            ids.append(response.get_json()["id"])

    def work() -> None:
        build_worker(settings, connection, pipelines=pipelines).work(burst=True, logging_level="WARNING")

    def fetch() -> None:
        for job_id in ids:
            assert client.get(f"/v1/jobs/{job_id}").get_json()["status"] == "finished"

    phases = {"submit": phase(connection, submit), "worker": phase(connection, work), "fetch": phase(connection, fetch)}
    return summarise(phases, len(images))


def summarise(phases: dict, jobs: int) -> dict:
    out = {}
    for name, figures in phases.items():
        calls = Counter({cmd: c for cmd, (c, _) in figures["commands"].items() if cmd not in ("config", "info")})
        usec = sum(u for cmd, (_, u) in figures["commands"].items() if cmd not in ("config", "info"))
        out[name] = {"seconds": round(figures["seconds"], 2),
                     "commands_per_s": round(sum(calls.values()) / max(figures["seconds"], 1e-9)),
                     "commands_per_job": round(sum(calls.values()) / jobs, 1),
                     "round_trips_per_job": round(figures["round_trips"] / jobs, 1),
                     "redis_usec_per_job": round(usec / jobs, 1),
                     "redis_cpu_ms_per_job": round(figures["cpu_s"] * 1000 / jobs, 3),
                     "top": {cmd: round(c / jobs, 1) for cmd, c in calls.most_common(8)}}
    total_cpu = sum(p["redis_cpu_ms_per_job"] for p in out.values())
    out["total"] = {"commands_per_job": round(sum(p["commands_per_job"] for p in out.values()), 1),
                    "round_trips_per_job": round(sum(p["round_trips_per_job"] for p in out.values()), 1),
                    "redis_cpu_ms_per_job": round(total_cpu, 3),
                    "jobs_per_s_ceiling": round(1000 / total_cpu) if total_cpu else None}
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--lines", type=int, default=200)
    parser.add_argument("--pages", type=int, default=16)
    args = parser.parse_args()
    rows = [r.split("\t", 1)[0] for r in (EVAL / "uw3_lines" / "labels.tsv").read_text("utf-8").splitlines() if r]
    lines = [(EVAL / "uw3_lines" / rows[i % len(rows)]).read_bytes() for i in range(args.lines)]
    pages = sorted((EVAL / "sroie_receipts" / "pages").glob("*.jpg"))[: args.pages]
    with RedisServer() as server:
        # The rate limiter stays on (its Redis calls count) at a rate this run never reaches.
        settings = Settings(redis_url=server.url, backend="onnxruntime", intra_op_threads=2,
                            rate_limit_submit="1000000/second")
        pipelines = load_pipelines(settings)
        connection = Redis.from_url(server.url)
        report = {"line jobs": run(connection, settings, pipelines, lines, "line"),
                  "page jobs": run(connection, settings, pipelines, [p.read_bytes() for p in pages], "page")}
        with S3Server() as s3:  # results in S3 (moto's server on loopback), the rest as above
            on_s3 = settings.replace(result_store="s3", **s3.settings_overrides("results"))
            ObjectStore(on_s3).client.create_bucket(Bucket="results")
            report["line jobs, S3 results"] = run(connection, on_s3, pipelines, lines, "line")
            report["page jobs, S3 results"] = run(connection, on_s3, pipelines, [p.read_bytes() for p in pages], "page")
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
