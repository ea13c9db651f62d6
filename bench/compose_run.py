"""The compose stack run for real: scale, 200+ jobs, a killed worker, a restarted Redis, a stop.

    DOCKER_HOST=unix:///… .venv/bin/python -m bench.compose_run [--jobs 200] [--offline]

Needs a Docker engine and docker-compose 1.29+ (``scripts/docker_compose_check`` starts a private
dockerd and builds the images offline first). Through the published API port only: workers
1 → 3; ``--jobs`` jobs (line and page mode, Redis and S3 results) submitted; a worker
``docker kill``ed while it holds a batch; the redis container restarted (AOF volume); workers
3 → 1 → 3; then every job is read back. Fails (exit 1) unless every accepted job finished with
its text, none ran to completion twice (batch logs), api and worker health checks say healthy,
worker logs are JSON with job ids, rq-dashboard lists our queue, and ``stop`` ends within the
workers' stop_grace_period. Prints image sizes and start-up times as JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
import urllib.request
import uuid
from collections import Counter
from pathlib import Path

from urllib3.filepost import encode_multipart_formdata

from ops.waiting import wait_until

ROOT = Path(__file__).resolve().parent.parent
PROJECT = "batchocr-check"
API = "http://127.0.0.1:8000"
LINES = sorted((ROOT / "samples" / "lines").glob("*.png"))
PAGE = ROOT / "samples" / "pages" / "quarterly_report.jpg"


def compose(args: argparse.Namespace, *command: str, check: bool = True) -> str:
    files = ["-f", str(ROOT / "docker-compose.yml")]
    if args.offline:
        files += ["-f", str(ROOT / "docker-compose.offline.yml")]
    done = subprocess.run(["docker-compose", "-p", PROJECT, *files, *command], cwd=ROOT,
                          capture_output=True, text=True, check=False)
    if check and done.returncode:
        raise RuntimeError(f"docker-compose {' '.join(command)}: {done.stderr[-2000:]}")
    return done.stdout


def docker(*command: str) -> str:
    """stdout and stderr together: a container's logs come back on both."""
    done = subprocess.run(["docker", *command], capture_output=True, text=True, check=True)
    return done.stdout + done.stderr


def http(method: str, url: str, body: bytes | None = None, headers: dict | None = None) -> tuple[int, dict]:
    request = urllib.request.Request(url, data=body, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=30) as answer:
            return answer.status, json.loads(answer.read() or b"{}")
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read() or b"{}")
    except (urllib.error.URLError, ConnectionError, TimeoutError):
        return 0, {}


def until(predicate, timeout: float, what: str) -> float:
    return wait_until(predicate, timeout, what, interval=1, error=RuntimeError)


def containers(args: argparse.Namespace, service: str) -> list[str]:
    return compose(args, "ps", "-q", service).split()


def health(container: str) -> str:
    return docker("inspect", "-f", "{{.State.Health.Status}}", container).strip()


def all_healthy(args: argparse.Namespace, service: str, count: int) -> bool:
    ids = containers(args, service)
    return len(ids) == count and all(health(c) == "healthy" for c in ids)


def submit(index: int) -> tuple[str, dict]:
    """One job through the API: lines and pages alternate with Redis and S3 results."""
    page = index % 5 == 0
    path = PAGE if page else LINES[index % len(LINES)]
    job_id = str(uuid.uuid4())
    fields = {"mode": "page" if page else "line", "result_store": "s3" if index % 2 else "redis",
              "job_id": job_id}
    body, content_type = encode_multipart_formdata({**fields, "file": (path.name, path.read_bytes())})
    retries: list[int] = []  # answers other than 202/200 (Redis restarting), by status
    for _ in range(60):  # a 5xx or no answer while Redis restarts: the same job_id again (idempotent)
        status, answer = http("POST", f"{API}/v1/jobs", body, {"Content-Type": content_type})
        if status in (200, 202):
            return job_id, {**fields, "input": path.name, "retries": retries}
        retries.append(status)
        time.sleep(1)
    raise RuntimeError(f"job {index} not accepted: {status} {answer}")


