"""The batching worker: one recognition call per batch of equally wide lines, batch invariance,
failure isolation."""

from __future__ import annotations

import base64
import threading
import time

import cv2
import numpy as np

from shared import keys
from shared.settings import Settings
from tests.helpers import ROOT, eval_lines, wait_until
from worker.preprocess import rec_width
from worker.recognize import slot_width

GOOD = (ROOT / "samples" / "lines" / "address.png").read_bytes()


def submit(client, image: bytes, mode: str = "line") -> str:
    response = client.post("/v1/jobs", json={"image_base64": base64.b64encode(image).decode(), "mode": mode})
    assert response.status_code == 202, response.get_json()
    return response.get_json()["id"]


def results(client, ids):
    return [client.get(f"/v1/jobs/{job_id}").get_json() for job_id in ids]


def similar_width_lines(count: int, pipeline) -> list[bytes]:
    """``count`` real lines (UW3 + Chinese) of one recognition input width (``slot_width``)
    that fit one chunk: the common case of a bulk run over similar lines."""
    pool = [image for image, _ in eval_lines("uw3_lines", 150) + eval_lines("omnidocbench_zh_lines", 150)]
    settings = pipeline.settings
    slots: dict[int, list[bytes]] = {}
    for image in pool:
        shape = cv2.imdecode(np.frombuffer(image, np.uint8), cv2.IMREAD_COLOR).shape
        width = rec_width(shape, pipeline.model.spec.rec_height, settings.rec_max_width, pipeline.width_scale)
        slots.setdefault(slot_width(width, pipeline.tail_pad, settings.rec_width_bucket), []).append(image)
    fitting = [slot for slot, images in slots.items() if len(images) >= count and count * slot <= settings.rec_chunk_width]
    return slots[max(fitting, key=lambda slot: len(slots[slot]))][:count]


def test_eight_line_jobs_take_one_recognition_call_and_match_running_alone(client, make_worker, pipelines):
    lines = similar_width_lines(8, pipelines["ppocrv6-small"])
    rec = pipelines["ppocrv6-small"].model.rec

    ids = [submit(client, image) for image in lines]
    worker = make_worker(max_batch=8)
    calls = rec.calls
    worker.work(burst=True)
    assert rec.calls - calls == 1
    assert worker.batches_run == 1
    batched = results(client, ids)
    assert all(view["status"] == "finished" and view["result"]["batch_size"] == 8 for view in batched)

    alone_ids = [submit(client, image) for image in lines]
    single = make_worker(max_batch=1)
    single.work(burst=True)
    assert single.batches_run == 8
    alone = results(client, alone_ids)
    assert [v["result"]["batch_size"] for v in alone] == [1] * 8
    assert [v["result"]["text"] for v in batched] == [v["result"]["text"] for v in alone]
    assert all(v["result"]["text"] for v in batched)


def test_lines_of_different_widths_are_never_padded_for_each_other(client, make_worker, pipelines):
    short, long = eval_lines("omnidocbench_zh_lines", 1, start=5)[0][0], eval_lines("uw3_lines", 1)[0][0]
    ids = [submit(client, short), submit(client, long)]
    rec = pipelines["ppocrv6-small"].model.rec
    calls = rec.calls
    make_worker().work(burst=True)
    assert rec.calls - calls == 2
    assert [v["result"]["batch_size"] for v in results(client, ids)] == [2, 2]


