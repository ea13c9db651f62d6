"""An S3 outage is none of a job's fault: workers wait it out and fail nothing, a stopped worker
hands its jobs back, the API answers 503 (a real S3-protocol server on loopback, behind a TCP
fault proxy that refuses connections while S3 is "down")."""

from __future__ import annotations

import base64
import threading
import time

import pytest
from botocore.exceptions import ClientError, EndpointConnectionError
from rq.job import Job
from rq.serializers import JSONSerializer

from api import create_app
from shared.errors import StorageError, StorageUnavailableError
from shared.s3 import storage_error
from tests.faultproxy import FaultProxy
from tests.helpers import ROOT
from worker.__main__ import build_worker
from worker import storage_outage
from worker.storage_outage import StorageOutage

LINE = (ROOT / "samples" / "lines" / "address.png").read_bytes()


@pytest.fixture
def s3_down(s3, s3_server):
    """(settings whose S3 endpoint goes through the proxy, boto3 client straight to S3, proxy)."""
    settings, client = s3
    with FaultProxy(s3_server.port) as proxy:
        yield settings.replace(s3_endpoint_url=f"http://127.0.0.1:{proxy.port}"), client, proxy


def submit(client, **fields) -> str:
    image = {} if "image_uri" in fields else {"image_base64": base64.b64encode(LINE).decode()}
    response = client.post("/v1/jobs", json={"mode": "line", **image, **fields})
    assert response.status_code == 202, response.get_json()
    return response.get_json()["id"]