def result(job_id: str) -> dict:
    status, answer = http("GET", f"{API}/v1/jobs/{job_id}?wait=5")
    return answer if status == 200 else {"status": f"http {status}"}


def text_of(answer: dict) -> str:
    document = answer.get("result") or {}
    return " ".join(line.get("text", "") for line in document.get("lines", []))


def kill_busy_worker(args: argparse.Namespace) -> str:
    """``docker kill`` the first worker whose JSON log has a batch record (``batch_id``: only a
    worker that ran a batch writes one)."""
    def busy() -> str | None:
        for container in containers(args, "worker"):
            if any("batch_id" in r for r in json_records(docker("logs", "--tail", "50", container))):
                return container
        return None
    until(lambda: busy() is not None, 120, "a worker holding a batch")
    container = busy()
    docker("kill", container)
    return container


def collect_logs(args: argparse.Namespace, logs: dict[str, list[dict]]) -> None:
    """Every worker container's JSON log records, kept by container id before a scale-down
    removes the container (the killed worker's included while it exists)."""
    for container in compose(args, "ps", "-a", "-q", "worker").split():
        logs[container] = json_records(docker("logs", container))


def json_records(text: str) -> list[dict]:
    """The JSON log records among a container's output lines."""
    records = []
    for line in text.splitlines():
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if isinstance(record, dict):
            records.append(record)
    return records


def scale_down(args: argparse.Namespace, logs: dict[str, list[dict]]) -> None:
    """Workers 3 → 1 as compose scales down (SIGTERM, the batch in hand finished), with the
    stopped workers' logs read before compose removes their containers."""
    running = containers(args, "worker")
    names = {c: docker("inspect", "-f", "{{.Name}}", c).strip() for c in running}
    ordered = sorted(running, key=lambda c: int(names[c].rsplit("_", 1)[-1]))
    docker("stop", "-t", "120", *ordered[1:])
    collect_logs(args, logs)


def dashboard_lists_queue(args: argparse.Namespace) -> bool:
    compose(args, "--profile", "dashboard", "up", "-d", "rq-dashboard")
    def listed() -> bool:
        try:
            with urllib.request.urlopen("http://127.0.0.1:9181/0/data/queues.json", timeout=5) as page:
                return any(q.get("name") == "ocr" for q in json.loads(page.read())["queues"])
        except (OSError, ValueError, KeyError):
            return False
    until(listed, 90, "rq-dashboard listing queue ocr")
    return True


def image_sizes() -> dict[str, int]:
    sizes = {}
    for image in ("batchocr:latest", "batchocr-dashboard:latest", "batchocr-s3-local:latest",
                  "batchocr-redis:bookworm"):
        try:
            sizes[image] = int(docker("image", "inspect", "-f", "{{.Size}}", image).split()[0])
        except subprocess.CalledProcessError:
            continue
    return sizes


def start(args: argparse.Namespace, figures: dict) -> None:
    """``up`` with one worker, then scaled to three; seconds until each is healthy."""
    started = time.monotonic()
    compose(args, "up", "-d", "--scale", "worker=1")
    until(lambda: all_healthy(args, "api", 1), 180, "api healthy")
    figures["api_healthy_s"] = round(time.monotonic() - started, 1)
    until(lambda: all_healthy(args, "worker", 1), 240, "worker healthy")
    figures["first_worker_healthy_s"] = round(time.monotonic() - started, 1)
    scaled = time.monotonic()
    compose(args, "up", "-d", "--no-recreate", "--scale", "worker=3")
    until(lambda: all_healthy(args, "worker", 3), 240, "3 workers healthy")
    figures["scale_1_to_3_s"] = round(time.monotonic() - scaled, 1)


