"""API input handling against a real Redis: clear 4xx reasons, nothing enqueued on bad input."""

from __future__ import annotations

import base64
import io
import re

import pytest

from api import create_app
from shared.jobs import get_queue
from tests.helpers import ROOT, wait_until

SAMPLE = (ROOT / "samples" / "lines" / "address.png").read_bytes()


def error_kind(response) -> str:
    return response.get_json()["error"]["kind"]


def test_multipart_submit_returns_202_with_links(client, redis, settings):
    response = client.post("/v1/jobs", data={"file": (io.BytesIO(SAMPLE), "a.png"), "mode": "line"})
    assert response.status_code == 202
    body = response.get_json()
    assert body["status"] == "queued" and body["links"]["self"] == f"/v1/jobs/{body['id']}"
    assert get_queue(redis, settings).job_ids == [body["id"]]
    view = client.get(body["links"]["self"]).get_json()
    assert view["status"] == "queued" and view["options"] == {"mode": "line", "model": "ppocrv6-small", "lang": "auto", "result_store": "redis", "priority": "normal"}


def test_json_base64_submit(client):
    response = client.post("/v1/jobs", json={"image_base64": base64.b64encode(SAMPLE).decode()})
    assert response.status_code == 202
    assert client.get(f"/v1/jobs/{response.get_json()['id']}").get_json()["options"]["mode"] == "page"


@pytest.mark.parametrize(
    ("kwargs", "status", "kind"),
    [
        ({"data": {}}, 400, "missing_image"),
        ({"data": {"file": (io.BytesIO(b""), "empty.png")}}, 400, "missing_image"),
        ({"json": {}}, 400, "missing_image"),
        ({"json": {"image_base64": "!!not base64!!"}}, 400, "bad_base64"),
        ({"json": {"image_base64": 12}}, 400, "bad_base64"),
        ({"json": ["a list"]}, 400, "bad_json"),
        ({"data": {"file": (io.BytesIO(b"hello, I am text"), "x.png")}}, 415, "unsupported_image"),
        ({"data": {"file": (io.BytesIO(b"\x89PNG\r\n\x1a\n" + b"\0" * 20), "x.png")}}, 422, "undecodable_image"),
        ({"data": {"file": (io.BytesIO(SAMPLE), "a.png"), "mode": "word"}}, 400, "bad_option"),
        ({"data": {"file": (io.BytesIO(SAMPLE), "a.png"), "model": "nope"}}, 400, "bad_option"),
        ({"data": {"file": (io.BytesIO(SAMPLE), "a.png"), "colour": "red"}}, 400, "bad_option"),
        ({"data": {"file": (io.BytesIO(SAMPLE), "a.png"), "lang": "klingon"}}, 400, "bad_option"),
    ],
)
def test_bad_input_gets_a_clear_4xx_and_enqueues_nothing(client, redis, settings, kwargs, status, kind):
    response = client.post("/v1/jobs", **kwargs)
    assert response.status_code == status, response.get_json()
    assert error_kind(response) == kind
    assert response.get_json()["error"]["message"]
    assert get_queue(redis, settings).count == 0


@pytest.mark.parametrize("path", ["/v1/jobs", "/api/v1/ocr"])
@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b'{"image_base64": ', "not valid JSON at line 1 column 18: Expecting value"),
        (b'{"mode": "line",\n "image_base64": "iVBO" "x"}', "not valid JSON at line 2 column 25: Expecting ',' delimiter"),
        (b"", "the request body is empty"),
        (b" \n", "the request body is empty"),
        (b'{"image_base64": "\xff"}', "not UTF-8"),
        (b"[" * 100_000, "nested too deeply"),
        (b"[1, 2]", "must be an object, not an array"),
        (b"null", "must be an object, not null"),
        (b'{"image_base64": "iVBO", "mode": ' + b"7" * 5000 + b"}", "a number that cannot be read"),
        (b'{"image_base64": "iVBO", "name": "\\ud800"}', "lone UTF-16 surrogate"),
    ],
)
def test_a_bad_json_body_is_400_saying_what_is_wrong(client, redis, settings, path, body, reason):
    response = client.post(path, data=body, content_type="application/json")
    assert (response.status_code, error_kind(response)) == (400, "bad_json"), response.get_json()
    assert reason in response.get_json()["error"]["message"]
    assert get_queue(redis, settings).count == 0


def test_the_sync_endpoint_asks_for_json(client):
    response = client.post("/api/v1/ocr", data=b"image_base64=abc", content_type="application/x-www-form-urlencoded")
    assert response.status_code == 400 and "Content-Type: application/json" in response.get_json()["error"]["message"]
    missing = client.post("/api/v1/ocr", json={"mode": "line"})
    assert missing.status_code == 400 and "multipart" not in missing.get_json()["error"]["message"]


