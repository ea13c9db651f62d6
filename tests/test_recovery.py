"""Breaking things on purpose, with real processes and a real Redis: SIGKILLed workers, poison
pills, SIGTERM (warm and cold), a Redis restart, and 1,000 jobs with a worker killed midway.
Nothing sleeps for fixed long times: every wait polls with a timeout."""

from __future__ import annotations

import io
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request

from PIL import Image, PngImagePlugin
from redis import Redis
from rq.job import Job, JobStatus
from rq.serializers import JSONSerializer
from rq.utils import parse_composite_key

from ops.launcher import Topology
from ops.redis_server import RedisServer
from shared import jobs, keys
from shared.client import ApiClient
from shared.payload import JobOptions
from shared.settings import Settings
from tests.helpers import ROOT, clean_env, wait_until
from tests.producer_helpers import receipts

LINE = (ROOT / "samples" / "lines" / "address.png").read_bytes()
MARKER = "batchocr-test-crash"


def fetch(redis: Redis, ids: list[str]) -> list[Job]:
    return [Job.fetch(i, connection=redis, serializer=JSONSerializer) for i in ids]


def statuses(redis: Redis, ids: list[str]) -> list[str]:
    return [job.get_status().value for job in fetch(redis, ids)]


def worker_process(topology: Topology, worker_name: str) -> subprocess.Popen:
    """The process of a worker named ``batchocr-<pid>-<slot>-<n>[.<generation>]``."""
    return topology.workers_by_slot[int(worker_name.split("-")[2])]


def submit_pages(client: ApiClient, count: int) -> list[str]:
    return [client.submit(data, mode="page")["id"] for _, data in receipts()[:count]]


def unfinished(redis: Redis, settings: Settings, ids: list[str]) -> str:
    """Where the jobs that did not finish are: status, and whether in a queue, the intermediate
    queue or the started registry (a failed wait says this instead of only 'timed out')."""
    queue = jobs.get_queue(redis, settings)
    queued = {i.decode() for i in redis.lrange(queue.key, 0, -1)}
    limbo = {i.decode() for i in redis.lrange(queue.intermediate_queue.key, 0, -1)}
    started = {parse_composite_key(m.decode())[0] for m in redis.zrange(queue.started_job_registry.key, 0, -1)}
    left = [job for job in fetch(redis, ids) if job.get_status() != JobStatus.FINISHED]
    return f"{len(left)} not finished: " + ", ".join(
        f"{job.id[:8]} {job.get_status().value} queued={job.id in queued} limbo={job.id in limbo} "
        f"started={job.id in started} {job.meta.get('error', '')}" for job in left[:10])


def left_the_victim(redis: Redis, ids: list[str], victim: str) -> bool:
    """Whether no job of ``ids`` still reads as started by the dead worker ``victim``."""
    return all(job.get_status() != JobStatus.STARTED or job.worker_name != victim for job in fetch(redis, ids))


def test_a_killed_workers_batch_is_retried_elsewhere_within_60_s():
    """The guarantee that does not depend on page speed: the dead worker's batch is back in the
    queue within a lease and a reaper pass, and its first retry starts within 60 s. Its jobs are
    suspects and run alone, one after another on the one worker left, so when the last of them
    starts depends on how long a page takes on this machine (asserted nowhere)."""
    with Topology(workers=2, env=clean_env(), log_level="WARNING", restart_workers=False) as topology:
        redis = Redis.from_url(topology.settings.redis_url)
        ids = submit_pages(ApiClient(topology.api_url), 16)
        wait_until(lambda: "started" in statuses(redis, ids), 120, "a started job")
        started = [job for job in fetch(redis, ids) if job.get_status() == JobStatus.STARTED]
        victim = started[0].worker_name
        batch = [job.id for job in started if job.worker_name == victim]
        process = worker_process(topology, victim)
        process.kill()
        killed_at = time.time()
        process.wait()
        wait_until(lambda: left_the_victim(redis, batch, victim), 60, "the batch back in the queue", 0.5)
        wait_until(lambda: set(statuses(redis, ids)) == {"finished"}, 400, "every job to finish", 1.0)
        retried = fetch(redis, batch)
        assert min(job.started_at.timestamp() for job in retried) - killed_at < 60, "first retry within 60 s"
        for job in retried:
            assert job.worker_name != victim
            result = job.return_value()
            assert len(job.results()) == 1 and result["attempts"] == 2
            assert result["batch_size"] == 1, "suspects run alone"
        assert all(len(job.results()) == 1 for job in fetch(redis, ids))


def poison_png() -> bytes:
    info = PngImagePlugin.PngInfo()
    info.add_text("Comment", MARKER)
    out = io.BytesIO()
    Image.open(io.BytesIO(LINE)).save(out, format="PNG", pnginfo=info)
    return out.getvalue()


def test_a_poison_pill_fails_after_three_crashes_and_spares_its_batch_mates():
    env = clean_env(OCR_LEASE_S="3", OCR_TEST_CRASH_MARKER=MARKER)
    with Topology(workers=2, env=env, log_level="WARNING") as topology:
        redis = Redis.from_url(topology.settings.redis_url)
        client = ApiClient(topology.api_url)
        poison = client.submit(poison_png(), mode="line")["id"]
        mates = [client.submit(LINE, mode="line")["id"] for _ in range(7)]
        wait_until(lambda: statuses(redis, [poison]) == ["failed"], 240, "the poison pill to fail", 0.5)
        wait_until(lambda: set(statuses(redis, mates)) == {"finished"}, 120, "its batch-mates", 0.5)
        assert client.get(poison)["error"]["kind"] == "poison"
        assert topology.restarts == 3
        for job in fetch(redis, mates):
            result = job.return_value()
            assert len(job.results()) == 1 and result["attempts"] <= 2
            assert result["attempts"] == 1 or result["batch_size"] == 1, "suspects run alone"