def submit_through_faults(args: argparse.Namespace, figures: dict, logs: dict) -> dict[str, dict]:
    """The jobs, with a worker killed, Redis restarted and workers scaled 3 → 1 → 3 between."""
    jobs = dict(submit(i) for i in range(args.jobs // 2))
    figures["killed_worker"] = kill_busy_worker(args)[:12]
    jobs.update(submit(i) for i in range(args.jobs // 2, args.jobs * 3 // 4))
    compose(args, "restart", "redis")
    jobs.update(submit(i) for i in range(args.jobs * 3 // 4, args.jobs))
    scale_down(args, logs)
    compose(args, "up", "-d", "--no-recreate", "--scale", "worker=1")
    compose(args, "up", "-d", "--no-recreate", "--scale", "worker=3")
    return jobs


def read_back(args: argparse.Namespace, jobs: dict[str, dict], figures: dict, logs: dict) -> None:
    """Every job's answer, and the workers' logs: lost, empty, run twice, read differently."""
    answers: dict[str, dict] = {}
    def ended() -> bool:
        for job_id in [j for j in jobs if answers.get(j, {}).get("status") not in ("finished", "failed")]:
            answers[job_id] = result(job_id)
        return all(a.get("status") in ("finished", "failed") for a in answers.values())
    figures["drain_s"] = round(until(ended, args.timeout, "every job ended"), 1)
    collect_logs(args, logs)
    records = [r for container in logs.values() for r in container]
    completions = Counter(j for r in records if "batch_id" in r for j in r.get("job_ids", []))
    texts: dict[tuple, set] = {}
    for job_id, answer in answers.items():
        texts.setdefault((jobs[job_id]["input"], jobs[job_id]["mode"]), set()).add(text_of(answer))
    figures.update(
        accepted=len(jobs), statuses=dict(Counter(a["status"] for a in answers.values())),
        empty_results=sum(a["status"] == "finished" and not text_of(a).strip() for a in answers.values()),
        ran_twice=sum(n > 1 for n in completions.values()), batch_logged_jobs=len(completions),
        requeued=sum("queued again" in r.get("message", "") for r in records),
        inputs_read_differently=sum(len(t) > 1 for t in texts.values()), submit_retries=dict(Counter(s for j in jobs.values() for s in j["retries"])),
        json_log_records_with_job_ids=sum(1 for r in records if r.get("job_ids") or r.get("job_id")))


def run(args: argparse.Namespace) -> dict:
    figures: dict = {"images": image_sizes()}
    logs: dict[str, list[dict]] = {}
    start(args, figures)
    jobs = submit_through_faults(args, figures, logs)
    read_back(args, jobs, figures, logs)
    try:
        until(lambda: all_healthy(args, "api", 1) and all_healthy(args, "worker", 3), 180, "health")
        figures["healthy"] = True
    except RuntimeError:
        figures["healthy"] = False
    figures["dashboard_lists_queue"] = dashboard_lists_queue(args)
    stopping = time.monotonic()
    compose(args, "stop")
    figures["stop_s"] = round(time.monotonic() - stopping, 1)
    return figures


def verdict(figures: dict, jobs: int) -> list[str]:
    problems = []
    if figures["statuses"].get("finished") != jobs:
        problems.append(f"not every job finished: {figures['statuses']}")
    problems += [f"{figures[k]} {k}" for k in ("empty_results", "ran_twice", "inputs_read_differently")
                 if figures[k]]
    if not figures["healthy"]:
        problems.append("a health check is not healthy")
    if not figures["json_log_records_with_job_ids"]:
        problems.append("no JSON worker log record with job ids")
    if figures["stop_s"] >= 120:
        problems.append(f"stop took {figures['stop_s']} s, past stop_grace_period")
    return problems


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=200)
    parser.add_argument("--offline", action="store_true", help="with docker-compose.offline.yml")
    parser.add_argument("--timeout", type=float, default=900, help="seconds for the jobs to end")
    parser.add_argument("--keep", action="store_true", help="leave the stack's containers and volumes")
    args = parser.parse_args()
    os.environ.setdefault("MINIO_ROOT_PASSWORD", uuid.uuid4().hex)
    try:
        figures = run(args)
    finally:
        if not args.keep:
            compose(args, "--profile", "dashboard", "down", "-v", "--timeout", "30", check=False)
    print(json.dumps(figures, indent=1))
    problems = verdict(figures, args.jobs)
    for problem in problems:
        print("FAIL:", problem, file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
