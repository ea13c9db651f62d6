"""Model versions: the registry, X-Model-Version, canary split and rollback at run time, lazy
bounded loading in the worker, and the synchronous compatibility endpoint."""

from __future__ import annotations

import base64
import random
import threading
from collections import Counter

from shared import canary
from shared.models import BUILTIN, FileRef, ModelSpec, load_versions, register
from ops.models_cli import main as models_cli
from tests.helpers import ROOT, wait_until
from worker.loaded_models import Pipelines

LINE = base64.b64encode((ROOT / "samples" / "lines" / "address.png").read_bytes()).decode()


def submit(client, headers=None, **options):
    return client.post("/v1/jobs", json={"image_base64": LINE, "mode": "line", **options}, headers=headers or {})


def test_the_registry_lists_installed_versions(client):
    info = client.get("/v1/models").get_json()
    names = {v["name"]: v for v in info["versions"]}
    assert {"ppocrv6-small", "ppocrv6-tiny"} <= set(names) and info["default"] == "ppocrv6-small"
    assert names["ppocrv6-tiny"]["installed"] and info["canary"] == {}


def test_a_job_picks_its_version_by_header_and_unknown_ones_get_a_400(client, make_worker):
    job_id = submit(client, {"X-Model-Version": "ppocrv6-tiny"}).get_json()["id"]
    unknown = submit(client, {"X-Model-Version": "ppocrv9-huge"})
    assert unknown.status_code == 400
    message = unknown.get_json()["error"]["message"]
    assert "ppocrv6-small" in message and "ppocrv6-tiny" in message
    clash = submit(client, {"X-Model-Version": "ppocrv6-tiny"}, model="ppocrv6-small")
    assert clash.status_code == 400
    default_id = submit(client).get_json()["id"]
    worker = make_worker()
    worker.work(burst=True)
    tiny = client.get(f"/v1/jobs/{job_id}").get_json()
    small = client.get(f"/v1/jobs/{default_id}").get_json()
    assert tiny["result"]["model"] == "ppocrv6-tiny" and "Wallaby Way" in tiny["result"]["text"]
    assert small["result"]["model"] == "ppocrv6-small" and tiny["options"]["model"] == "ppocrv6-tiny"
    assert set(worker.pipelines.loaded()) == {"ppocrv6-small", "ppocrv6-tiny"}


def test_a_canary_split_applies_at_once_and_rolls_back_in_one_command(client, redis, settings, monkeypatch):
    monkeypatch.setenv("OCR_REDIS_URL", settings.redis_url)
    assert models_cli(["canary", "ppocrv6-tiny", "25"]) == 0
    chosen = Counter(canary.choose(redis, settings, random.Random(seed)) for seed in range(400))
    assert 60 <= chosen["ppocrv6-tiny"] <= 140 and chosen["ppocrv6-small"] + chosen["ppocrv6-tiny"] == 400
    # The API draws from the module's generator: seeded here, each job's draw is known.
    monkeypatch.setattr(canary, "random", random.Random(1))
    ids = [submit(client).get_json()["id"] for _ in range(12)]
    reference = random.Random(1)
    drawn = [canary.choose(redis, settings, reference) for _ in ids]
    assert set(drawn) == {"ppocrv6-small", "ppocrv6-tiny"}
    recorded = [client.get(f"/v1/jobs/{i}").get_json()["options"]["model"] for i in ids]
    assert recorded == drawn, "every job records the version it got"
    assert models_cli(["rollback"]) == 0
    after = [submit(client).get_json()["id"] for _ in range(10)]
    assert {client.get(f"/v1/jobs/{i}").get_json()["options"]["model"] for i in after} == {"ppocrv6-small"}
    assert models_cli(["canary", "nope", "10"]) == 2


def test_workers_keep_a_bounded_number_of_versions(settings, pipelines, tmp_path):
    small = BUILTIN["ppocrv6-small"]
    copy = ModelSpec(name="small-copy", det=small.det, rec=small.rec, status="experimental")
    register(str(tmp_path), copy)
    assert "small-copy" in load_versions(str(tmp_path))
    cache = Pipelines(settings.replace(model_dir=str(tmp_path), max_loaded_models=1), pipelines)
    cache.get("ppocrv6-tiny")
    cache.get("small-copy")
    assert cache.loaded() == ["small-copy"]


def test_a_manifest_entry_with_a_missing_file_is_not_installed(tmp_path):
    register(str(tmp_path), ModelSpec(name="ghost", det=FileRef("nope/det.onnx"), rec=FileRef("nope/rec.onnx")))
    assert not load_versions(str(tmp_path))["ghost"].installed()


def test_the_sync_endpoint_answers_from_the_queue(client, make_worker, redis, settings):
    """The request waits in a thread while a burst worker (main thread: rq's signal handlers
    need it) takes its job from the queue."""
    answers = []
    request = threading.Thread(target=lambda: answers.append(
        client.post("/api/v1/ocr", json={"image_base64": LINE, "mode": "line"})))
    request.start()
    wait_until(lambda: redis.llen(f"rq:queue:{settings.queue_name}-interactive") == 1, 30, "the sync job to be queued", 0.02)
    make_worker().work(burst=True)
    request.join(timeout=30)
    body = answers[0].get_json()
    assert answers[0].status_code == 200 and body["status"] == "success"
    assert body["text"] == ["42 Wallaby Way, Sydney NSW 2000"] and body["time_cost"] > 0
    bad = client.post("/api/v1/ocr", json={"image_base64": "%%%"})
    assert bad.status_code == 400 and bad.get_json()["error"]["kind"] == "bad_base64"


def test_the_sync_endpoint_times_out_with_the_job_id(settings, redis):
    from api import create_app

    quick = create_app(settings.replace(sync_timeout_s=1), connection=redis).test_client()
    answer = quick.post("/api/v1/ocr", json={"image_base64": LINE, "mode": "line"})
    assert answer.status_code == 504 and answer.get_json()["id"]
