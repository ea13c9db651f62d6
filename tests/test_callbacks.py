"""Completion callbacks (issue 18 part 3): signed POSTs of a job's end, retried with backoff,
then a dead letter; only to https or allow-listed hosts. The receiver is on 127.0.0.1,
allow-listed in these tests' settings."""

from __future__ import annotations

import base64
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from api import create_app
from shared import callbacks, keys
from shared.auth import key_id
from tests.helpers import ROOT
from worker.callback_delivery import Deliverer

KEY = "callback-key-0123456789abcdef"
SECRET = "deployment-callback-secret-0123"
LINE = base64.b64encode((ROOT / "samples" / "lines" / "address.png").read_bytes()).decode()


class Receiver:
    """An HTTP server on 127.0.0.1 that records every request and answers ``status``."""

    def __init__(self) -> None:
        self.requests: list[dict] = []
        self.status, self.delay, self.location = 204, 0.0, ""
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 (http.server's name)
                body = self.rfile.read(int(self.headers["Content-Length"]))
                receiver.requests.append({"path": self.path, "headers": dict(self.headers), "body": body})
                time.sleep(receiver.delay)
                self.send_response(receiver.status)
                if receiver.location:
                    self.send_header("Location", receiver.location)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def url(self, path: str = "/hook") -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver():
    server = Receiver()
    yield server
    server.close()


@pytest.fixture
def hooked(settings, receiver):
    return settings.replace(api_keys=KEY, callback_secret=SECRET, callback_hosts=f"127.0.0.1:{receiver.port}",
                            callback_attempts=3, callback_timeout_s=1.0)


@pytest.fixture
def api(hooked, redis):
    return create_app(hooked, connection=redis).test_client()


def submit(api, **fields):
    return api.post("/v1/jobs", json={"image_base64": LINE, "mode": "line", **fields},
                    headers={"Authorization": f"Bearer {KEY}"})


def deliver_all(settings, clock=time.time, passes: int = 3) -> Deliverer:
    """Every due callback, made due now (no waiting for the backoff in tests)."""
    deliverer = Deliverer(settings, clock=clock)
    for _ in range(passes):
        deliverer.step()
    return deliverer


def test_a_finished_job_is_posted_signed_once(api, hooked, redis, receiver, make_worker):
    response = submit(api, callback_url=receiver.url("/hook?token=abc"))
    assert response.status_code == 202, response.get_json()
    job_id = response.get_json()["id"]
    assert api.get(f"/v1/jobs/{job_id}", headers={"Authorization": f"Bearer {KEY}"}).get_json()["callback_url"]
    make_worker().work(burst=True)
    assert redis.zscore(keys.CALLBACKS_DUE, job_id) <= time.time(), "the batch's end made it due at once"
    deliver_all(hooked)
    (request,) = receiver.requests
    body = json.loads(request["body"])
    assert request["path"] == "/hook?token=abc"
    assert body == {"delivery_id": f"{job_id}.finished", "job_id": job_id, "status": "finished", "error": None,
                    "links": {"self": f"/v1/jobs/{job_id}"}}
    assert request["headers"]["X-BatchOCR-Delivery"] == f"{job_id}.finished"
    secret = api.get("/v1/callbacks/secret", headers={"Authorization": f"Bearer {KEY}"}).get_json()["secret"]
    assert secret == callbacks.key_secret(hooked, key_id(KEY))
    signature = request["headers"]["X-BatchOCR-Signature"]
    assert callbacks.verify(secret, signature, request["body"])
    assert not callbacks.verify(secret, signature, request["body"] + b" "), "a changed body fails"
    assert not callbacks.verify(secret, signature, request["body"], now=time.time() + 600), "a replay fails"
    assert not callbacks.verify(callbacks.key_secret(hooked, "other"), signature, request["body"])
    assert redis.zcard(keys.CALLBACKS_DUE) == 0 and not redis.exists(keys.callback_key(job_id))


def test_a_cancelled_job_is_posted_too(api, hooked, receiver):
    job_id = submit(api, callback_url=receiver.url()).get_json()["id"]
    assert api.delete(f"/v1/jobs/{job_id}", headers={"Authorization": f"Bearer {KEY}"}).get_json()["canceled"]
    deliver_all(hooked)
    assert [json.loads(r["body"])["status"] for r in receiver.requests] == ["canceled"]


def test_a_job_not_ended_is_looked_at_again_later(api, hooked, redis, receiver):
    job_id = submit(api, callback_url=receiver.url()).get_json()["id"]
    now = [time.time() + 10]
    Deliverer(hooked, clock=lambda: now[0]).step()
    assert receiver.requests == [] and redis.zscore(keys.CALLBACKS_DUE, job_id) > now[0]


def test_failed_tries_back_off_then_become_a_dead_letter(api, hooked, redis, receiver, make_worker):
    receiver.status = 500
    job_id = submit(api, callback_url=receiver.url()).get_json()["id"]
    make_worker().work(burst=True)
    now = [time.time()]
    deliverer = Deliverer(hooked, clock=lambda: now[0])
    for attempt in (1, 2):
        deliverer.step()
        assert len(receiver.requests) == attempt
        assert redis.zscore(keys.CALLBACKS_DUE, job_id) == pytest.approx(now[0] + 2 ** attempt)
        deliverer.step()
        assert len(receiver.requests) == attempt, "not before its backoff"
        now[0] += 2 ** attempt
    deliverer.step()
    assert [r["headers"]["X-BatchOCR-Attempt"] for r in receiver.requests] == ["1", "2", "3"]
    (dead,) = api.get("/v1/callbacks/dead", headers={"Authorization": f"Bearer {KEY}"}).get_json()["dead"]
    assert dead["job_id"] == job_id and dead["attempts"] == 3 and dead["last_error"] == "answered 500"
    for limit in ("0", "1001", "²", "1e3"):  # "²" is a digit to str.isdigit, not to int()
        refused = api.get(f"/v1/callbacks/dead?limit={limit}", headers={"Authorization": f"Bearer {KEY}"})
        assert (refused.status_code, refused.get_json()["error"]["kind"]) == (400, "bad_option")
    assert redis.zcard(keys.CALLBACKS_DUE) == 0


def test_redirects_are_not_followed_and_slow_receivers_time_out(api, hooked, receiver, make_worker):
    receiver.status, receiver.location = 302, "http://169.254.169.254/latest/meta-data/"
    submit(api, callback_url=receiver.url())
    make_worker().work(burst=True)
    deliverer = deliver_all(hooked, passes=1)
    assert len(receiver.requests) == 1
    receiver.status, receiver.location, receiver.delay = 204, "", 3.0
    started = time.monotonic()
    deliverer.clock = lambda: time.time() + 10
    deliverer.step()
    assert time.monotonic() - started < 2.5, "bounded by OCR_CALLBACK_TIMEOUT_S (1 s here)"


@pytest.mark.parametrize("url, reason", [
    ("http://example.com/hook", "must use https"),
    ("https://127.0.0.1/hook", "loopback, private or link-local"),
    ("https://10.1.2.3/hook", "loopback, private or link-local"),
    ("https://169.254.169.254/latest", "loopback, private or link-local"),
    ("https://[::1]:8443/hook", "loopback, private or link-local"),
    ("https://[::ffff:192.168.0.1]/hook", "loopback, private or link-local"),
    ("https://localhost/hook", "loopback, private or link-local"),
    ("https://user:pw@example.com/hook", "credentials"),
    ("ftp://example.com/hook", "absolute https:// URL"),
    ("/relative", "absolute https:// URL"),
    ("https://example.com:99999/", "not a valid URL"),
    ("https://" + "b" * 64 + ".example.com/", "not a valid host name"),
    ("https://\ufffd\ufffd.example.com/", "not a valid host name"),
])
def test_callback_urls_that_could_reach_inside_are_refused(api, url, reason):
    response = submit(api, callback_url=url)
    assert response.status_code == 400, response.get_json()
    assert response.get_json()["error"]["kind"] == "bad_option" and reason in response.get_json()["error"]["message"]


def test_a_public_https_url_is_accepted_and_a_name_is_checked_when_delivered(api, hooked):
    assert submit(api, callback_url="https://hooks.example.com/batchocr").status_code == 202
    from worker.callback_delivery import DeliveryError, _checked_address

    with pytest.raises(DeliveryError, match="loopback, private or link-local"):
        _checked_address(hooked.replace(callback_hosts=""), "localhost", 443)
    with pytest.raises(DeliveryError, match="not a valid host name"):  # one the API took before it checked names
        _checked_address(hooked, "b" * 64 + ".example.com", 443)


def test_without_a_secret_callbacks_are_refused(settings, redis):
    api = create_app(settings, connection=redis).test_client()
    response = api.post("/v1/jobs", json={"image_base64": LINE, "mode": "line", "callback_url": "https://example.com/"})
    assert response.status_code == 400 and "OCR_CALLBACK_SECRET" in response.get_json()["error"]["message"]


def test_the_delivery_thread_reports_an_outage_once(hooked, caplog):
    """Redis unreachable: one WARNING when the outage starts, not one per try (twice a second)."""
    import logging

    from ops.redis_server import free_port
    from worker.outage import Backoff, Outage

    cut_off = hooked.replace(redis_url=f"redis://127.0.0.1:{free_port()}/0")  # nothing listens there
    deliverer = Deliverer(cut_off, outage=Outage("callbacks", backoff=Backoff(base=0.05, cap=0.2)))
    with caplog.at_level(logging.WARNING):
        deliverer.start()
        time.sleep(3)
        deliverer.stop()
        deliverer.join(timeout=15)
    assert not deliverer.is_alive()
    warnings = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(warnings) == 1 and "Redis is unreachable" in warnings[0], warnings


def test_one_jobs_fault_in_a_delivery_pass_does_not_hold_up_the_others(api, hooked, receiver, make_worker):
    """A fault of one job's own (here injected; a bad host name raised UnicodeError) ended the
    whole pass, so the jobs claimed with it were put off again and again."""
    first, second = (submit(api, callback_url=receiver.url()).get_json()["id"] for _ in range(2))
    make_worker().work(burst=True)
    deliverer = Deliverer(hooked)
    handle = deliverer._handle

    def faulty(job_id):
        if job_id == first:
            raise RuntimeError("a fault of this job's own")
        handle(job_id)

    deliverer._handle = faulty
    assert deliverer.step() == 2
    assert [json.loads(r["body"])["job_id"] for r in receiver.requests] == [second]