def eventually(predicate, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def started_scores(redis, worker) -> dict[bytes, float]:
    return {member: score for queue in worker.queues
            for member, score in redis.zrange(queue.started_job_registry.key, 0, -1, withscores=True)}


def test_results_due_in_an_s3_outage_wait_for_s3_and_nothing_fails(s3_down, redis, pipelines):
    settings, s3, proxy = s3_down
    settings = settings.replace(result_store="s3", job_timeout_s=5)  # rq's entries then need renewing
    api = create_app(settings, connection=redis).test_client()
    ids = [submit(api), submit(api), submit(api, result_store="redis")]
    proxy.cut()
    worker = build_worker(settings, redis, pipelines=pipelines)
    seen: dict[str, object] = {}

    def meanwhile() -> None:
        eventually(lambda: worker.storage.since is not None)
        seen["during"] = [api.get(f"/v1/jobs/{i}").get_json()["status"] for i in ids]
        # rq's entries (job timeout + 60 s = 65 s when the jobs started) renewed past that while waiting
        eventually(lambda: min(started_scores(redis, worker).values()) > time.time() + 90)
        seen["renewed"] = True
        proxy.restore()

    helper = threading.Thread(target=meanwhile, daemon=True)
    helper.start()
    worker.work(burst=True)
    helper.join(timeout=60)

    assert seen == {"during": ["started"] * 3, "renewed": True}
    views = [api.get(f"/v1/jobs/{i}").get_json() for i in ids]
    assert [v["status"] for v in views] == ["finished"] * 3
    assert all("Wallaby Way" in v["result"]["text"] and v["result"]["attempts"] == 1 for v in views)
    stored = sorted(item["Key"] for item in s3.list_objects_v2(Bucket="results").get("Contents", []))
    assert stored == sorted(f"batchocr/results/{i}.json" for i in ids[:2])
    assert (worker.storage.count, worker.storage.since) == (1, None)


@pytest.mark.parametrize("fault", ["cut", "stall"])
def test_a_worker_stopped_in_an_s3_outage_hands_its_jobs_back_unfailed(s3_down, redis, pipelines, monkeypatch, fault):
    """Refused connections fail each call at once; a stall (a black hole) holds one for minutes
    (botocore's attempts × read timeout): the worker leaves the stalled call and goes."""
    settings, s3, proxy = s3_down
    monkeypatch.setattr(storage_outage, "STALL_LOG_S", 1.0)
    monkeypatch.setattr(storage_outage, "STOP_GRACE_S", 0.5)
    s3.put_object(Bucket="scans", Key="address.png", Body=LINE)
    api = create_app(settings, connection=redis).test_client()
    from_s3 = submit(api, image_uri="s3://scans/address.png")
    mate = submit(api)
    getattr(proxy, fault)()
    worker = build_worker(settings, redis, pipelines=pipelines)

    def sigterm_once_waiting() -> None:  # what rq's first SIGTERM does mid-batch
        eventually(lambda: worker.storage.since is not None)
        worker.shutdown_requested = worker._stop_requested = True

    helper = threading.Thread(target=sigterm_once_waiting, daemon=True)
    helper.start()
    worker.work(burst=True)
    helper.join(timeout=60)

    job = Job.fetch(from_s3, connection=redis, serializer=JSONSerializer)
    assert (job.get_status(), job.meta.get("error")) == ("queued", None)
    assert api.get(f"/v1/jobs/{mate}").get_json()["status"] == "finished"  # its batch-mate is not held up
    proxy.restore()
    build_worker(settings, redis, pipelines=pipelines).work(burst=True)
    view = api.get(f"/v1/jobs/{from_s3}").get_json()
    assert view["status"] == "finished" and "Wallaby Way" in view["result"]["text"]
    assert view["result"]["attempts"] == 1  # handing back is not a crash


def test_the_api_answers_503_with_retry_after_while_s3_is_down(s3_down, redis):
    settings, _, proxy = s3_down
    api = create_app(settings.replace(image_store="s3"), connection=redis).test_client()
    proxy.cut()
    response = api.post("/v1/jobs", json={"mode": "line", "image_base64": base64.b64encode(LINE).decode()})
    assert response.status_code == 503, response.get_json()
    assert response.get_json()["error"]["kind"] == "storage_unavailable"
    assert int(response.headers["Retry-After"]) in (9, 10)  # flask-limiter rewrites it as seconds from now
    proxy.restore()
    assert submit(create_app(settings.replace(image_store="s3"), connection=redis).test_client())


@pytest.mark.parametrize(("error", "unavailable"), [
    (EndpointConnectionError(endpoint_url="http://127.0.0.1:9"), True),
    (ClientError({"Error": {"Code": "SlowDown"}, "ResponseMetadata": {"HTTPStatusCode": 503}}, "PutObject"), True),
    (ClientError({"Error": {"Code": "InternalError"}, "ResponseMetadata": {"HTTPStatusCode": 500}}, "GetObject"), True),
    (ClientError({"Error": {"Code": "AccessDenied"}, "ResponseMetadata": {"HTTPStatusCode": 403}}, "PutObject"), False),
    (ClientError({"Error": {"Code": "NoSuchBucket"}, "ResponseMetadata": {"HTTPStatusCode": 404}}, "PutObject"), False),
])
def test_an_outage_is_told_from_a_refusal(error, unavailable):
    found = storage_error("write", "s3://results/a.json", error)
    assert isinstance(found, StorageError)
    assert isinstance(found, StorageUnavailableError) is unavailable


def test_the_wait_backs_off_keeps_the_jobs_and_ends_on_stop():
    now = [0.0]
    outage = StorageOutage("test", sleep=lambda s: now.__setitem__(0, now[0] + s), clock=lambda: now[0])
    kept, failures = [], iter([StorageUnavailableError("down")] * 3)

    def step() -> str:
        error = next(failures, None)
        if error:
            raise error
        return "stored"

    assert outage.call(step, keep=kept.append, stop=lambda: False) == "stored"
    waits = [k - storage_outage.KEEP_HORIZON_S for k in kept]  # each pause keeps the jobs past its end
    assert len(waits) == 3 and all(0.5 <= w <= 30 for w in waits) and waits[2] > waits[0]
    assert (outage.count, outage.since) == (1, None)
    with pytest.raises(StorageUnavailableError):
        outage.call(lambda: (_ for _ in ()).throw(StorageUnavailableError("down")), keep=kept.append,
                    stop=lambda: True)


def test_a_silent_step_is_an_outage_its_jobs_are_kept_and_a_stop_leaves_it(monkeypatch, caplog):
    """A stalled S3 call: reported once it has been silent for STALL_LOG_S, the jobs kept every
    KEEP_EVERY_S meanwhile, and left STOP_GRACE_S after the worker is asked to stop."""
    monkeypatch.setattr(storage_outage, "STALL_LOG_S", 0.3)
    monkeypatch.setattr(storage_outage, "KEEP_EVERY_S", 0.1)
    monkeypatch.setattr(storage_outage, "STOP_GRACE_S", 0.3)
    outage, released, kept = StorageOutage("test"), threading.Event(), []
    stopping = threading.Event()
    threading.Thread(target=lambda: (eventually(lambda: outage.since is not None, 10), stopping.set()),
                     daemon=True).start()
    try:
        with pytest.raises(StorageUnavailableError, match="had not answered"):
            outage.call(lambda: released.wait(30), keep=kept.append, stop=stopping.is_set)
    finally:
        released.set()
    assert len(kept) >= 3 and outage.count == 1
    assert sum("has not answered" in r.getMessage() for r in caplog.records) == 1
    steps = []
    with pytest.raises(StorageUnavailableError, match="when the worker was stopped"):
        outage.call(lambda: steps.append(1), keep=kept.append, stop=lambda: True)
    assert steps == [], "stopping in a known outage tries no more steps (each would wait out its grace)"
    assert outage.call(lambda: "stored", keep=kept.append, stop=lambda: False) == "stored"
    assert outage.since is None
