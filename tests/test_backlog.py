"""Admission control, an evicting Redis refused, and images kept in S3 instead of Redis."""

from __future__ import annotations

import base64
import concurrent.futures
import contextlib
import time
import uuid

import pytest
import redis as redis_lib
from rq.job import Job
from rq.serializers import JSONSerializer

from api import create_app
from producer.transport import with_backoff
from shared import backlog, jobs, keys
from shared.errors import EvictingRedisError, QueueFullError
from shared.payload import JobOptions, JobPayload
from tests.helpers import ROOT
from worker.__main__ import build_worker

LINE = (ROOT / "samples" / "lines" / "address.png").read_bytes()
ALICE, BOB = "alice-key-0123456789abcdef", "bob-key-fedcba9876543210xyz"


def post(client, key: str | None = None, image: bytes = LINE):
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    return client.post("/v1/jobs", json={"image_base64": base64.b64encode(image).decode(), "mode": "line"},
                       headers=headers)


@contextlib.contextmanager
def redis_config(connection, **values):
    """CONFIG SET for the block's duration, restored after it."""
    names = {name.replace("_", "-"): str(value) for name, value in values.items()}
    before = {name: connection.config_get(name)[name] for name in names}
    try:
        for name, value in names.items():
            connection.config_set(name, value)
        yield
    finally:
        for name, value in before.items():
            connection.config_set(name, value)


def test_over_the_job_bound_answers_429_with_retry_after_and_stores_nothing(settings, redis, make_worker):
    client = create_app(settings.replace(max_queued_jobs=3), connection=redis).test_client()
    answers = [post(client) for _ in range(5)]
    assert [a.status_code for a in answers] == [202, 202, 202, 429, 429]
    refused = answers[3]
    assert refused.get_json()["error"]["kind"] == "queue_full"
    assert "3 jobs wait" in refused.get_json()["error"]["message"]
    assert 1 <= int(refused.headers["Retry-After"]) <= backlog.RETRY_AFTER_MAX_S
    sync = client.post("/api/v1/ocr", json={"image_base64": base64.b64encode(LINE).decode(), "mode": "line"})
    assert sync.status_code == 429 and sync.get_json()["error"]["kind"] == "queue_full" and sync.headers["Retry-After"]
    queue = jobs.get_queue(redis, settings)
    assert queue.count == 3 and len(redis.keys(keys.image_key("*"))) == 3

    make_worker().work(burst=True)
    for answer in answers[:3]:
        assert client.get(answer.get_json()["links"]["self"]).get_json()["status"] == "finished"
    assert backlog.totals(redis).jobs == 0 and backlog.totals(redis).bytes == 0
    assert backlog.drain_rate(redis) >= 0  # the ended jobs count once their window closes
    assert post(client).status_code == 202
    metrics = client.get("/metrics").get_data(as_text=True)
    assert 'batchocr_backlog_refusals_total{bound="jobs"} 3.0' in metrics
    assert "batchocr_backlog_max_jobs 3.0" in metrics and "batchocr_backlog_jobs 1.0" in metrics


