"""The reaper in-process: dead workers' jobs are queued again at the front, suspects run alone,
repeat offenders fail as poison, jobs stuck in rq's intermediate queue come back."""

from __future__ import annotations

import base64
import time

from rq.job import Job, JobStatus
from rq.serializers import JSONSerializer

from shared import jobs, keys
from tests.helpers import ROOT
from worker.recovery import Reaper, is_suspect

LINE = base64.b64encode((ROOT / "samples" / "lines" / "address.png").read_bytes()).decode()


def submit(client) -> str:
    return client.post("/v1/jobs", json={"image_base64": LINE, "mode": "line"}).get_json()["id"]


def start_as_a_worker_would(make_worker, job_id: str, redis):
    """Dequeue and mark started, then 'die': no finalize, and the lease left to lapse."""
    worker = make_worker()
    job, queue = worker.dequeue_job_and_maintain_ttl(1)
    assert job.id == job_id
    worker._prepare([(job, queue)], time.monotonic() + 60)
    redis.delete(keys.lease_key(job_id))
    return queue


def die_between_preparation_steps(make_worker, redis):
    """Dequeue, take the lease, register rq's execution, then 'die' before the status is set
    STARTED; the lease is left to lapse."""
    worker = make_worker()
    job, queue = worker.dequeue_job_and_maintain_ttl(1)
    worker.leases.hold(redis, job.id, time.monotonic() + 60)
    worker.prepare_execution(job)
    redis.delete(keys.lease_key(job.id))
    return job, queue


def test_a_started_job_without_a_lease_is_queued_again_then_failed_as_poison(client, redis, make_worker, settings):
    job_id = submit(client)
    other = submit(client)
    for crash in (1, 2):
        queue = start_as_a_worker_would(make_worker, job_id, redis)
        assert Reaper(redis, settings, [queue]).run_once() == [job_id]
        assert redis.lindex(queue.key, 0).decode() == job_id, "requeued at the front"
        assert Job.fetch(job_id, connection=redis, serializer=JSONSerializer).get_status() == JobStatus.QUEUED
        assert int(redis.hget(keys.CRASHES, job_id)) == crash and is_suspect(redis, job_id)
    queue = start_as_a_worker_would(make_worker, job_id, redis)
    Reaper(redis, settings, [queue]).run_once()
    view = client.get(f"/v1/jobs/{job_id}").get_json()
    assert view["status"] == "failed" and view["error"]["kind"] == "poison"
    assert not redis.hexists(keys.CRASHES, job_id)
    make_worker().work(burst=True)
    assert client.get(f"/v1/jobs/{other}").get_json()["result"]["attempts"] == 1


def test_a_suspect_runs_alone_and_reports_its_attempts(client, redis, make_worker, settings):
    suspect = submit(client)
    queue = start_as_a_worker_would(make_worker, suspect, redis)
    Reaper(redis, settings, [queue]).run_once()
    mates = [submit(client) for _ in range(5)]
    make_worker().work(burst=True)
    views = {i: client.get(f"/v1/jobs/{i}").get_json()["result"] for i in [suspect, *mates]}
    assert (views[suspect]["batch_size"], views[suspect]["attempts"]) == (1, 2)
    assert all(views[i]["batch_size"] == 5 and views[i]["attempts"] == 1 for i in mates)
    assert not is_suspect(redis, suspect)


def test_a_worker_killed_between_rqs_two_preparation_steps_loses_no_job(client, redis, make_worker, settings):
    """rq registers the execution (started registry) and then sets the status STARTED, in two
    round trips. A worker SIGKILLed between them left a QUEUED job in the started registry and
    in no queue: the reaper must still queue it again."""
    job_id = submit(client)
    job, queue = die_between_preparation_steps(make_worker, redis)
    assert job.get_status() == JobStatus.QUEUED and redis.llen(queue.key) == 0
    assert Reaper(redis, settings, [queue]).run_once() == [job_id]
    assert redis.lrange(queue.key, 0, -1) == [job_id.encode()] and redis.llen(queue.intermediate_queue.key) == 0
    assert redis.zcard(queue.started_job_registry.key) == 0
    make_worker().work(burst=True)
    assert client.get(f"/v1/jobs/{job_id}").get_json()["status"] == "finished"


