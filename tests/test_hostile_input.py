"""Hostile input: every case of the corpus ends in a clear 4xx, a result, or a failed job with a
reason; batch-mates finish; the worker lives on; nothing is decoded before the size limits."""

from __future__ import annotations

import base64
import logging
import resource
import time

import pytest

from api import create_app
from shared import jobs, keys
from tests.hostile_corpus import LINE_PATH, LINE_TEXT, accepted_cases, as_json, png_header, rejected_cases

LIMITED = {"max_image_bytes": 2 << 20}


def test_the_corpus_is_big_enough():
    assert len(rejected_cases()) + len(accepted_cases()) >= 30


@pytest.fixture
def hostile_client(settings, redis):
    return create_app(settings.replace(**LIMITED), connection=redis).test_client()


@pytest.mark.parametrize("case", rejected_cases(), ids=lambda c: c.name)
def test_the_api_refuses_with_a_reason(hostile_client, redis, case):
    response = hostile_client.post("/v1/jobs", **case.request)
    body = response.get_json()
    assert (response.status_code, body["error"]["kind"]) == (case.status, case.kind), body
    assert len(body["error"]["message"]) > 10
    assert redis.llen("rq:queue:test-ocr") == 0


def test_accepted_oddities_end_well_and_never_hurt_batch_mates(hostile_client, redis, make_worker, settings):
    cases = accepted_cases()
    good = base64.b64encode(LINE_PATH.read_bytes()).decode()
    ids, mates = [], []
    for case in cases:
        response = hostile_client.post("/v1/jobs", **case.request)
        assert response.status_code == 202, (case.name, response.get_json())
        ids.append(response.get_json()["id"])
        mates.append(hostile_client.post("/v1/jobs", json={"image_base64": good, "mode": "line"}).get_json()["id"])
    bomb = _enqueue_behind_the_apis_back(redis, settings, png_header(50_000, 50_000))
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    worker = make_worker(**LIMITED)
    worker.work(burst=True)
    grown_mb = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024
    views = {i: hostile_client.get(f"/v1/jobs/{i}").get_json() for i in ids + mates + [bomb]}
    for case, job_id in zip(cases, ids):
        view = views[job_id]
        if case.expect == "finished" or (case.expect == "either" and view["status"] == "finished"):
            assert view["status"] == "finished", (case.name, view["error"])
            assert case.text in view["result"]["text"], (case.name, view["result"]["text"])
        else:
            assert view["status"] == "failed", (case.name, view["status"])
            assert view["error"]["message"] and (not case.kind or view["error"]["kind"] == case.kind), case.name
    assert all(views[i]["status"] == "finished" and LINE_TEXT in views[i]["result"]["text"] for i in mates)
    assert views[bomb]["status"] == "failed" and views[bomb]["error"]["kind"] == "image_too_large"
    assert worker.batches_run >= len(cases) * 2 // 8
    # Decoding either bomb would take 7.5 GB or more; what grows here is ONNX Runtime's arena on
    # the first page-mode batches of the session (order-dependent), bounded well under that.
    assert grown_mb < 1500, f"peak memory grew by {grown_mb:.0f} MB"


def _enqueue_behind_the_apis_back(redis, settings, image: bytes) -> str:
    """A rogue producer's job: the worker must apply the limits itself."""
    redis.set(keys.image_key("rogue"), image)
    job = jobs.get_queue(redis, settings).enqueue_call(
        jobs.JOB_FUNC, kwargs={"image_key": keys.image_key("rogue"), "mode": "page", "submitted_at": time.time()})
    return job.id


def test_a_bad_image_fails_its_job_with_one_log_line_and_no_traceback(hostile_client, make_worker, caplog):
    """A user's corrupt image is an expected outcome: one INFO line with job id and kind; rq's
    ERROR with a traceback is for our own failures."""
    png = LINE_PATH.read_bytes()
    job_id = hostile_client.post("/v1/jobs", **as_json(png[: len(png) * 6 // 10])).get_json()["id"]
    with caplog.at_level(logging.INFO):
        make_worker(**LIMITED).work(burst=True)
    assert hostile_client.get(f"/v1/jobs/{job_id}").get_json()["error"]["kind"] == "undecodable_image"
    shown = [r for r in caplog.records if r.levelno >= logging.INFO]
    loud = [r for r in shown if r.levelno >= logging.ERROR or r.exc_info or "Traceback" in r.getMessage()]
    assert not loud, [r.getMessage()[:200] for r in loud]
    (line,) = [r for r in caplog.records if job_id in r.getMessage() and "failed" in r.getMessage()]
    assert line.levelno == logging.INFO and "undecodable_image" in line.getMessage()