def failed_job(client, make_worker) -> str:
    """The id of a job that failed (its image truncated), for retries to replace."""
    job_id = str(uuid.uuid4())
    truncated = base64.b64encode(LINE[: len(LINE) * 6 // 10]).decode()
    assert client.post("/v1/jobs", json={"image_base64": truncated, "mode": "line", "job_id": job_id}).status_code == 202
    make_worker().work(burst=True)
    return job_id


def test_a_retry_refused_for_a_full_queue_keeps_the_failed_job(settings, redis, make_worker):
    client = create_app(settings.replace(max_queued_jobs=1), connection=redis).test_client()
    job_id = failed_job(client, make_worker)
    failed = client.get(f"/v1/jobs/{job_id}").get_json()
    assert failed["status"] == "failed" and failed["error"]["kind"] == "undecodable_image"
    assert post(client).status_code == 202  # the queue is full again
    retry = {"image_base64": base64.b64encode(LINE).decode(), "mode": "line", "job_id": job_id, "retry_failed": True}
    refused = client.post("/v1/jobs", json=retry)
    assert (refused.status_code, refused.get_json()["error"]["kind"]) == (429, "queue_full")
    assert client.get(f"/v1/jobs/{job_id}").get_json()["error"] == failed["error"], "the refused retry lost the job"
    make_worker().work(burst=True)
    assert client.post("/v1/jobs", json=retry).status_code == 202
    make_worker().work(burst=True)
    assert client.get(f"/v1/jobs/{job_id}").get_json()["status"] == "finished"


def test_concurrent_retries_of_one_failed_job_leave_one_job(settings, redis, make_worker):
    client = create_app(settings, connection=redis).test_client()
    job_id = failed_job(client, make_worker)
    options = JobOptions.parse({"mode": "line"}, settings)

    def retry(_):
        return jobs.submit(redis_lib.Redis(connection_pool=redis.connection_pool), settings, LINE, options,
                           job_id=job_id, retry_failed=True)

    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(retry, range(8)))  # none raises (rq's InvalidJobOperation was a 500)
    assert any(answer.created for answer in answers)
    make_worker().work(burst=True)
    assert client.get(f"/v1/jobs/{job_id}").get_json()["status"] == "finished"
    assert backlog.totals(redis).jobs == 0


def test_a_retry_that_fails_after_another_retry_won_leaves_the_winners_job_alone(settings, redis, make_worker,
                                                                                 monkeypatch):
    """Retry A stores the image (B's SET NX then keeps A's) and fails deleting the failed job,
    after B replaced it: A's undo must not take B's image or backlog place."""
    client = create_app(settings, connection=redis).test_client()
    job_id = failed_job(client, make_worker)
    options = JobOptions.parse({"mode": "line"}, settings)
    delete_failed = jobs._delete_failed

    def b_wins_then_a_is_cut_off(connection, job):
        monkeypatch.setattr(jobs, "_delete_failed", delete_failed)
        assert jobs.submit(redis, settings, LINE, options, job_id=job_id, retry_failed=True).created
        raise redis_lib.exceptions.ConnectionError("cut off")

    monkeypatch.setattr(jobs, "_delete_failed", b_wins_then_a_is_cut_off)
    with pytest.raises(redis_lib.exceptions.ConnectionError):
        jobs.submit(redis, settings, LINE, options, job_id=job_id, retry_failed=True)
    assert backlog.totals(redis).jobs == 1
    make_worker().work(burst=True)
    assert client.get(f"/v1/jobs/{job_id}").get_json()["status"] == "finished"
    assert backlog.totals(redis).jobs == 0


def test_the_byte_bound_counts_images_held_in_redis(settings, redis):
    size = len(LINE)
    bounded = settings.replace(max_image_bytes=size, max_queued_bytes=2 * size + size // 2)
    client = create_app(bounded, connection=redis).test_client()
    assert [post(client).status_code for _ in range(3)] == [202, 202, 429]
    assert backlog.totals(redis).bytes == 2 * size
    assert redis.hget(keys.BACKLOG_REFUSALS, "bytes") == b"1"


def test_each_api_key_holds_at_most_its_share(settings, redis):
    keyed = settings.replace(api_keys=f"{ALICE},{BOB}", max_queued_jobs=4, queue_share_per_key=0.5)
    client = create_app(keyed, connection=redis).test_client()
    assert [post(client, ALICE).status_code for _ in range(3)] == [202, 202, 429]
    assert post(client, ALICE).get_json()["error"]["kind"] == "queue_full"
    assert [post(client, BOB).status_code for _ in range(3)] == [202, 202, 429]


def test_a_lapsed_place_is_kept_while_its_job_waits_and_forgotten_once_it_is_gone(settings, redis):
    quick = settings.replace(max_queued_jobs=1, image_ttl_s=1)
    options = JobOptions(mode="line")
    waiting = jobs.submit(redis, quick, LINE, options).job  # an empty backlog admits any job
    with pytest.raises(QueueFullError):
        jobs.submit(redis, quick, LINE, options)
    time.sleep(1.1)
    with pytest.raises(QueueFullError):  # past its lapse, but still queued: it keeps its place
        jobs.submit(redis, quick, LINE, options)
    waiting.delete()  # removed past batchocr (an operator's `rq empty`): no release was recorded
    time.sleep(1.1)
    jobs.submit(redis, quick, LINE, options)
    assert backlog.totals(redis).jobs == 1


def test_releasing_twice_gives_a_place_back_once(settings, redis):
    first = jobs.submit(redis, settings, LINE, JobOptions(mode="line")).job
    jobs.submit(redis, settings, LINE, JobOptions(mode="line"))
    backlog.release(redis, [first.id])
    backlog.release(redis, [first.id])
    assert backlog.totals(redis).jobs == 1 and backlog.totals(redis).bytes == len(LINE)
    window = int(time.time()) // backlog.WINDOW_S
    drained = sum(int(redis.get(keys.drained_key(w)) or 0) for w in (window - 1, window))
    assert drained == 1  # the drain rate counts places given back, not calls


def test_a_submission_that_fails_after_admission_leaves_nothing(settings, redis, client, monkeypatch):
    def full(*_args, **_kwargs):
        raise redis_lib.exceptions.OutOfMemoryError("command not allowed when used memory > 'maxmemory'")

    monkeypatch.setattr(jobs, "_enqueue", full)
    answer = post(client)
    assert answer.status_code == 503 and answer.get_json()["error"]["kind"] == "redis_full"
    assert "nothing was queued" in answer.get_json()["error"]["message"]
    assert backlog.totals(redis).jobs == 0 and not redis.keys(keys.image_key("*"))


def test_a_reply_lost_after_the_job_was_queued_undoes_nothing(settings, redis, monkeypatch):
    enqueue = jobs._enqueue

    def queued_then_lost(*args, **kwargs):
        enqueue(*args, **kwargs)
        raise redis_lib.exceptions.TimeoutError("Timeout reading from socket")

    monkeypatch.setattr(jobs, "_enqueue", queued_then_lost)
    with pytest.raises(redis_lib.exceptions.TimeoutError):
        jobs.submit(redis, settings, LINE, JobOptions(mode="line"))
    (job_id,) = jobs.get_queue(redis, settings).job_ids
    assert redis.exists(keys.image_key(job_id)) and backlog.totals(redis).jobs == 1


def test_a_nearly_full_redis_refuses_with_429_before_it_runs_out(settings, redis, client):
    used = redis.info("memory")["used_memory"]
    with redis_config(redis, maxmemory=int(used / backlog.MEMORY_FILL) + len(LINE) // 2):
        answer = post(client)
    assert answer.status_code == 429 and "Redis is" in answer.get_json()["error"]["message"]
    assert redis.hget(keys.BACKLOG_REFUSALS, "redis_memory") == b"1"


def test_an_evicting_redis_is_refused_unless_accepted(settings, redis, client, monkeypatch):
    monkeypatch.setenv("REDIS_URL", settings.redis_url)
    monkeypatch.setenv("OCR_INTRA_OP_THREADS", "1")
    with redis_config(redis, maxmemory_policy="allkeys-lru"):
        with pytest.raises(EvictingRedisError, match="allkeys-lru"):
            create_app(settings, connection=redis)
        create_app(settings.replace(allow_evicting_redis=True), connection=redis)
        health = client.get("/healthz")
        assert health.status_code == 503 and health.get_json()["error"]["kind"] == "redis_evicting"
        answer = post(client)
        assert answer.status_code == 503 and "maxmemory-policy allkeys-lru" in answer.get_json()["error"]["message"]
        assert "batchocr_redis_evicting 1.0" in client.get("/metrics").get_data(as_text=True)
        from worker.__main__ import main as worker_main
        assert worker_main(["--burst"]) == 2
    assert client.get("/healthz").status_code == 200


def test_the_producer_waits_out_a_full_queue_as_long_as_it_lasts(monkeypatch):
    waits: list[float] = []
    monkeypatch.setattr(time, "sleep", waits.append)
    answers = iter([QueueFullError("full", retry_after=7, bound="jobs")] * 20 + ["done"])

    def action():
        answer = next(answers)
        if isinstance(answer, Exception):
            raise answer
        return answer

    assert with_backoff(action, "submitting", attempts=2) == "done"
    assert waits == [7.0] * 20


def test_images_in_s3_leave_redis_a_small_job_and_are_deleted_when_it_ends(s3, redis, pipelines):
    settings, client = s3
    settings = settings.replace(image_store="s3", s3_bucket="results")
    api = create_app(settings, connection=redis).test_client()
    job_id = post(api).get_json()["id"]
    job = Job.fetch(job_id, connection=redis, serializer=JSONSerializer)
    payload = JobPayload.from_job(job)
    assert payload.image_object == f"s3://results/batchocr/images/{job_id}" and not payload.image_key
    assert not redis.exists(keys.image_key(job_id))
    assert redis.memory_usage(job.key) < 2048
    assert backlog.totals(redis).jobs == 1 and backlog.totals(redis).bytes == 0

    build_worker(settings, redis, pipelines=pipelines).work(burst=True)
    view = api.get(f"/v1/jobs/{job_id}").get_json()
    assert view["status"] == "finished" and "Wallaby Way" in view["result"]["text"]
    assert client.list_objects_v2(Bucket="results", Prefix="batchocr/images/").get("KeyCount", 0) == 0
    assert backlog.totals(redis).jobs == 0


def test_a_retry_whose_image_cannot_be_stored_keeps_the_failed_job(s3, redis, pipelines):
    settings, client = s3
    settings = settings.replace(image_store="s3", s3_bucket="results")
    api = create_app(settings, connection=redis).test_client()
    job_id = str(uuid.uuid4())
    truncated = base64.b64encode(LINE[: len(LINE) * 6 // 10]).decode()
    assert api.post("/v1/jobs", json={"image_base64": truncated, "mode": "line", "job_id": job_id}).status_code == 202
    build_worker(settings, redis, pipelines=pipelines).work(burst=True)
    failed = api.get(f"/v1/jobs/{job_id}").get_json()
    assert failed["status"] == "failed"
    client.delete_bucket(Bucket="results")  # the image store is gone (empty: the failed job's image went)
    retry = {"image_base64": base64.b64encode(LINE).decode(), "mode": "line", "job_id": job_id, "retry_failed": True}
    refused = api.post("/v1/jobs", json=retry)
    assert refused.status_code == 502 and refused.get_json()["error"]["kind"] == "storage"
    assert api.get(f"/v1/jobs/{job_id}").get_json()["error"] == failed["error"], "the failed retry lost the job"
    assert backlog.totals(redis).jobs == 0, "the failed retry kept its backlog place"
    client.create_bucket(Bucket="results")
    assert api.post("/v1/jobs", json=retry).status_code == 202
    build_worker(settings, redis, pipelines=pipelines).work(burst=True)
    assert api.get(f"/v1/jobs/{job_id}").get_json()["status"] == "finished"


def test_batchocrs_own_uploads_and_results_are_not_inputs(s3, redis):
    settings, _ = s3
    settings = settings.replace(image_store="s3", s3_bucket="results", s3_input_buckets="results,scans")
    api = create_app(settings, connection=redis).test_client()
    for key in ("batchocr/images/0f7d5a1e-2d3b-4c1a-9e6f-1a2b3c4d5e6f", "batchocr/results/x.json"):
        answer = api.post("/v1/jobs", json={"image_uri": f"s3://results/{key}", "mode": "line"})
        assert answer.status_code == 403 and "own storage" in answer.get_json()["error"]["message"]


def test_a_worker_reads_uploaded_images_only_under_the_image_prefix(s3, redis, pipelines):
    settings, client = s3
    settings = settings.replace(image_store="s3", s3_bucket="results")
    client.put_object(Bucket="private", Key="secret.png", Body=LINE)
    job = jobs.get_queue(redis, settings).enqueue_call(
        jobs.JOB_FUNC, kwargs=JobPayload(mode="line", image_object="s3://private/secret.png").to_kwargs())
    build_worker(settings, redis, pipelines=pipelines).work(burst=True)
    job.refresh()
    assert job.get_status() == "failed" and job.meta["error"]["kind"] == "forbidden_bucket"
    assert client.get_object(Bucket="private", Key="secret.png")["Body"].read() == LINE


def test_bounds_are_derived_from_maxmemory_unless_set(settings):
    from shared.redis_memory import RedisMemory

    gigabyte = RedisMemory(policy="noeviction", maxmemory=1 << 30, used=0)
    derived = backlog.Bounds.derive(settings, gigabyte)
    assert (derived.jobs, derived.bytes, derived.memory) == ((1 << 29) // backlog.JOB_BYTES, 1 << 29,
                                                             int((1 << 30) * backlog.MEMORY_FILL))
    unlimited = backlog.Bounds.derive(settings, RedisMemory(policy="noeviction", maxmemory=0, used=0))
    assert (unlimited.jobs, unlimited.bytes, unlimited.memory) == (backlog.DEFAULT_JOBS, backlog.DEFAULT_BYTES, 0)
    explicit = backlog.Bounds.derive(settings.replace(max_queued_jobs=7, max_queued_bytes=1 << 25), gigabyte)
    assert (explicit.jobs, explicit.bytes) == (7, 1 << 25)


def test_a_stalled_s3_image_store_is_a_503_in_seconds_not_minutes(settings, redis):
    """An S3 endpoint that accepts connections and never answers: the API's client (2 attempts,
    5 s reads) gives up in about 16 s; the workers' patient one would take 150 s."""
    import socket

    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    try:
        stalled = settings.replace(image_store="s3", s3_bucket="results", s3_region="us-east-1",
                                   s3_endpoint_url=f"http://127.0.0.1:{listener.getsockname()[1]}",
                                   s3_access_key_id="test", s3_secret_access_key="test-secret")
        began = time.monotonic()
        answer = post(create_app(stalled, connection=redis).test_client())
        assert (answer.status_code, answer.get_json()["error"]["kind"]) == (503, "storage_unavailable")
        assert time.monotonic() - began < 30
        assert backlog.totals(redis).jobs == 0
    finally:
        listener.close()
