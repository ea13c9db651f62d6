"""A worker lives through a Redis outage in every phase of its loop (issue 12).

A real worker process talks to a real Redis (AOF on) through ``tests.faultproxy``, which cuts or
stalls the connections at a chosen moment: before the worker starts, while it idles in the
blocking dequeue, while it gathers a batch, mid-inference, while it records a result (the write
dropped, or applied with its reply lost) and while it cleans up. Each outage outlasts a lease
(every lease lapses). The test talks to Redis directly. After each: every job has exactly one
result, none counted a crash (``attempts`` 1), the worker never exited, and it logged the outage
once when it began and once when it ended.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
import redis
from redis import Redis
from rq.job import Job
from rq.serializers import JSONSerializer

from ops.redis_server import RedisServer, terminate
from shared import jobs
from shared.payload import JobOptions
from shared.settings import Settings
from tests.faultproxy import FaultProxy
from tests.helpers import ROOT, clean_env, wait_until
from tests.producer_helpers import receipts
from worker.outage import Outage

LEASE_S = 4
OUTAGE_S = 2.5 * LEASE_S
LINE = (ROOT / "samples" / "lines" / "address.png").read_bytes()
BEGAN, ENDED = "Redis is unreachable", "Redis is reachable again"


@dataclass
class Rig:
    server: RedisServer
    proxy: FaultProxy
    redis: Redis
    settings: Settings
    env: dict[str, str]
    worker: subprocess.Popen
    log: Path

    def logged(self, text: str) -> int:
        return self.log.read_text(errors="replace").count(text)

    def outage_lines(self, since: int) -> list[str]:
        """The log's outage reports from the ``since``-th start on (what an assertion shows)."""
        lines = [line for line in self.log.read_text(errors="replace").splitlines() if BEGAN in line or ENDED in line]
        starts = [i for i, line in enumerate(lines) if BEGAN in line]
        return lines[starts[since]:] if since < len(starts) else lines[-4:]


def start_worker(env: dict[str, str], log: Path, name: str) -> subprocess.Popen:
    out = log.open("ab")
    return subprocess.Popen([sys.executable, "-m", "worker", "--name", name, "--log-level", "INFO"],
                            env=env, stdout=out, stderr=subprocess.STDOUT)


@pytest.fixture(scope="module")
def rig(tmp_path_factory):
    log = tmp_path_factory.mktemp("outage") / "worker.log"
    with RedisServer(appendonly=True) as server, FaultProxy(server.port) as proxy:
        env = clean_env(OCR_REDIS_URL=proxy.url, OCR_LEASE_S=str(LEASE_S), OCR_QUEUE_NAME="outage",
                        OCR_WORKERS_PER_HOST="1")
        worker = start_worker(env, log, "outage-a")
        redis = Redis.from_url(server.url)
        settings = Settings.from_env(env).replace(redis_url=server.url)
        try:
            rig = Rig(server, proxy, redis, settings, env, worker, log)
            check_jobs(rig, submit(rig, [LINE]))  # the model is loaded and the worker is idle
            yield rig
        finally:
            terminate(worker, grace=30)
            redis.close()


def submit(rig: Rig, images: list[bytes], mode: str = "line") -> list[str]:
    options = JobOptions.parse({"mode": mode}, rig.settings)
    return [jobs.submit(rig.redis, rig.settings, image, options).job.id for image in images]


def check_jobs(rig: Rig, ids: list[str]) -> None:
    """Every job finishes with exactly one result, run as a first attempt (no crash counted)."""
    def fetched() -> list[Job]:
        return [Job.fetch(i, connection=rig.redis, serializer=JSONSerializer) for i in ids]

    wait_until(lambda: all(job.get_status() == "finished" for job in fetched()), 240, "every job to finish", 0.5,
               explain=lambda: [(job.id[:8], job.get_status().value) for job in fetched()])
    for job in fetched():
        assert len(job.results()) == 1, f"job {job.id} has {len(job.results())} results"
        assert job.return_value()["attempts"] == 1, "an outage was counted as a crash"
    assert not rig.redis.exists("batchocr:crashes")
    assert rig.worker.poll() is None, "the worker exited"