def test_a_corrupt_image_fails_alone_with_a_reason(client, redis, make_worker):
    truncated = GOOD[: len(GOOD) // 3]  # valid PNG header, so the API accepts it; pixels are missing
    ids = [submit(client, GOOD), submit(client, truncated), submit(client, GOOD), submit(client, GOOD)]
    redis.delete(keys.image_key(ids[3]))  # its image expired before a worker got to it
    worker = make_worker()
    worker.work(burst=True)
    assert worker.batches_run == 1
    views = results(client, ids)
    assert [v["status"] for v in views] == ["finished", "failed", "finished", "failed"]
    assert views[1]["error"]["kind"] == "undecodable_image" and "corrupt" in views[1]["error"]["message"]
    assert views[3]["error"]["kind"] == "image_expired"
    assert views[0]["result"]["text"] == views[2]["result"]["text"] == "42 Wallaby Way, Sydney NSW 2000"
    assert all(v["result"]["batch_size"] == 4 for v in (views[0], views[2]))
    assert not redis.keys(keys.image_key("*")), "images are deleted once their jobs end"
    assert worker.get_state() != "busy"


def test_an_outcome_a_full_redis_refuses_goes_back_to_the_queue_not_counted_as_a_crash(client, redis, make_worker,
                                                                                       monkeypatch):
    """Recording meets maxmemory (its result may never fit, so it is not waited out there): the
    job is handed back, not left for its lease to lapse, which the reaper would count as a crash
    toward ``poison``; its batch-mate is recorded as usual."""
    import redis as redis_lib
    from worker.batching import BatchWorker

    ids = [submit(client, GOOD), submit(client, GOOD)]
    refused: list[str] = []
    record = BatchWorker._finalize_success

    def refuse_first(self, job, *args, **kwargs):
        if not refused:
            refused.append(job.id)
            raise redis_lib.exceptions.OutOfMemoryError("command not allowed when used memory > 'maxmemory'.")
        return record(self, job, *args, **kwargs)

    monkeypatch.setattr(BatchWorker, "_finalize_success", refuse_first)
    worker = make_worker()
    worker.work(burst=True)  # the job handed back is taken again in the same burst
    views = results(client, ids)
    assert [v["status"] for v in views] == ["finished", "finished"] and worker.batches_run == 2
    assert redis.hget(keys.CRASHES, refused[0]) is None
    assert all(v["result"]["attempts"] == 1 for v in views)


def test_a_batch_never_exceeds_max_batch(client, make_worker):
    ids = [submit(client, GOOD) for _ in range(5)]
    worker = make_worker(max_batch=2)
    worker.work(burst=True)
    assert worker.batches_run == 3
    assert sorted(v["result"]["batch_size"] for v in results(client, ids)) == [1, 2, 2, 2, 2]


def test_a_job_arriving_within_max_wait_joins_the_batch(client, app, make_worker, redis, settings):
    """The second job is submitted once the worker has taken the first (the batch is open);
    the batch then closes because it is full: the late job waits milliseconds, not the 10 s
    ``max_wait``."""
    from shared.jobs import get_queue

    first = submit(client, GOOD)
    queue_key = get_queue(redis, settings).key
    late: list[str] = []

    def submit_once_the_batch_is_open():
        wait_until(lambda: redis.llen(queue_key) == 0, 60, "the worker to take the first job", 0.002)
        with app.test_client() as other:
            late.append(submit(other, GOOD))

    thread = threading.Thread(target=submit_once_the_batch_is_open)
    worker = make_worker(max_wait_ms=10_000, max_batch=2)
    thread.start()
    worker.work(burst=True)
    thread.join()
    assert worker.batches_run == 1
    views = results(client, [first, *late])
    assert [v["result"]["batch_size"] for v in views] == [2, 2]
    assert views[1]["result"]["timings_ms"]["queue_wait"] < 5000, "the batch closed as soon as it was full"


def test_a_plain_rq_worker_runs_our_jobs_one_at_a_time(client, redis, settings):
    from rq import SimpleWorker
    from rq.serializers import JSONSerializer

    from shared.jobs import get_queue

    ids = [submit(client, GOOD), submit(client, b"\x89PNG\r\n\x1a\n" + GOOD[8:200])]
    SimpleWorker([get_queue(redis, settings)], connection=redis, serializer=JSONSerializer).work(burst=True)
    done, broken = results(client, ids)
    assert done["status"] == "finished" and done["result"]["text"] == "42 Wallaby Way, Sydney NSW 2000"
    assert done["result"]["batch_size"] == 1
    assert broken["status"] == "failed" and broken["error"]["kind"] == "undecodable_image"
    assert not redis.keys(keys.image_key("*"))


class StallingOn:
    """A loaded pipeline that stalls for ``stall_s`` (far past a 1 s job timeout, which
    interrupts the stall) whenever a batch holds an image of ``shape``: one slow job."""

    def __init__(self, pipeline, shape: tuple[int, ...], stall_s: float) -> None:
        self.pipeline, self.shape, self.stall_s, self.batches = pipeline, shape, stall_s, []

    def run(self, tasks):
        self.batches.append(len(tasks))
        if any(task.image.shape == self.shape for task in tasks):
            time.sleep(self.stall_s)
        return self.pipeline.run(tasks)


def test_a_batch_past_the_job_timeout_fails_only_the_job_slow_alone(client, pipelines, settings, redis):
    """Which job of a batch made it run past the job timeout is not known, so each runs again
    alone: the slow one then fails as ``timeout``, its batch-mates finish, the worker lives on."""
    from api import create_app
    from worker.__main__ import build_worker

    hurried = create_app(settings.replace(job_timeout_s=1), connection=redis).test_client()
    other = (ROOT / "samples" / "lines" / "invoice_total.png").read_bytes()
    slow, quick = submit(hurried, other), [submit(hurried, GOOD), submit(hurried, GOOD)]
    shape = cv2.imdecode(np.frombuffer(other, np.uint8), cv2.IMREAD_COLOR).shape
    stalling = StallingOn(pipelines[settings.default_model], shape, stall_s=60)
    worker = build_worker(settings, redis, pipelines={settings.default_model: stalling})
    started = time.monotonic()
    worker.work(burst=True)
    assert time.monotonic() - started < 40, "the timeout cut the stalled batches short"
    assert stalling.batches == [3, 1, 1, 1], "the batch, then each of its jobs alone"
    failed, *finished = results(client, [slow, *quick])
    assert failed["status"] == "failed" and failed["error"]["kind"] == "timeout", failed
    assert [v["status"] for v in finished] == ["finished", "finished"]
    assert all(v["result"]["batch_size"] == 1 for v in finished)
    assert not redis.hlen(keys.CRASHES), "a timeout is not a crash: nothing is left counted"


def test_a_worker_stops_without_waiting_out_its_command_channel(make_worker):
    """rq's command channel thread waited 60 s between reads, and redis-py 8.2 joins it on stop:
    a thread that had already read the unsubscribe reply held a worker's shutdown for a minute.
    Here the thread is put in exactly that state before the worker stops."""
    worker = make_worker()
    worker.subscribe()
    wait_until(lambda: worker.pubsub.subscribed, 10, "the command channel to subscribe", 0.05)
    worker.pubsub.unsubscribe()
    wait_until(lambda: not worker.pubsub.subscribed, 10, "the thread to read the unsubscribe reply", 0.05)
    time.sleep(0.3)  # the thread is back in its idle wait
    began = time.monotonic()
    worker.unsubscribe()
    assert time.monotonic() - began < 10, "stopping waited out the idle wait"
    assert not worker.pubsub_thread.is_alive()
