"""Priorities (issue 18 part 1): one rq queue per priority, served highest first, with a minimum
share for the lower ones; taken jobs never only in a worker's memory."""

from __future__ import annotations

import base64
import threading
import time

import pytest
from rq.exceptions import DequeueTimeout
from rq.job import Job
from rq.serializers import JSONSerializer

from shared import job_views, jobs, priorities
from shared.payload import JobOptions
from tests.helpers import ROOT
from worker.dequeue import ShareOrder

LINE = (ROOT / "samples" / "lines" / "address.png").read_bytes()


def post(client, priority: str | None = None, **fields):
    body = {"image_base64": base64.b64encode(LINE).decode(), "mode": "line", **fields}
    if priority is not None:
        body["priority"] = priority
    return client.post("/v1/jobs", json=body)


def order_run(redis, job_ids: list[str]) -> list[str]:
    """The ids in the order the worker started them."""
    fetched = [Job.fetch(i, connection=redis, serializer=JSONSerializer) for i in job_ids]
    assert all(job.get_status() == "finished" for job in fetched)
    return [job.id for job in sorted(fetched, key=lambda job: job.started_at)]


def test_each_priority_has_its_own_queue_and_shows_in_the_view(client, redis, settings):
    ids = {}
    for priority in (None, "interactive", "bulk", "NORMAL"):
        response = post(client, priority)
        assert response.status_code == 202, response.get_json()
        ids[priority] = response.get_json()["id"]
    assert jobs.get_queue(redis, settings, "interactive").job_ids == [ids["interactive"]]
    assert jobs.get_queue(redis, settings, "bulk").job_ids == [ids["bulk"]]
    assert jobs.get_queue(redis, settings).job_ids == [ids[None], ids["NORMAL"]]
    base = settings.queue_name
    assert [q.name for q in jobs.get_queues(redis, settings)] == [f"{base}-interactive", base, f"{base}-bulk"]
    assert client.get(f"/v1/jobs/{ids['bulk']}").get_json()["options"]["priority"] == "bulk"
    assert client.get(f"/v1/jobs/{ids[None]}").get_json()["options"]["priority"] == "normal"


def test_an_unknown_priority_is_refused_with_the_choices(client, redis, settings):
    response = post(client, "urgent")
    assert response.status_code == 400
    error = response.get_json()["error"]
    assert error["kind"] == "bad_option" and "interactive, normal, bulk" in error["message"]
    assert all(queue.count == 0 for queue in jobs.get_queues(redis, settings))


def test_a_cancelled_bulk_job_leaves_its_own_queue(client, redis, settings):
    job_id = post(client, "bulk").get_json()["id"]
    answer = client.delete(f"/v1/jobs/{job_id}").get_json()
    assert answer["canceled"] is True
    assert jobs.get_queue(redis, settings, "bulk").count == 0


def test_the_worker_serves_the_highest_priority_first(client, redis, make_worker):
    bulk = [post(client, "bulk").get_json()["id"] for _ in range(3)]
    normal = [post(client).get_json()["id"] for _ in range(2)]
    interactive = [post(client, "interactive").get_json()["id"] for _ in range(2)]
    make_worker(max_batch=1).work(burst=True)
    assert order_run(redis, bulk + normal + interactive) == interactive + normal + bulk