def test_a_job_whose_rq_execution_records_expired_is_queued_again_once(client, redis, make_worker, settings):
    """rq finds a job's started-registry entries through execution records that expire; the
    reaper must still remove the entry, or every later pass would queue the job again."""
    job_id = submit(client)
    _, queue = die_between_preparation_steps(make_worker, redis)
    redis.delete(*redis.keys(f"rq:execution*{job_id}*"))
    reaper = Reaper(redis, settings, [queue])
    assert reaper.run_once() == [job_id]
    assert reaper.run_once() == [] and redis.zcard(queue.started_job_registry.key) == 0
    assert redis.lrange(queue.key, 0, -1) == [job_id.encode()]


def test_a_job_stuck_in_the_intermediate_queue_comes_back(client, redis, settings):
    """Taken back once it has been seen stuck for longer than a lease, by the reaper's clock."""
    job_id = submit(client)
    queue = jobs.get_queue(redis, settings)
    redis.lmove(queue.key, queue.intermediate_queue.key, "LEFT", "RIGHT")  # a worker died right here
    now = [1_000_000.0]
    reaper = Reaper(redis, settings.replace(lease_s=2), [queue], clock=lambda: now[0])
    assert reaper.run_once() == []  # first sighting
    now[0] += 2
    assert reaper.run_once() == [], "not before a whole lease has passed"
    now[0] += 0.01
    assert reaper.run_once() == [job_id]
    assert redis.lrange(queue.key, 0, -1) == [job_id.encode()] and redis.llen(queue.intermediate_queue.key) == 0


def test_leases_are_renewed_and_released_only_by_their_owner(redis):
    from worker.leases import release_leases, renew_leases

    redis.set(keys.lease_key("j1"), "worker-b", ex=5)
    renew_leases(redis, ["j1"], "worker-a", 100)
    release_leases(redis, ["j1"], "worker-a")
    assert redis.get(keys.lease_key("j1")) == b"worker-b" and redis.ttl(keys.lease_key("j1")) <= 5
    renew_leases(redis, ["j1"], "worker-b", 100)
    assert redis.ttl(keys.lease_key("j1")) > 5
    renew_leases(redis, ["gone"], "worker-a", 100)
    assert not redis.exists(keys.lease_key("gone")), "a lapsed lease is not taken back"
    release_leases(redis, ["j1"], "worker-b")
    assert not redis.exists(keys.lease_key("j1"))


def test_a_job_queued_again_and_taken_at_once_is_not_queued_a_second_time(client, redis, make_worker, settings):
    """The race fresh-clone CI met: a dead worker's job, stuck in the intermediate queue long
    enough to be due, is queued again for its expired lease; a live worker takes it into the
    intermediate queue at once; the same reaper pass must not queue it again from there."""
    job_id = submit(client)
    queue = start_as_a_worker_would(make_worker, job_id, redis)
    now = [1_000_000.0]
    redis.rpush(queue.intermediate_queue.key, job_id)  # as the dead worker left it
    reaper = Reaper(redis, settings.replace(lease_s=2), [queue], clock=lambda: now[0])
    redis.hset(keys.limbo_key(queue.name), job_id, now[0] - 60)  # first seen stuck long ago
    taken = reaper._reap_started(queue)
    assert taken == [job_id]
    redis.lmove(queue.key, queue.intermediate_queue.key, "LEFT", "RIGHT")  # a live worker takes it
    assert reaper._reap_limbo(queue) == []
    assert redis.llen(queue.key) == 0 and redis.lrange(queue.intermediate_queue.key, 0, -1) == [job_id.encode()]
