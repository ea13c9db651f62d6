"""Hostile input: every case of the corpus ends in a clear 4xx, a result, or a failed job with a
reason; batch-mates finish; the worker lives on; nothing is decoded before the size limits."""

from __future__ import annotations

import base64
import json
import logging
import subprocess
import sys
import time

import pytest

from api import create_app
from shared import jobs, keys
from tests.helpers import ROOT, clean_env
from tests.hostile_corpus import (LINE_PATH, LINE_TEXT, accepted_cases, as_json, png_bomb, png_header,
                                  rejected_cases)

LIMITED = {"max_image_bytes": 2 << 20}


def test_every_case_says_what_must_happen():
    """A case with a missing expectation would pass the checks below whatever happened to it."""
    rejected, accepted = rejected_cases(), accepted_cases()
    names = [case.name for case in rejected + accepted]
    assert len(set(names)) == len(names)
    assert all(c.expect == "rejected" and 400 <= c.status < 500 and c.kind for c in rejected)
    assert {c.expect for c in accepted} == {"finished", "failed", "either"}
    assert all(c.kind for c in accepted if c.expect != "finished")
    assert all(c.size for c in accepted if c.expect != "failed")
    assert all(c.text is not None for c in accepted if c.expect == "finished")


@pytest.fixture
def hostile_client(settings, redis):
    return create_app(settings.replace(**LIMITED), connection=redis).test_client()


@pytest.mark.parametrize("case", rejected_cases(), ids=lambda c: c.name)
def test_the_api_refuses_with_a_reason(hostile_client, redis, case):
    response = hostile_client.post("/v1/jobs", **case.request)
    body = response.get_json()
    assert (response.status_code, body["error"]["kind"]) == (case.status, case.kind), body
    assert len(body["error"]["message"]) > 10
    assert " object at 0x" not in body["error"]["message"], "a Python repr in a client's error"
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
    worker = make_worker(**LIMITED)
    worker.work(burst=True)
    views = {i: hostile_client.get(f"/v1/jobs/{i}").get_json() for i in ids + mates + [bomb]}
    for case, job_id in zip(cases, ids):
        _assert_outcome(case, views[job_id])
    assert all(views[i]["status"] == "finished" and LINE_TEXT in views[i]["result"]["text"] for i in mates)
    assert views[bomb]["status"] == "failed" and views[bomb]["error"]["kind"] == "image_too_large"
    # Queued before the worker started, every batch fills up: hostile jobs shared all of them.
    assert worker.batches_run == -(-len(views) // settings.max_batch)


def _assert_outcome(case, view: dict) -> None:
    """The job of ``case`` ended as the corpus says (``tests.hostile_corpus``)."""
    if case.expect == "finished" or (case.expect == "either" and view["status"] == "finished"):
        assert view["status"] == "finished", (case.name, view["error"])
        result = view["result"]
        assert (result["width"], result["height"]) == case.size, case.name
        if case.text:
            assert case.text in result["text"], (case.name, result["text"])
        elif case.text == "":
            assert result["text"] == "" and not any(line["text"] for line in result["lines"]), (case.name, result)
    else:
        assert view["status"] == "failed", (case.name, view["status"])
        assert view["error"]["kind"] == case.kind and view["error"]["message"], (case.name, view["error"])


# Run in a fresh process, whose peak memory (VmHWM, reset before each job) is that job's alone.
_LOAD_AND_MEASURE = """
import json, sys
from redis import Redis
from rq.job import Job
from rq.serializers import JSONSerializer
from shared.s3 import ObjectStore
from shared.settings import Settings
from worker.job_io import load_jobs

def status_mb(field):
    with open("/proc/self/status") as status:
        return int(status.read().split(field + ":")[1].split()[0]) / 1024

settings = Settings.from_env()
connection = Redis.from_url(settings.redis_url)
report = []
for job_id in sys.argv[1:]:
    job = Job.fetch(job_id, connection=connection, serializer=JSONSerializer)
    with open("/proc/self/clear_refs", "w") as refs:
        refs.write("5")  # resets the peak to the current resident size
    before = status_mb("VmRSS")
    (loaded,) = load_jobs(connection, [job], settings, ObjectStore(settings))
    report.append({"error": getattr(loaded.error, "kind", None), "grown_mb": status_mb("VmHWM") - before})
    del loaded
print(json.dumps(report))
"""


def test_a_bomb_behind_the_apis_back_is_refused_before_a_pixel_is_decoded(redis, settings):
    """A worker loading a 15000 x 15000 PNG bomb (220 KB; 675 MB once decoded) refuses it on
    its header; the same step decoding a legitimate 5000 x 5000 image (75 MB) shows that the
    measurement sees a decode."""
    bomb = _enqueue_behind_the_apis_back(redis, settings, png_bomb(15_000, 15_000), "bomb")
    legit = _enqueue_behind_the_apis_back(redis, settings, png_bomb(5_000, 5_000), "legit")
    env = clean_env(OCR_REDIS_URL=settings.redis_url, OCR_MAX_IMAGE_BYTES=str(LIMITED["max_image_bytes"]))
    run = subprocess.run([sys.executable, "-c", _LOAD_AND_MEASURE, bomb, legit], cwd=ROOT, env=env,
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    refused, decoded = json.loads(run.stdout)
    assert refused["error"] == "image_too_large" and refused["grown_mb"] < 40, refused
    assert decoded["error"] is None and decoded["grown_mb"] > 60, decoded


def _enqueue_behind_the_apis_back(redis, settings, image: bytes, name: str = "rogue") -> str:
    """A rogue producer's job: the worker must apply the limits itself."""
    redis.set(keys.image_key(name), image)
    job = jobs.get_queue(redis, settings).enqueue_call(
        jobs.JOB_FUNC, kwargs={"image_key": keys.image_key(name), "mode": "page", "submitted_at": time.time()})
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


HUGE = "9" * 5000  # past Python's 4,300-digit limit on converting a string to an int
ODD_NUMBERS = [HUGE, "1_0", "\u0661", "1e1", "-1", " 5", "0x10", "5.", "nan", "inf"]


@pytest.mark.parametrize("path", [
    "/v1/callbacks/dead?limit={}", "/v1/collections?limit={}", "/v1/collections?offset={}",
    "/v1/jobs/00000000-0000-4000-8000-000000000000?wait={}",
])
@pytest.mark.parametrize("value", ODD_NUMBERS, ids=lambda v: v[:8])
def test_numbers_in_query_strings_are_read_strictly(hostile_client, path, value):
    """Only plain ASCII digits in range: anything else is a 400 that names the parameter, never
    a 500 (an int of 5,000 digits), and never a reading Python allows but nobody wrote (1_0 as 10)."""
    answer = hostile_client.get(path.format(value))
    assert answer.status_code == 400, (path, value, answer.status_code)
    error = answer.get_json()["error"]
    assert error["kind"] == "bad_option" and path.split("?")[1].split("=")[0] in error["message"]
