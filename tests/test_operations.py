"""Operating batchocr: the compose file and image, CPU quotas, /metrics, JSON logs, rq tooling."""

from __future__ import annotations

import base64
import configparser
import dataclasses
import json
import math
import os
import re
import subprocess
import sys
import threading
from pathlib import Path

import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client import generate_latest
from werkzeug.serving import make_server

from shared.cpu import available_cpus, cgroup_quota
from ops.redis_server import free_port
from shared.settings import Settings
from tests.helpers import ROOT, clean_env

LINE = base64.b64encode((ROOT / "samples" / "lines" / "address.png").read_bytes()).decode()


def compose() -> dict:
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())


def console_scripts() -> set[str]:
    config = configparser.ConfigParser()
    config.read(ROOT / "setup.cfg")
    lines = config["options.entry_points"]["console_scripts"].strip().splitlines()
    return {line.split("=")[0].strip() for line in lines}


def test_compose_services_run_our_console_scripts():
    services = compose()["services"]
    assert {"redis", "minio", "minio-init", "api", "worker", "rq-dashboard"} <= set(services)
    scripts = console_scripts()
    for name in ("api", "worker"):
        assert services[name]["command"][0] in scripts
        assert services[name]["healthcheck"]["test"][1] in scripts
    assert "--appendonly" in services["redis"]["command"] and "redis-data:/data" in services["redis"]["volumes"]
    assert services["rq-dashboard"]["profiles"] == ["dashboard"] and "--json" in services["rq-dashboard"]["command"]


def test_compose_workers_scale_and_start_in_order():
    worker = compose()["services"]["worker"]
    assert "ports" not in worker and "container_name" not in worker, "--scale needs no fixed host port or name"
    assert worker["restart"] == "unless-stopped" and worker["stop_grace_period"]
    for name in ("api", "worker"):
        depends = compose()["services"][name]["depends_on"]
        assert depends["redis"]["condition"] == "service_healthy"
        assert depends["minio-init"]["condition"] == "service_completed_successfully"


def test_every_ocr_variable_in_compose_is_a_setting():
    text = (ROOT / "docker-compose.yml").read_text()
    names = set(re.findall(r"\b(OCR_[A-Z0-9_]+)\s*:", text))
    fields = {"OCR_" + f.name.upper() for f in dataclasses.fields(Settings)}
    assert names and names <= fields, names - fields


def test_the_dockerfile_copies_what_exists_and_has_both_targets():
    text = (ROOT / "Dockerfile").read_text()
    for source in re.findall(r"^COPY (?!--from)(\S+)", text, flags=re.M):
        assert (ROOT / source).exists(), source
    assert "AS runtime" in text and "AS dashboard" in text and "USER ocr" in text
    assert "ARG BASE=python:3.11-slim" in text and "ARG RUNTIME_BASE=python:3.11-slim" in text
    assert "$PIP_OPTS --find-links /wheels" in text


def test_the_offline_override_uses_only_images_built_here():
    """docker-compose.offline.yml names no registry image: each is one scripts/docker_images
    builds (a Debian root it imports, or a Dockerfile target), and Redis keeps its settings."""
    offline = yaml.safe_load((ROOT / "docker-compose.offline.yml").read_text())["services"]
    script = (ROOT / "scripts" / "docker_images").read_text()
    built = set(re.findall(r'debian_image "([^"$]+)\$SUITE"', script))
    targets = set(re.findall(r"^FROM \S+ AS (\S+)", (ROOT / "Dockerfile").read_text(), flags=re.M))
    assert {"runtime", "dashboard", "s3-local"} <= targets and "for target in runtime dashboard s3-local" in script
    images = {"batchocr:latest", "batchocr-dashboard:latest", "batchocr-s3-local:latest"}
    for name, service in compose()["services"].items():
        image = offline.get(name, {}).get("image", service.get("image"))
        assert image in images or image.split(":")[0] + ":" in built, (name, image)
    default, local = compose()["services"]["redis"]["command"], offline["redis"]["command"]
    for flag in ("--appendonly", "--appendfsync", "--maxmemory", "--maxmemory-policy"):
        assert local[local.index(flag) + 1] == default[default.index(flag) + 1], flag


@pytest.mark.parametrize("host", ["127.0.0.2", "0.0.0.0"])
def test_the_api_health_check_looks_where_the_api_binds(app, host):
    """``batchocr-health api`` finds the API at its OCR_API_HOST and OCR_API_PORT (a loopback
    address other than 127.0.0.1 here; the wildcard on loopback), and says where it looked."""
    port = free_port()
    server = make_server(host, port, app, threaded=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    env = clean_env(OCR_API_HOST=host, OCR_API_PORT=str(port))
    try:
        check = health_check(env)
    finally:
        server.shutdown()
        server.server_close()
    assert (check.returncode, check.stderr.strip()) == (0, "ok")
    down = health_check(env)
    assert down.returncode == 1 and f":{port}/healthz did not answer ok" in down.stderr


def health_check(env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "ops.health", "api"], env=env, capture_output=True, text=True,
                          timeout=60)


@pytest.mark.parametrize("files, quota", [
    ({"cpu.max": "150000 100000"}, 1.5),
    ({"cpu.max": "50000 100000"}, 0.5),
    ({"cpu.max": "100000000 100000"}, 1000.0),
    ({"cpu.max": "max 100000"}, None),
    ({"cpu/cpu.cfs_quota_us": "200000", "cpu/cpu.cfs_period_us": "100000"}, 2.0),
    ({"cpu/cpu.cfs_quota_us": "-1", "cpu/cpu.cfs_period_us": "100000"}, None),
    ({}, None),
])
def test_cpu_quota_from_cgroup_v1_and_v2(tmp_path, files, quota):
    """The quota, rounded up, caps this process's cores (0.5: one, where it has two or more);
    a quota above them (1000) or none leaves them all."""
    for name, content in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(content + "\n")
    assert cgroup_quota(tmp_path) == quota
    cores = len(os.sched_getaffinity(0))
    assert available_cpus(tmp_path) == (cores if quota is None else min(cores, math.ceil(quota)))