def outage(rig: Rig, start, arm=None) -> None:
    """Arm the proxy's trigger and ``start()`` jobs (or cut at once, then start them once Redis
    is back); hold the outage, restore, and check the jobs and the log."""
    began, ended = rig.logged(BEGAN), rig.logged(ENDED)
    if arm is None:
        rig.proxy.cut()
    else:
        trigger = arm(rig.proxy)
        ids = start()
        assert trigger.fired.wait(120), "the trigger never fired"
    time.sleep(OUTAGE_S)
    assert rig.worker.poll() is None, "the worker exited during the outage"
    rig.proxy.restore()
    if arm is None:
        ids = start()
    check_jobs(rig, ids)
    wait_until(lambda: rig.logged(ENDED) > ended, 30, "the end of the outage in the log")
    assert (rig.logged(BEGAN) - began, rig.logged(ENDED) - ended) == (1, 1), \
        f"log the outage once, both ends: {rig.outage_lines(began)}"


def pages(count: int) -> list[bytes]:
    return [data for _, data in receipts()[:count]]


def test_idle_in_the_blocking_dequeue(rig):
    outage(rig, lambda: submit(rig, [LINE] * 3))


def test_gathering_a_batch(rig):
    # The worker marks itself busy only as a batch opens, right before gathering the rest of it.
    outage(rig, lambda: submit(rig, [LINE] * 4), arm=lambda p: p.arm(b"\r\nbusy\r\n"))


def test_mid_inference(rig):
    outage(rig, lambda: submit(rig, pages(3), "page"), arm=lambda p: p.arm(b"\r\nMGET\r\n", forward=True, delay=0.5))


def test_stalled_mid_inference(rig):
    outage(rig, lambda: submit(rig, pages(3), "page"),
           arm=lambda p: p.arm(b"\r\nMGET\r\n", "stall", forward=True, delay=0.5))


def test_recording_a_result_that_never_reached_redis(rig):
    outage(rig, lambda: submit(rig, [LINE] * 3), arm=lambda p: p.arm(b"\r\nXADD\r\n"))


def test_recording_a_result_whose_reply_was_lost(rig):
    outage(rig, lambda: submit(rig, [LINE] * 3), arm=lambda p: p.arm(b"\r\nXADD\r\n", forward=True))


def test_cleaning_up_after_a_batch(rig):
    outage(rig, lambda: submit(rig, [LINE] * 3), arm=lambda p: p.arm(b"HDEL\r\n$16\r\nbatchocr:crashes"))


def test_a_real_redis_restart_mid_batch(rig):
    began = rig.logged(BEGAN)
    ids = submit(rig, pages(4), "page")
    wait_until(lambda: rig.redis.zcard(jobs.get_queue(rig.redis, rig.settings).started_job_registry.key) > 0,
               60, "a started batch", 0.05)
    rig.server.restart(down_for=OUTAGE_S)
    check_jobs(rig, ids)
    assert rig.logged(BEGAN) - began == 1


def test_a_worker_started_while_redis_is_down_waits_for_it(rig):
    rig.proxy.cut()
    second = start_worker(rig.env, rig.log, "outage-b")
    try:
        time.sleep(OUTAGE_S + 10)  # model load, then its first contact with Redis fails
        assert second.poll() is None, "a worker started during an outage exited"
        rig.proxy.restore()
        wait_until(lambda: rig.redis.exists("rq:worker:outage-b"), 60, "the second worker to register")
        check_jobs(rig, submit(rig, [LINE] * 8))
    finally:
        second.terminate()
        assert second.wait(60) == 0


