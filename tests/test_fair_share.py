"""Fair share between API keys (issue 18 part 2): within a priority each key's jobs wait in the
key's own rq queue, and workers take from the keys' queues in turn."""

from __future__ import annotations

import base64

import pytest
from rq import Queue
from rq.job import Job
from rq.serializers import JSONSerializer

from api import create_app
from shared import jobs, keys, tenants
from shared.auth import key_id
from tests.helpers import ROOT
from worker.recovery import Reaper

ALICE, BOB = "alice-key-0123456789abcdef", "bob-key-fedcba9876543210xyz"
LINE = base64.b64encode((ROOT / "samples" / "lines" / "address.png").read_bytes()).decode()


@pytest.fixture
def keyed(settings, redis):
    return create_app(settings.replace(api_keys=f"{ALICE},{BOB}"), connection=redis).test_client()


def submit(client, key: str, priority: str = "bulk") -> str:
    response = client.post("/v1/jobs", json={"image_base64": LINE, "mode": "line", "priority": priority},
                           headers={"Authorization": f"Bearer {key}"})
    assert response.status_code == 202, response.get_json()
    return response.get_json()["id"]


def started_order(redis, job_ids: list[str]) -> list[str]:
    fetched = [Job.fetch(i, connection=redis, serializer=JSONSerializer) for i in job_ids]
    assert all(job.get_status() == "finished" for job in fetched)
    return [job.id for job in sorted(fetched, key=lambda job: job.started_at)]


def test_each_key_has_its_own_queue_that_rq_tooling_lists(keyed, redis, settings):
    alice, bob = submit(keyed, ALICE), submit(keyed, BOB, "normal")
    bulk = jobs.get_queue(redis, settings, "bulk")
    assert jobs.get_queue(redis, settings, "bulk", key_id(ALICE)).job_ids == [alice]
    assert jobs.get_queue(redis, settings, "normal", key_id(BOB)).job_ids == [bob]
    assert bulk.count == 0, "keyed jobs are not in the priority's own queue"
    names = {queue.name for queue in Queue.all(connection=redis)}  # what `rq info` lists
    assert {f"{bulk.name}.{key_id(ALICE)}", f"{settings.queue_name}.{key_id(BOB)}"} <= names
    assert tenants.owner_queues(redis, bulk.name) == [f"{bulk.name}.{key_id(ALICE)}"]
    depths = keyed.get("/metrics/queues").get_json()
    assert depths["queued"] == 2 and depths["priorities"] == {"interactive": 0, "normal": 1, "bulk": 1}
    assert f'batchocr_queue_depth{{queue="{bulk.name}.{key_id(ALICE)}"}} 1.0' in keyed.get("/metrics").get_data(True)
    answer = keyed.delete(f"/v1/jobs/{alice}", headers={"Authorization": f"Bearer {ALICE}"}).get_json()
    assert answer["canceled"] is True and jobs.get_queue(redis, settings, "bulk", key_id(ALICE)).count == 0


def test_keys_take_turns_within_a_priority(keyed, redis, make_worker):
    """Alice's backlog came first; Bob's two jobs run second and fourth, not after hers."""
    alice = [submit(keyed, ALICE) for _ in range(6)]
    bob = [submit(keyed, BOB) for _ in range(2)]
    make_worker(max_batch=1).work(burst=True)
    order = started_order(redis, alice + bob)
    assert [job_id in bob for job_id in order[:4]] == [False, True, False, True], order


def test_a_batch_is_filled_from_every_key_with_jobs(keyed, redis, make_worker):
    alice = [submit(keyed, ALICE) for _ in range(8)]
    bob = [submit(keyed, BOB) for _ in range(2)]
    make_worker(max_batch=4, max_wait_ms=0).work(burst=True, max_jobs=1)
    done = {job_id for job_id in alice + bob if jobs.fetch(redis, job_id).get_status().value == "finished"}
    assert set(bob) <= done and len(done) == 4


def test_priorities_still_come_before_keys(keyed, redis, make_worker):
    bulk = [submit(keyed, ALICE) for _ in range(3)]
    interactive = submit(keyed, BOB, "interactive")
    make_worker(max_batch=1).work(burst=True)
    assert started_order(redis, bulk + [interactive])[0] == interactive


def test_a_queue_left_out_of_its_rotation_gets_its_turn_back_from_the_reaper(keyed, redis, settings, make_worker):
    """An API process that died between enqueueing and registering (or a job put back by hand)
    leaves a queue with jobs outside the rotation: the reaper's pass puts it back."""
    job_id = submit(keyed, ALICE)
    bulk = jobs.get_queue(redis, settings, "bulk")
    redis.delete(keys.rotation_key(bulk.name))
    worker = make_worker()
    assert worker.dequeue(None) is None
    Reaper(redis, settings, jobs.get_queues(redis, settings)).run_once()
    job, queue = worker.dequeue(None)
    assert job.id == job_id and queue.name == f"{bulk.name}.{key_id(ALICE)}"


def test_a_dead_workers_job_from_a_keys_queue_goes_back_to_that_queue(keyed, redis, settings, make_worker):
    job_id = submit(keyed, ALICE)
    job, queue = make_worker().dequeue(None)  # then the worker dies: the job sits in the intermediate list
    assert redis.lrange(queue.intermediate_queue_key, 0, -1) == [job_id.encode()]
    now = [1_000_000.0]
    reaper = Reaper(redis, settings.replace(lease_s=2), jobs.get_queues(redis, settings), clock=lambda: now[0])
    assert reaper.run_once() == []  # first sighting
    now[0] += 3
    assert reaper.run_once() == [job_id]
    assert queue.job_ids == [job_id] and redis.llen(queue.intermediate_queue_key) == 0
    assert redis.lrange(keys.rotation_key(tenants.priority_queue_of(queue.name)), 0, -1) == [queue.key.encode()]
    make_worker().work(burst=True)
    assert jobs.fetch(redis, job_id).get_status().value == "finished"


def test_queue_names_of_keys_are_unambiguous():
    assert tenants.queue_name("ocr-bulk", "") == "ocr-bulk"
    assert tenants.priority_queue_of(tenants.queue_name("ocr-bulk", "0123456789abcdef")) == "ocr-bulk"
    assert tenants.priority_queue_of("ocr.prod") == "ocr.prod"
    with pytest.raises(ValueError):
        tenants.queue_name("ocr", "alice.x")