@pytest.mark.parametrize("path", ["/v1/jobs", "/api/v1/ocr"])
def test_a_chunked_json_body_past_the_limit_is_413_not_cut_short(client, redis, path):
    """Without a Content-Length werkzeug reads a body up to the limit and stops there: the cut
    JSON read as broken (400). Under gunicorn a chunked body's input is terminated, as here."""
    body = b'{"image_base64": "' + b"A" * (client.application.config["MAX_CONTENT_LENGTH"] + 10) + b'"}'
    response = client.post(path, input_stream=io.BytesIO(body), content_type="application/json",
                           headers={"Transfer-Encoding": "chunked"}, environ_overrides={"wsgi.input_terminated": True})
    assert (response.status_code, error_kind(response)) == (413, "image_too_large")
    assert redis.llen("rq:queue:test-ocr") == 0


@pytest.mark.parametrize("prefix", ["data:image/png;base64,", "DATA:Image/PNG;name=scan.png;BASE64,", "data:;base64,"])
def test_a_data_url_is_accepted_and_its_image_stored_as_sent(client, redis, settings, prefix):
    response = client.post("/v1/jobs", json={"image_base64": prefix + base64.b64encode(SAMPLE).decode()})
    assert response.status_code == 202, response.get_json()
    (job,) = get_queue(redis, settings).jobs
    assert redis.get(job.kwargs["image_key"]) == SAMPLE


@pytest.mark.parametrize(
    ("prefix", "status", "kind", "reason"),
    [
        ("data:image/jpeg;base64,", 415, "unsupported_image", "declared as image/jpeg but its bytes are a PNG image"),
        ("data:text/plain;base64,", 415, "unsupported_image", "text/plain, which is not an image"),
        ("data:image/gif;base64,", 415, "unsupported_image", "image/gif is not supported"),
        ("data:image/png,", 400, "bad_base64", "not base64-encoded"),
        ("data:image/png;base64", 400, "bad_base64", "without the comma"),
    ],
)
@pytest.mark.parametrize("path", ["/v1/jobs", "/api/v1/ocr"])
def test_a_data_url_that_does_not_match_its_image_is_refused(client, redis, settings, path, prefix, status, kind, reason):
    response = client.post(path, json={"image_base64": prefix + base64.b64encode(SAMPLE).decode()})
    assert (response.status_code, error_kind(response)) == (status, kind), response.get_json()
    assert reason in response.get_json()["error"]["message"]
    assert get_queue(redis, settings).count == 0


def test_the_sync_endpoint_takes_a_data_url(settings, redis):
    client = create_app(settings.replace(sync_timeout_s=1), connection=redis).test_client()
    response = client.post("/api/v1/ocr", json={"image_base64": "data:image/png;base64," + base64.b64encode(SAMPLE).decode()})
    assert response.status_code == 504, "queued (no worker runs here), not refused"
    assert redis.get(get_queue(redis, settings, "interactive").jobs[0].kwargs["image_key"]) == SAMPLE


def test_over_the_byte_limit_is_413(settings, redis):
    client = create_app(settings.replace(max_image_bytes=1000, rec_max_width=64, rec_chunk_width=64),
                        connection=redis).test_client()
    response = client.post("/v1/jobs", json={"image_base64": base64.b64encode(SAMPLE).decode()})
    assert response.status_code == 413 and error_kind(response) == "image_too_large"
    huge = client.post("/v1/jobs", data={"file": (io.BytesIO(SAMPLE * 40), "a.png")})
    assert huge.status_code == 413 and error_kind(huge) == "image_too_large"


def test_over_the_pixel_limit_is_413(settings, redis):
    client = create_app(settings.replace(max_image_pixels=1000), connection=redis).test_client()
    response = client.post("/v1/jobs", data={"file": (io.BytesIO(SAMPLE), "a.png")})
    assert response.status_code == 413 and "pixels" in response.get_json()["error"]["message"]


@pytest.mark.parametrize("job_id", ["does-not-exist", "a.b", "a%20b", "7c9e6679-7425-40de-944b-e07fc1f90ae7"])
def test_unknown_job_is_404(client, job_id):
    response = client.get(f"/v1/jobs/{job_id}")
    assert response.status_code == 404 and error_kind(response) == "not_found"


def test_an_id_with_a_suffix_does_not_reach_the_job(client):
    job_id = client.post("/v1/jobs", data={"file": (io.BytesIO(SAMPLE), "a.png")}).get_json()["id"]
    assert client.get(f"/v1/jobs/{job_id}").status_code == 200
    assert client.get(f"/v1/jobs/{job_id}:x").status_code == 404


def test_healthz(client):
    assert client.get("/healthz").get_json() == {"status": "ok"}


def test_the_web_ui_has_an_icon_so_nothing_it_loads_is_a_404(client):
    page = client.get("/").get_data(as_text=True)
    links = re.findall(r'<link rel="(?:icon|stylesheet)" href="([^"]+)"', page) + re.findall(r'<script src="([^"]+)"', page)
    assert "static/favicon.svg" in links
    for path in ["/favicon.ico"] + ["/" + link for link in links]:
        assert client.get(path).status_code == 200, path
    icon = client.get("/favicon.ico")
    assert icon.mimetype == "image/svg+xml" and icon.get_data().startswith(b"<svg")