def test_a_full_redis_is_waited_out_like_an_outage(rig):
    """maxmemory reached under noeviction: Redis answers PING but refuses writes. The worker
    (paused while the jobs queue) meets it taking them; it waits, and exits for nothing."""
    full, ended = rig.logged("Redis is full"), rig.logged(ENDED)
    os.kill(rig.worker.pid, signal.SIGSTOP)
    try:
        ids = submit(rig, [LINE] * 3)
        rig.redis.set("test:pad", b"x" * 2_000_000)
        rig.redis.config_set("maxmemory", rig.redis.info("memory")["used_memory"] // 2)
    finally:
        os.kill(rig.worker.pid, signal.SIGCONT)
    try:
        wait_until(lambda: rig.logged("Redis is full") > 0, 60, "the worker to meet the full Redis",
                   explain=lambda: rig.log.read_text()[-3000:])
        time.sleep(3)  # the guardian's PINGs meanwhile (every 1.3 s) are answered: they end nothing
        assert rig.worker.poll() is None, "a full Redis ended the worker"
        assert (rig.logged("Redis is full") - full, rig.logged(ENDED) - ended) == (1, 0), rig.log.read_text()[-3000:]
    finally:
        rig.redis.delete("test:pad")
        rig.redis.config_set("maxmemory", 0)
    check_jobs(rig, ids)


def test_a_worker_asked_to_stop_in_a_network_black_hole_exits(rig):
    """Connections that stay open while nothing flows: rq's teardown would wait for Redis to
    deregister (the socket timeout, ~7 minutes, per attempt); the worker leaves that to lapse."""
    began = rig.logged(BEGAN)
    second = start_worker(rig.env, rig.log, "outage-c")
    try:
        wait_until(lambda: rig.redis.exists("rq:worker:outage-c"), 120, "the second worker to register")
        rig.proxy.stall()
        wait_until(lambda: rig.logged(BEGAN) >= began + 2, 60, "both workers to see the outage")
        second.terminate()
        stopped = time.monotonic()
        assert second.wait(30) == 0, "a worker asked to stop in an outage did not exit"
        assert time.monotonic() - stopped < 15
    finally:
        rig.proxy.restore()
        if second.poll() is None:
            second.kill()
    check_jobs(rig, submit(rig, [LINE]))


class Pings:
    """A connection whose PING fails ``failures`` times, then answers."""

    def __init__(self, failures: int) -> None:
        self.failures = failures

    def ping(self) -> bool:
        self.failures -= 1
        if self.failures >= 0:
            raise redis.exceptions.ConnectionError("still down")
        return True


def test_a_call_that_straddled_an_outage_starts_no_new_one():
    now = [0.0]
    outage = Outage("unit", sleep=lambda s: None, clock=lambda: now[0])
    outage.failed(redis.exceptions.ConnectionError("cut"))
    now[0] = 10.0
    outage.ended()
    now[0] = 15.0  # a call begun at 0 gives up at its socket timeout, after the end
    outage.failed(redis.exceptions.TimeoutError("stalled"), began=0.0)
    assert (outage.down, outage.count) == (False, 1)
    assert outage.wait(Pings(0), redis.exceptions.TimeoutError("stalled"), began=0.0)
    assert outage.count == 1, "Redis answers: nothing to report"
    assert outage.wait(Pings(1), redis.exceptions.TimeoutError("stalled"), began=0.0)
    assert outage.count == 2, "a PING that fails now is a new outage"
    outage.failed(redis.exceptions.ConnectionError("cut again"), began=now[0])
    assert (outage.down, outage.count) == (True, 3), "a call begun after the end reports a new one"


def test_a_failure_whose_call_start_is_unknown_is_confirmed_by_a_ping():
    """rq's own loop and its command channel do not say when their failing call began: the
    outage is reported only once a PING fails too."""
    outage = Outage("unit", sleep=lambda s: None)
    assert outage.wait(Pings(0), redis.exceptions.ConnectionError("closed long ago"))
    assert outage.count == 0, "Redis answers: a straggler, not an outage"
    assert outage.wait(Pings(2), redis.exceptions.ConnectionError("refused"))
    assert (outage.down, outage.count) == (False, 1), "PINGs failed: one outage, begun and ended"


def test_a_full_redis_is_ended_only_by_a_write_it_takes():
    """A full Redis answers PING: the guardian's PINGs (``ended(wrote=False)``) must not end it
    (a log flapping "full" / "reachable again", backoff reset every pass), only the write probe."""
    outage = Outage("unit", sleep=lambda s: None)
    outage.failed(redis.exceptions.OutOfMemoryError("command not allowed when used memory > 'maxmemory'."))
    outage.ended(wrote=False)
    assert (outage.down, outage.full) == (True, True)
    outage.ended()
    assert (outage.down, outage.full, outage.count) == (False, False, 1)
    outage.failed(redis.exceptions.ConnectionError("cut"))
    outage.ended(wrote=False)
    assert not outage.down, "an unreachable Redis that answers again has ended"

    class FullFor:  # answers PING; refuses ``refusals`` writes
        def __init__(self, refusals: int) -> None:
            self.refusals, self.writes = refusals, 0

        def ping(self) -> bool:
            return True

        def set(self, *args, **kwargs) -> bool:
            self.writes += 1
            if self.writes <= self.refusals:
                raise redis.exceptions.OutOfMemoryError("command not allowed when used memory > 'maxmemory'.")
            return True

    outage.failed(redis.exceptions.OutOfMemoryError("full"))  # the guardian found it full
    full = FullFor(2)
    assert outage.wait(full, redis.exceptions.TimeoutError("the main loop's read timed out"))
    assert full.writes == 3 and not outage.down, "a wait for any reason ends a full Redis only by a write"