def metric_value(text: str, name: str, **labels: str) -> float:
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()):
                return sample.value
    raise KeyError(name, labels)


def test_metrics_count_jobs_by_status_and_worker_stages(client, make_worker, settings):
    good = [client.post("/v1/jobs", json={"image_base64": LINE, "mode": "line"}) for _ in range(3)]
    bad = client.post("/v1/jobs", json={"image_base64": base64.b64encode(b"\x89PNG\r\n\x1a\n" +
                                                                          (ROOT / "samples" / "lines" / "address.png").read_bytes()[8:300]).decode(),
                                         "mode": "line"})
    assert all(r.status_code == 202 for r in good) and bad.status_code == 202
    before = client.get("/metrics").get_data(as_text=True)
    normal = settings.queue_name
    assert metric_value(before, "batchocr_jobs", status="queued", queue=normal) == 4
    assert metric_value(before, "batchocr_queue_depth", queue=f"{normal}-bulk") == 0, "every priority's queue is shown"
    worker = make_worker()
    worker.work(burst=True)
    after = client.get("/metrics").get_data(as_text=True)
    assert metric_value(after, "batchocr_jobs", status="finished", queue=normal) == 3
    assert metric_value(after, "batchocr_jobs", status="failed", queue=normal) == 1
    assert metric_value(after, "batchocr_queue_depth", queue=normal) == 0
    own = generate_latest(worker.metrics.registry).decode()
    assert metric_value(own, "batchocr_batch_size_count") == 1
    assert metric_value(own, "batchocr_stage_seconds_count", stage="recognition", model="ppocrv6-small") == 3
    assert metric_value(own, "batchocr_worker_jobs_total", status="failed", kind="undecodable_image") == 1
    assert metric_value(own, "batchocr_line_confidence_count", model="ppocrv6-small") >= 3


def test_metrics_count_the_workers_alive_not_a_killed_ones_registration(client, settings, redis):
    """rq keeps a SIGKILLed worker registered until its key's TTL (~8 minutes): the gauge counts
    workers whose guardian reached Redis within 3 lease periods instead."""
    import time

    from shared import keys
    from worker.leases import Leases
    from worker.recovery import Guardian

    guardian = Guardian(settings, [settings.queue_name], Leases("alive-1", settings.lease_s))
    guardian.step()
    redis.zadd(keys.WORKERS_SEEN, {"killed-1": time.time() - 10 * settings.lease_s})
    assert metric_value(client.get("/metrics").get_data(as_text=True), "batchocr_workers") == 1
    guardian.stop()  # a worker leaving in good order
    assert metric_value(client.get("/metrics").get_data(as_text=True), "batchocr_workers") == 0


def test_json_logs_carry_batch_and_job_ids(client, settings, redis):
    job_id = client.post("/v1/jobs", json={"image_base64": LINE, "mode": "line"}).get_json()["id"]
    env = clean_env(OCR_REDIS_URL=settings.redis_url, OCR_QUEUE_NAME=settings.queue_name, OCR_LOG_FORMAT="json",
                    OCR_INTRA_OP_THREADS="2")
    run = subprocess.run([sys.executable, "-m", "worker", "--burst", "--log-level", "INFO"], env=env,
                         capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-2000:]
    records = [json.loads(line) for line in run.stderr.splitlines() if line.startswith("{")]
    batches = [r for r in records if r.get("batch_id")]
    assert batches and job_id in batches[0]["job_ids"] and batches[0]["level"] == "INFO"


def test_rq_info_shows_our_queue_and_workers(client, settings, redis):
    client.post("/v1/jobs", json={"image_base64": LINE, "mode": "line"})
    rq = Path(sys.executable).parent / "rq"
    out = subprocess.run([str(rq), "info", "-u", settings.redis_url, "--serializer", "rq.serializers.JSONSerializer",
                          settings.queue_name], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert re.search(rf"{settings.queue_name}\s+\|\W*1\b", out.stdout), out.stdout


def test_the_worker_health_check_says_when_redis_is_what_is_down():
    from ops.redis_server import free_port

    env = clean_env(OCR_REDIS_URL=f"redis://:hidden-pw@127.0.0.1:{free_port()}/0")
    check = subprocess.run([sys.executable, "-m", "ops.health", "worker"], env=env, capture_output=True, text=True,
                           timeout=60, cwd=ROOT)
    assert check.returncode == 1 and "did not answer" in check.stderr and "registered" not in check.stderr
    assert "hidden-pw" not in check.stderr


@pytest.mark.parametrize("module, env, says", [
    ("worker", {"OCR_MAX_BATCH": "100"}, "batchocr-worker: OCR_MAX_BATCH must be 1..64"),
    ("ops.models_cli", {"OCR_REDIS_URL": "redis://127.0.0.1:1/0"}, "batchocr-models: Redis did not answer"),
])
def test_a_bad_setting_or_an_absent_redis_is_one_line_not_a_traceback(module, env, says):
    args = [sys.executable, "-m", module] + (["list"] if module == "ops.models_cli" else [])
    run = subprocess.run(args, env=clean_env(**env), capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert run.returncode in (2, 3) and says in run.stderr and "Traceback" not in run.stderr, run.stderr