def test_redis_down_is_503_not_500(settings):
    from redis import Redis

    from ops.redis_server import free_port

    dead = Redis.from_url(f"redis://127.0.0.1:{free_port()}/0", socket_connect_timeout=0.5)
    client = create_app(settings, connection=dead).test_client()
    assert client.get("/healthz").status_code == 503
    response = client.post("/v1/jobs", data={"file": (io.BytesIO(SAMPLE), "a.png")})
    assert response.status_code == 503 and error_kind(response) == "unavailable"


def test_cancel_a_queued_job_then_a_running_or_ended_one_is_left_alone(client, redis, settings, make_worker):
    import time

    from shared import backlog

    queued = client.post("/v1/jobs", data={"file": (io.BytesIO(SAMPLE), "a.png"), "mode": "line"}).get_json()["id"]
    answer = client.delete(f"/v1/jobs/{queued}").get_json()
    assert answer["canceled"] is True and answer["status"] == "canceled"
    assert client.get(f"/v1/jobs/{queued}").get_json()["status"] == "canceled"
    assert backlog.totals(redis).jobs == 0 and not redis.keys("batchocr:image:*")  # place and image given back
    assert 0 < redis.ttl(f"rq:job:{queued}") <= settings.result_ttl_s, "a cancelled job's hash lapses like a result"
    [registry] = redis.keys("rq:canceled:*")
    redis.zadd(registry, {"long-gone": time.time() - settings.result_ttl_s - 60})
    second = client.post("/v1/jobs", data={"file": (io.BytesIO(SAMPLE), "a.png"), "mode": "line"}).get_json()["id"]
    assert client.delete(f"/v1/jobs/{second}").get_json()["canceled"] is True
    assert redis.zscore(registry, "long-gone") is None and redis.zscore(registry, second) is not None, \
        "the canceled registry keeps what is still readable only"
    again = client.delete(f"/v1/jobs/{queued}").get_json()
    assert again["canceled"] is False and "already ended" in again["message"]
    done = client.post("/v1/jobs", data={"file": (io.BytesIO(SAMPLE), "a.png"), "mode": "line"}).get_json()["id"]
    make_worker().work(burst=True)
    late = client.delete(f"/v1/jobs/{done}").get_json()
    assert late["canceled"] is False and late["status"] == "finished"
    assert client.delete("/v1/jobs/00000000-0000-4000-8000-000000000000").status_code == 404


def test_long_poll_answers_when_the_job_ends_and_not_before(client, redis, settings, make_worker):
    import threading
    import time

    job_id = client.post("/v1/jobs", data={"file": (io.BytesIO(SAMPLE), "a.png"), "mode": "line"}).get_json()["id"]
    start = time.monotonic()
    assert client.get(f"/v1/jobs/{job_id}?wait=0.5").get_json()["status"] == "queued"  # nobody ran it
    assert 0.4 <= time.monotonic() - start < 5
    answered: dict = {}

    def wait() -> None:  # the waiting client; the worker runs here (rq wants the main thread)
        begun = time.monotonic()
        answered["view"] = client.get(f"/v1/jobs/{job_id}?wait=30").get_json()
        answered["at"] = time.monotonic() - begun

    waiter = threading.Thread(target=wait)
    waiter.start()
    time.sleep(1.0)
    assert waiter.is_alive()  # still waiting: the job has not run
    make_worker().work(burst=True)
    waiter.join(timeout=40)
    assert answered["view"]["status"] == "finished" and answered["at"] < 25, answered.get("at")
    assert client.get(f"/v1/jobs/{job_id}?wait=31").status_code == 400
    assert client.get(f"/v1/jobs/{job_id}?wait=soon").get_json()["error"]["kind"] == "bad_option"


def test_a_failed_job_waited_for_reads_its_own_error(client, redis, settings, make_worker):
    """``?wait=`` and the sync endpoint answer a job that failed while they waited with its own
    error, not a generic one (the job they held had only its status refreshed)."""
    import threading

    truncated = SAMPLE[: len(SAMPLE) * 6 // 10]
    job_id = client.post("/v1/jobs", data={"file": (io.BytesIO(truncated), "a.png"), "mode": "line"}).get_json()["id"]
    answered: dict = {}
    waiters = [threading.Thread(target=lambda: answered.update(poll=client.get(f"/v1/jobs/{job_id}?wait=30"))),
               threading.Thread(target=lambda: answered.update(sync=client.post("/api/v1/ocr", json={
                   "image_base64": base64.b64encode(truncated).decode()})))]
    for waiter in waiters:
        waiter.start()
    wait_until(lambda: get_queue(redis, settings, "interactive").count == 1, 20, "the sync job to be queued", 0.05)
    make_worker().work(burst=True)
    for waiter in waiters:
        waiter.join(timeout=40)
    assert answered["poll"].get_json()["error"]["kind"] == "undecodable_image", answered["poll"].get_json()
    assert answered["sync"].status_code == 422
    assert answered["sync"].get_json()["error"]["kind"] == "undecodable_image", answered["sync"].get_json()