def test_sigterm_finishes_the_batch_in_hand_and_takes_no_more():
    with Topology(workers=1, env=clean_env(), log_level="WARNING", restart_workers=False) as topology:
        redis = Redis.from_url(topology.settings.redis_url)
        ids = submit_pages(ApiClient(topology.api_url), 12)
        wait_until(lambda: "started" in statuses(redis, ids), 120, "a started job")
        in_hand = [job.id for job in fetch(redis, ids) if job.get_status() == JobStatus.STARTED]
        process = topology.workers_by_slot[1]
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=180) == 0
        final = dict(zip(ids, statuses(redis, ids)))
        assert all(final[i] == "finished" for i in in_hand)
        assert set(final.values()) <= {"finished", "queued"} and "queued" in final.values()


def test_a_second_sigterm_exits_now_and_hands_the_batch_back():
    # The two pages make one batch (gathered for up to 2 s, closed at two) of many ONNX Runtime
    # calls, tens of seconds on 2 cores: a second signal that waited for it would be plain to see.
    env = clean_env(OCR_MAX_BATCH="2", OCR_MAX_WAIT_MS="2000")
    with Topology(workers=1, env=env, log_level="WARNING", restart_workers=False) as topology:
        redis = Redis.from_url(topology.settings.redis_url)
        ids = [ApiClient(topology.api_url).submit(data, mode="page")["id"] for data in _big_pages(2)]
        wait_until(lambda: set(statuses(redis, ids)) == {"started"}, 120, "the batch to start", 0.05)
        process = topology.workers_by_slot[1]
        process.send_signal(signal.SIGTERM)
        time.sleep(1.2)  # rq treats a second signal within 1 s as the same one
        process.send_signal(signal.SIGTERM)
        second = time.monotonic()
        code = process.wait(timeout=120)
        exited_s = time.monotonic() - second
        assert code == 0
        assert statuses(redis, ids) == ["queued"] * 2, "the batch was handed back, not finished here"
        queue = jobs.get_queue(redis, topology.settings)
        assert sorted(i.decode() for i in redis.lrange(queue.key, 0, -1)) == sorted(ids)
        assert redis.hlen(keys.CRASHES) == 0, "a stop is not a crash"
        burst = subprocess.run([sys.executable, "-m", "worker", "--burst", "--log-level", "WARNING"],
                               env=topology.env, timeout=600)
        assert burst.returncode == 0
        done = fetch(redis, ids)
        assert [job.get_status() for job in done] == [JobStatus.FINISHED] * 2
        assert all(len(job.results()) == 1 and job.return_value()["attempts"] == 1 for job in done)
        assert {job.return_value()["batch_size"] for job in done} == {2}
        timings = [job.return_value()["timings_ms"] for job in done]
        batch_s = (sum(t["detection"] for t in timings) + timings[0]["recognition"]) / 1000
        assert exited_s < batch_s / 3, f"exited {exited_s:.1f} s after the second signal; the batch takes {batch_s:.1f} s"


def _big_pages(count: int) -> list[bytes]:
    """Dense pages (several seconds each), so the second signal lands inside the batch."""
    from tests.helpers import eval_dir
    from worker.offline.evaluation import page_images

    return [p.read_bytes() for p in page_images(eval_dir("omnidocbench_pages") / "pages")[:count]]


def test_jobs_queued_before_a_redis_restart_complete_after_it():
    with RedisServer(appendonly=True) as server:
        env = clean_env(REDIS_URL=server.url, OCR_LEASE_S="5")
        with Topology(workers=1, env=env, log_level="WARNING") as topology:
            client = ApiClient(topology.api_url)
            ids = submit_pages(client, 6)
            server.shutdown()
            started = time.monotonic()
            try:
                urllib.request.urlopen(f"{topology.api_url}/v1/jobs/{ids[0]}", timeout=15)
                raise AssertionError("the API answered while Redis was down")
            except urllib.error.HTTPError as err:
                assert err.code == 503 and b"unavailable" in err.read()
            assert time.monotonic() - started < 10, "503 promptly, never a hang"
            time.sleep(1)
            server.start()
            redis = Redis.from_url(server.url)
            wait_until(lambda: set(statuses(redis, ids)) == {"finished"}, 400, "every job after the restart", 1.0)
            assert all(len(job.results()) == 1 for job in fetch(redis, ids))
            assert client.get(ids[0])["status"] == "finished"


def test_a_thousand_jobs_with_a_worker_killed_midway_lose_nothing():
    env = clean_env(OCR_LEASE_S="5")
    with Topology(workers=2, env=env, log_level="WARNING") as topology:
        redis = Redis.from_url(topology.settings.redis_url)
        settings = Settings.from_env(topology.env)
        options = JobOptions.parse({"mode": "line"}, settings)
        ids = [jobs.submit(redis, settings, LINE, options).job.id for _ in range(1000)]
        finished = lambda: len(jobs.get_queue(redis, settings).finished_job_registry)  # noqa: E731
        wait_until(lambda: finished() >= 300, 300, "300 jobs", 0.5)
        topology.workers_by_slot[1].kill()
        wait_until(lambda: finished() >= 1000, 360, "all 1,000 jobs", 1.0,
                   explain=lambda: unfinished(redis, settings, ids))
        done = fetch(redis, ids)
        assert [job.get_status().value for job in done].count("finished") == 1000
        assert all(len(job.results()) == 1 for job in done), "no duplicated results"
        assert topology.restarts == 1