@pytest.mark.parametrize("batch", [1, 4])
def test_a_stream_of_interactive_jobs_leaves_bulk_its_minimum_share(client, redis, make_worker, batch):
    interactive = [post(client, "interactive").get_json()["id"] for _ in range(24)]
    bulk = [post(client, "bulk").get_json()["id"] for _ in range(12)]
    make_worker(max_batch=batch, max_wait_ms=0, min_share=0.25).work(burst=True, max_jobs=24 // batch)
    finished = [i for i in interactive + bulk if jobs.fetch(redis, i).get_status().value == "finished"]
    assert len(finished) == 24
    assert 5 <= sum(job_id in bulk for job_id in finished) <= 7, "a quarter of the jobs while both have jobs"


def test_a_batch_holds_nothing_of_lower_priority_than_the_job_that_opened_it(client, redis, make_worker):
    bulk = [post(client, "bulk").get_json()["id"] for _ in range(4)]
    interactive = [post(client, "interactive").get_json()["id"] for _ in range(2)]
    worker = make_worker(max_batch=4, max_wait_ms=0)
    worker.work(burst=True, max_jobs=1)  # one batch: opened by an interactive job, not filled with bulk
    status = lambda job_id: jobs.fetch(redis, job_id).get_status().value  # noqa: E731
    assert [status(i) for i in interactive] == ["finished"] * 2
    assert [status(i) for i in bulk] == ["queued"] * 4
    late = post(client, "interactive").get_json()["id"]
    worker.work(burst=True, max_jobs=1)  # the interactive job is taken first, alone again
    assert status(late) == "finished" and [status(i) for i in bulk] == ["queued"] * 4
    more = [post(client, "bulk").get_json()["id"] for _ in range(2)]
    worker.work(burst=True)
    batches = {job_views.describe(jobs.fetch(redis, i))["result"]["batch_id"] for i in bulk + more}
    assert len(batches) == 2, "bulk batches fill up to max_batch"


def test_a_taken_job_sits_in_its_queues_intermediate_list(client, redis, make_worker):
    """A worker killed right after taking a job leaves it where the reaper looks."""
    job_id = post(client, "bulk").get_json()["id"]
    worker = make_worker()
    job, queue = worker.dequeue(None)
    assert job.id == job_id and queue.name.endswith("-bulk")
    assert redis.lrange(queue.intermediate_queue_key, 0, -1) == [job_id.encode()]
    assert worker.dequeue(None) is None


def test_an_idle_worker_takes_a_job_that_arrives_while_it_waits(client, redis, make_worker):
    worker = make_worker(idle_poll_s=0.5)
    for priority in ("interactive", "bulk"):  # the one it blocks on, and one it looks at between waits
        timer = threading.Timer(0.3, lambda: post(client, priority))
        timer.start()
        job, queue = worker.dequeue(10)
        timer.join()
        assert job.origin == queue.name and queue.name.endswith(f"-{priority}")
        assert redis.lrange(queue.intermediate_queue_key, 0, -1) == [job.id.encode()]
    for timeout in (0.3, 0.004, 0.0):  # a wait that rounds to 0 must not become BLMOVE's "forever"
        started = time.monotonic()
        with pytest.raises(DequeueTimeout):
            worker.dequeue(timeout)
        assert time.monotonic() - started < timeout + 1


class _Q:
    def __init__(self, key):
        self.key = key


def simulate(share: ShareOrder, queued: dict[str, int], takes: int, batch: int = 1) -> str:
    """What ``takes`` takes serve from queues holding ``queued`` jobs, as the worker gathers
    batches of ``batch``: an opener from any queue, then only from its priority or higher."""
    served = ""
    while len(served) < takes and (opener := _take(share, queued, None)) is not None:
        served += opener
        for _ in range(batch - 1):
            hit = _take(share, queued, opener)
            if hit is None:
                break
            served += hit
    return served[:takes]


def _take(share: ShareOrder, queued: dict[str, int], upto) -> str | None:
    order = share.order() if upto is None else share.upto(share.order(), upto)
    hit = next((q.key for q in order if queued[q.key] > 0), None)
    if hit is None:
        if upto is None:
            share.idle()
        return None
    queued[hit] -= 1
    share.taken(order, hit)
    return hit


def test_share_order_gives_each_lower_queue_its_share_only_while_it_has_jobs():
    queues = [_Q("i"), _Q("n"), _Q("b")]
    alone = simulate(ShareOrder(queues, 0.25), {"i": 100, "n": 0, "b": 100}, 40)
    assert alone.count("b") >= 9 and max(len(run) for run in alone.split("b")) <= 4, alone
    both = simulate(ShareOrder(queues, 0.25), {"i": 100, "n": 100, "b": 100}, 40)
    assert both.count("n") >= 9 and both.count("b") >= 9, both
    share = ShareOrder(queues, 0.25)
    assert simulate(share, {"i": 30, "n": 0, "b": 0}, 30) == "i" * 30
    assert "b" in simulate(share, {"i": 10, "n": 0, "b": 1}, 5), "a bulk job that arrives waits at most 4 takes"
    assert simulate(ShareOrder(queues, 0.1), {"i": 0, "n": 5, "b": 5}, 10) == "nnnnnbbbbb"


@pytest.mark.parametrize("share, batch", [(0.1, 8), (0.25, 4), (0.1, 64), (0.3, 8)])
def test_the_share_holds_when_batches_are_gathered(share, batch):
    """Batches opened by interactive jobs take no bulk jobs; bulk still gets its share."""
    served = simulate(ShareOrder([_Q("i"), _Q("n"), _Q("b")], share), {"i": 10**6, "n": 0, "b": 10**6}, 6400, batch)
    assert share - 0.01 <= served.count("b") / len(served) <= share + 0.01, served.count("b") / len(served)


def test_options_parse_takes_the_entry_points_default(settings):
    assert JobOptions.parse({}, settings).priority == "normal"
    assert JobOptions.parse({}, settings, priority="interactive").priority == "interactive"
    assert JobOptions.parse({"priority": "bulk"}, settings, priority="interactive").priority == "bulk"


def test_a_producer_run_is_bulk_and_its_job_ids_do_not_depend_on_the_priority(redis, settings):
    from producer.cli import parse_args
    from producer.pages import Page
    from producer.transport import RedisTransport
    from shared.s3 import ObjectStore

    assert parse_args(["in", "--out", "out"]).priority == "bulk"
    page = Page(number=1, data=LINE, uri=None, dpi=300, content_id="sha256:abc")
    assert page.job_id({"mode": "line", "priority": "bulk"}) == page.job_id({"mode": "line"})
    transport = RedisTransport(settings, ObjectStore(settings))
    job_id = page.job_id({"mode": "line"})
    assert transport.submit(page, {"mode": "line", "priority": "bulk"}, job_id, retry_failed=False)
    assert jobs.get_queue(redis, settings, "bulk").job_ids == [job_id]


def test_a_job_hash_rq_cannot_read_is_skipped_and_the_worker_goes_on(client, redis, settings, make_worker):
    bad = "00000000-0000-4000-8000-000000000000"
    redis.hset(f"rq:job:{bad}", mapping={"data": b"\xff not json", "status": "queued", "created_at": "x"})
    redis.rpush(jobs.get_queue(redis, settings, "bulk").key, bad)
    good = post(client, "bulk").get_json()["id"]
    worker = make_worker()
    worker.work(burst=True)
    assert jobs.fetch(redis, good).get_status().value == "finished"
    assert redis.llen(jobs.get_queue(redis, settings, "bulk").intermediate_queue_key) == 0
    assert redis.exists(f"rq:job:{bad}"), "left for inspection"
    wrong = "00000000-0000-4000-8000-000000000001"
    redis.set(f"rq:job:{wrong}", b"not a hash")  # WRONGTYPE for rq's HGETALL
    redis.rpush(jobs.get_queue(redis, settings, "bulk").key, wrong)
    good = post(client, "bulk").get_json()["id"]
    worker.work(burst=True)
    assert jobs.fetch(redis, good).get_status().value == "finished"


def test_workers_can_be_kept_for_interactive_jobs(client, redis, make_worker):
    bulk = post(client, "bulk").get_json()["id"]
    interactive = post(client, "interactive").get_json()["id"]
    make_worker(priorities="interactive").work(burst=True)
    assert jobs.fetch(redis, interactive).get_status().value == "finished"
    assert jobs.fetch(redis, bulk).get_status().value == "queued"


def test_a_worker_kept_for_interactive_jobs_still_reaps_every_queue(make_worker, monkeypatch):
    from worker import batching

    seen = []
    monkeypatch.setattr(batching, "Guardian", lambda settings, queues, *args: seen.append(queues) or _Idle())
    worker = make_worker(priorities="interactive")
    worker.work(burst=True)
    assert seen == [priorities.queue_names(worker.settings.queue_name)]


class _Idle:
    def start(self):
        pass

    def stop(self):
        pass
