"""Results in S3 and s3:// inputs, against a real S3-protocol server on loopback (moto)."""

from __future__ import annotations

import base64
import json
import urllib.request
import uuid

import pytest
from rq.job import Job
from rq.serializers import JSONSerializer

from api import create_app
from tests.helpers import ROOT
from worker.__main__ import build_worker

LINE = (ROOT / "samples" / "lines" / "address.png").read_bytes()


@pytest.fixture
def s3_client_app(s3, redis):
    settings, client = s3
    return create_app(settings, connection=redis).test_client(), settings, client


def run_burst(settings, redis, pipelines):
    build_worker(settings, redis, pipelines=pipelines).work(burst=True)


def submit(client, **fields):
    response = client.post("/v1/jobs", json={"mode": "line", **fields})
    assert response.status_code in (200, 202), response.get_json()
    return response.get_json()["id"]


def test_results_in_s3_are_served_inline_and_presigned(s3_client_app, redis, pipelines):
    client, settings, s3 = s3_client_app
    settings = settings.replace(result_store="s3")
    client = create_app(settings, connection=redis).test_client()
    job_id = submit(client, image_base64=base64.b64encode(LINE).decode())
    run_burst(settings, redis, pipelines)

    stored = json.loads(s3.get_object(Bucket="results", Key=f"batchocr/results/{job_id}.json")["Body"].read())
    view = client.get(f"/v1/jobs/{job_id}").get_json()
    assert view["status"] == "finished" and view["result"] == stored
    assert "Wallaby Way" in stored["text"]
    # rq keeps only a reference; rq's own API still reads the job as finished.
    job = Job.fetch(job_id, connection=redis, serializer=JSONSerializer)
    assert job.return_value() == {"result_ref": {"uri": f"s3://results/batchocr/results/{job_id}.json",
                                                 "bytes": len(json.dumps(stored, ensure_ascii=False,
                                                                         separators=(",", ":")).encode())}}
    url_view = client.get(f"/v1/jobs/{job_id}?result=url").get_json()
    assert url_view["result"] is None
    with urllib.request.urlopen(url_view["result_url"], timeout=10) as response:
        assert json.loads(response.read()) == stored


def test_a_job_can_choose_s3_when_the_deployment_default_is_redis(s3_client_app, redis, pipelines):
    client, settings, s3 = s3_client_app
    in_s3 = submit(client, image_base64=base64.b64encode(LINE).decode(), result_store="s3")
    in_redis = submit(client, image_base64=base64.b64encode(LINE).decode())
    run_burst(settings, redis, pipelines)
    keys = [item["Key"] for item in s3.list_objects_v2(Bucket="results").get("Contents", [])]
    assert keys == [f"batchocr/results/{in_s3}.json"]
    views = [client.get(f"/v1/jobs/{i}").get_json() for i in (in_s3, in_redis)]
    assert views[0]["result"]["text"] == views[1]["result"]["text"]


def test_s3_result_store_without_a_bucket_is_a_clear_400(client):
    response = client.post("/v1/jobs", json={"image_base64": base64.b64encode(LINE).decode(), "result_store": "s3"})
    assert response.status_code == 400
    assert "OCR_S3_BUCKET" in response.get_json()["error"]["message"]


def test_s3_inputs_are_read_by_the_worker_only_from_allowlisted_buckets(s3_client_app, redis, pipelines):
    client, settings, s3 = s3_client_app
    s3.put_object(Bucket="scans", Key="batch 1/address.png", Body=LINE)
    s3.put_object(Bucket="private", Key="address.png", Body=LINE)
    good = submit(client, image_uri="s3://scans/batch 1/address.png")
    missing = submit(client, image_uri="s3://scans/nope.png")
    forbidden = client.post("/v1/jobs", json={"image_uri": "s3://private/address.png"})
    assert forbidden.status_code == 403 and forbidden.get_json()["error"]["kind"] == "forbidden_bucket"
    malformed = client.post("/v1/jobs", json={"image_uri": "https://example.com/a.png"})
    assert malformed.status_code == 400
    run_burst(settings, redis, pipelines)
    views = {i: client.get(f"/v1/jobs/{i}").get_json() for i in (good, missing)}
    assert views[good]["status"] == "finished" and "Wallaby Way" in views[good]["result"]["text"]
    assert views[missing]["status"] == "failed" and views[missing]["error"]["kind"] == "image_not_found"


def test_a_worker_rechecks_the_allowlist(s3_client_app, redis, pipelines):
    """A job enqueued by a producer with a wider allowlist than the worker's fails, unread."""
    client, settings, s3 = s3_client_app
    s3.put_object(Bucket="private", Key="address.png", Body=LINE)
    wide = create_app(settings.replace(s3_input_buckets="scans,private"), connection=redis).test_client()
    job_id = submit(wide, image_uri="s3://private/address.png")
    run_burst(settings, redis, pipelines)
    view = client.get(f"/v1/jobs/{job_id}").get_json()
    assert view["status"] == "failed" and view["error"]["kind"] == "forbidden_bucket"


def test_submitting_with_the_same_job_id_is_idempotent(client, redis, make_worker):
    job_id = str(uuid.uuid4())
    body = {"image_base64": base64.b64encode(LINE).decode(), "mode": "line", "job_id": job_id}
    first = client.post("/v1/jobs", json=body)
    second = client.post("/v1/jobs", json=body)
    assert (first.status_code, first.get_json()["created"]) == (202, True)
    assert (second.status_code, second.get_json()["created"], second.get_json()["id"]) == (200, False, job_id)
    make_worker().work(burst=True)
    again = client.post("/v1/jobs", json=body)
    assert again.status_code == 200 and again.get_json()["status"] == "finished"
    bad = client.post("/v1/jobs", json={**body, "job_id": "not-a-uuid"})
    assert bad.status_code == 400


def test_retry_failed_replaces_only_a_failed_job(client, redis, make_worker):
    job_id = str(uuid.uuid4())
    broken = {"image_base64": base64.b64encode(LINE[:100]).decode(), "mode": "line", "job_id": job_id}
    assert client.post("/v1/jobs", json=broken).status_code in (202, 422)
    make_worker().work(burst=True)
    assert client.get(f"/v1/jobs/{job_id}").get_json()["status"] == "failed"
    fixed = {"image_base64": base64.b64encode(LINE).decode(), "mode": "line", "job_id": job_id}
    assert client.post("/v1/jobs", json=fixed).get_json()["created"] is False
    retried = client.post("/v1/jobs", json={**fixed, "retry_failed": True})
    assert retried.status_code == 202
    make_worker().work(burst=True)
    assert client.get(f"/v1/jobs/{job_id}").get_json()["status"] == "finished"
