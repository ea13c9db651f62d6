"""Collections (issue 18 part 4): a group of jobs with counts by status, progress, a paginated
listing, a lazy cancel and one completion callback; through the real API, a real Redis and
in-process workers in burst mode."""

from __future__ import annotations

import base64
import json
import time
import uuid

import pytest

from api import create_app
from shared import backlog, collection_views, job_collections, keys
from shared.auth import key_id
from shared.errors import CollectionNotFoundError
from tests.helpers import ROOT
from tests.test_callbacks import Receiver, deliver_all

LINE = base64.b64encode((ROOT / "samples" / "lines" / "address.png").read_bytes()).decode()
KEYS = ("collection-key-a-0123456789", "collection-key-b-0123456789")


def auth(which: int = 0) -> dict[str, str]:
    return {"Authorization": f"Bearer {KEYS[which]}"}


@pytest.fixture
def keyed(settings):
    return settings.replace(api_keys=",".join(KEYS))


@pytest.fixture
def api(keyed, redis):
    return create_app(keyed, connection=redis).test_client()


def create(api, which: int = 0, **fields):
    return api.post("/v1/collections", json=fields, headers=auth(which))


def submit(api, collection: str, which: int = 0, **fields):
    return api.post("/v1/jobs", json={"image_base64": LINE, "collection": collection, **fields}, headers=auth(which))


def view(api, collection: str, which: int = 0) -> dict:
    return api.get(f"/v1/collections/{collection}", headers=auth(which)).get_json()


def test_a_collection_is_made_without_a_body(api):
    answer = api.post("/v1/collections", headers=auth())  # every field is optional
    assert answer.status_code == 201 and view(api, answer.get_json()["id"])["status"] == "empty"


def test_counts_progress_and_listing_follow_the_jobs(api, redis, keyed, make_worker):
    answer = create(api, name="journals 1921", options={"mode": "line"})
    assert answer.status_code == 201, answer.get_json()
    collection = answer.get_json()["id"]
    assert answer.headers["Location"] == f"/v1/collections/{collection}"
    assert view(api, collection)["status"] == "empty"
    ids = [submit(api, collection).get_json()["id"] for _ in range(5)]
    job = api.get(f"/v1/jobs/{ids[0]}", headers=auth()).get_json()
    assert job["collection"] == collection and job["options"]["mode"] == "line", "the collection's options apply"
    queued = view(api, collection)
    assert (queued["status"], queued["total"], queued["counts"]["queued"], queued["progress"]) == ("active", 5, 5, 0.0)
    make_worker().work(burst=True)
    done = view(api, collection)
    assert done["status"] == "finished" and done["counts"] == {"queued": 0, "started": 0, "finished": 5, "failed": 0,
                                                               "canceled": 0}
    assert done["progress"] == 1.0 and done["started_at"] and done["finished_at"] and done["name"] == "journals 1921"
    first = api.get(f"/v1/collections/{collection}/jobs?limit=2", headers=auth()).get_json()
    assert [j["id"] for j in first["jobs"]] == ids[:2] and first["next_offset"] == 2
    rest = api.get(f"/v1/collections/{collection}/jobs?offset=2&limit=10", headers=auth()).get_json()
    assert [j["id"] for j in rest["jobs"]] == ids[2:] and rest["next_offset"] is None
    assert {j["status"] for j in first["jobs"] + rest["jobs"]} == {"finished"}
    listed = api.get("/v1/collections", headers=auth()).get_json()["collections"]
    assert [c["id"] for c in listed] == [collection]


def test_a_failed_and_a_cancelled_job_are_counted_as_such(api, redis, make_worker):
    collection = create(api).get_json()["id"]
    failing, cancelled, fine = (submit(api, collection, mode="line").get_json()["id"] for _ in range(3))
    redis.delete(keys.image_key(failing, key_id(KEYS[0])))  # its image lapsed before a worker took it
    assert api.delete(f"/v1/jobs/{cancelled}", headers=auth()).get_json()["canceled"]
    make_worker().work(burst=True)
    counts = view(api, collection)["counts"]
    assert (counts["finished"], counts["failed"], counts["canceled"], counts["queued"]) == (1, 1, 1, 0)


def test_cancel_stops_queued_jobs_lets_none_join_and_spends_no_ocr(api, redis, make_worker):
    collection = create(api, options={"mode": "line"}).get_json()["id"]
    other = create(api).get_json()["id"]
    bystander = submit(api, other, mode="line").get_json()["id"]  # opens the batch: its gathering meets them
    ids = [submit(api, collection).get_json()["id"] for _ in range(20)]  # more than one take cancels
    answer = api.delete(f"/v1/collections/{collection}", headers=auth()).get_json()
    assert answer["canceled"] is True and "20 queued" in answer["message"]
    assert api.delete(f"/v1/collections/{collection}", headers=auth()).get_json()["canceled"] is False
    refused = submit(api, collection)
    assert refused.status_code == 409 and refused.get_json()["error"]["kind"] == "collection_conflict"
    worker = make_worker()
    worker.work(burst=True)
    assert worker.batches_run == 1, "only the bystander's job was run"
    statuses = {api.get(f"/v1/jobs/{i}", headers=auth()).get_json()["status"] for i in ids}
    assert statuses == {"canceled"}
    assert api.get(f"/v1/jobs/{bystander}", headers=auth()).get_json()["status"] == "finished"
    final = view(api, collection)
    assert final["status"] == "canceled" and final["counts"]["canceled"] == 20 and final["canceled_at"]
    assert 0 < redis.ttl(f"rq:job:{ids[0]}") <= 3600 * 24 * 30, "a cancelled job's hash lapses like a result"
    assert backlog.totals(redis).jobs == 0 and not redis.keys("batchocr:image:*"), "places and images given back"


def test_create_is_idempotent_with_an_id_and_scoped_to_its_key(api):
    chosen = str(uuid.uuid4())
    first, again = create(api, id=chosen, name="run"), create(api, id=chosen, name="run")
    assert (first.status_code, again.status_code) == (201, 200) and again.get_json()["created"] is False
    taken = create(api, 1, id=chosen)
    assert taken.status_code == 409 and taken.get_json()["error"]["kind"] == "collection_conflict"
    assert api.get(f"/v1/collections/{chosen}", headers=auth(1)).status_code == 404, "another key's is not found"
    assert submit(api, chosen, 1).status_code == 404, "nor may its jobs join it"
    assert api.get("/v1/collections", headers=auth(1)).get_json()["collections"] == []


@pytest.mark.parametrize("fields, reason", [
    ({"id": "not-a-uuid"}, "UUID"),
    ({"options": {"mode": "sideways"}}, "mode"),
    ({"options": "line"}, "options"),
    ({"name": "x" * 201}, "200"),
    ({"colour": "red"}, "unknown"),
    ({"callback_url": "http://10.0.0.1/hook"}, "callback"),
    # A falsy option is not "the default": it is stored as text, and every job joining would be refused.
    ({"options": {"lang": 0}}, "lang"),
    ({"options": {"priority": 0}}, "priority"),
    ({"options": {"result_store": False}}, "result_store"),
    ({"options": {"model": []}}, "model"),
])
def test_bad_collections_are_refused_with_a_reason(api, fields, reason):
    answer = create(api, **fields)
    assert answer.status_code == 400 and reason in answer.get_json()["error"]["message"]


def test_bad_listing_requests_and_unknown_collections(api):
    assert submit(api, str(uuid.uuid4())).status_code == 404
    assert api.get("/v1/collections/nope", headers=auth()).status_code == 404
    collection = create(api).get_json()["id"]
    for query in ("limit=0", "limit=5000", "offset=-1", "limit=x", "offset=%D9%A3", "limit=%C2%B2",
                  "offset=99999999999", "offset=1e3", "offset=", "offset=+1"):
        assert api.get(f"/v1/collections/{collection}/jobs?{query}", headers=auth()).status_code == 400


def test_a_job_that_existed_joins_as_it_stands(api, redis, make_worker):
    job_id = str(uuid.uuid4())
    api.post("/v1/jobs", json={"image_base64": LINE, "mode": "line", "job_id": job_id}, headers=auth())
    make_worker().work(burst=True)
    collection = create(api).get_json()["id"]
    again = submit(api, collection, mode="line", job_id=job_id)
    assert again.status_code == 200 and again.get_json()["created"] is False
    joined = view(api, collection)
    assert joined["total"] == 1 and joined["counts"]["finished"] == 1 and joined["status"] == "finished"


def test_a_queued_job_that_joins_a_second_collection_is_counted_in_both(api, make_worker):
    first = create(api, options={"mode": "line"}).get_json()["id"]
    job_id = str(uuid.uuid4())
    submit(api, first, job_id=job_id)
    second = create(api).get_json()["id"]
    assert submit(api, second, mode="line", job_id=job_id).get_json()["created"] is False
    assert view(api, second)["counts"]["queued"] == 1
    make_worker().work(burst=True)
    for collection in (first, second):
        assert view(api, collection)["counts"] | {"total": view(api, collection)["total"]} == {
            "queued": 0, "started": 0, "finished": 1, "failed": 0, "canceled": 0, "total": 1}, collection


def test_a_retry_into_a_cancelled_collection_keeps_the_failed_job(api, redis, make_worker):
    collection = create(api, options={"mode": "line"}).get_json()["id"]
    job_id = submit(api, collection, job_id=str(uuid.uuid4())).get_json()["id"]
    redis.delete(keys.image_key(job_id, key_id(KEYS[0])))  # it fails: its image lapsed
    make_worker().work(burst=True)
    api.delete(f"/v1/collections/{collection}", headers=auth())
    refused = submit(api, collection, job_id=job_id, retry_failed=True)
    assert refused.status_code == 409 and refused.get_json()["error"]["kind"] == "collection_conflict"
    assert api.get(f"/v1/jobs/{job_id}", headers=auth()).get_json()["status"] == "failed"
    assert view(api, collection)["counts"]["failed"] == 1


def test_a_collection_that_expired_before_its_cancel_is_not_found(redis, settings):
    found, _ = job_collections.create(redis, settings, owner="")
    redis.delete(keys.collection_key(found["id"]))
    with pytest.raises(CollectionNotFoundError):
        job_collections.cancel(redis, found)
    assert not redis.exists(keys.collection_key(found["id"])), "no hash made of the cancel alone"


def test_every_change_counts_once_and_nothing_changes_after_an_end(redis, settings):
    found, _ = job_collections.create(redis, settings, owner="")
    collection = found["id"]
    job_collections.join(redis, collection, "j1")
    steps = ["started", "started", "queued", "started", "finished", "finished", "started", "queued"]
    for status in steps:  # a retried write after an outage, a late requeue: each counts once or not at all
        job_collections.mark(redis, [(collection, "j1", status)])
    job_collections.mark(redis, [(collection, "not-a-member", "finished")])
    counts = collection_views.describe(job_collections.fetch(redis, collection, ""))["counts"]
    assert counts == {"queued": 0, "started": 0, "finished": 1, "failed": 0, "canceled": 0}
    assert redis.ttl(keys.collection_key(collection)) > 0 and redis.ttl(keys.collection_jobs_key(collection)) > 0


@pytest.fixture
def hooked(settings, redis):
    """An API whose key may have callbacks POSTed to a receiver on loopback: (api, settings, receiver)."""
    receiver = Receiver()
    try:
        hooked = settings.replace(api_keys=KEYS[0], callback_secret="collection-callback-secret-01",
                                  callback_hosts=f"127.0.0.1:{receiver.port}")
        yield create_app(hooked, connection=redis).test_client(), hooked, receiver
    finally:
        receiver.close()


def test_the_collection_callback_is_posted_once_when_its_last_job_ends(hooked, make_worker):
    api, settings, receiver = hooked
    collection = create(api, callback_url=receiver.url(), options={"mode": "line"}).get_json()["id"]
    for _ in range(3):
        submit(api, collection)
    make_worker().work(burst=True)
    deliver_all(settings)
    (request,) = receiver.requests
    body = json.loads(request["body"])
    assert body["collection_id"] == collection and body["status"] == "finished" and body["total"] == 3
    assert request["headers"]["X-BatchOCR-Delivery"] == f"{collection}.finished.3"
    assert body["counts"]["finished"] == 3


def test_a_collection_of_jobs_that_joined_ended_is_posted_once_after_the_last_join(hooked, redis, make_worker):
    api, settings, receiver = hooked
    first = create(api, options={"mode": "line"}).get_json()["id"]
    ids = [str(uuid.uuid4()) for _ in range(3)]
    for job_id in ids:
        submit(api, first, job_id=job_id)
    make_worker().work(burst=True)
    rerun = create(api, callback_url=receiver.url(), options={"mode": "line"}).get_json()["id"]
    for job_id in ids:  # every page read already: each joins ended, none is ever open here
        assert submit(api, rerun, job_id=job_id).status_code == 200
    assert view(api, rerun)["status"] == "finished"
    due = redis.zscore(keys.CALLBACKS_DUE, job_collections.WATCH_PREFIX + rerun)
    assert due > time.time() + 1, "due once the run of joins has settled"
    deliver_all(settings)
    assert not receiver.requests
    deliver_all(settings, clock=lambda: time.time() + job_collections.JOIN_SETTLE_S + 1)
    (request,) = receiver.requests
    assert request["headers"]["X-BatchOCR-Delivery"] == f"{rerun}.finished.3"


def test_undoing_the_last_open_submission_finishes_the_collection(api, redis, make_worker):
    collection = create(api, options={"mode": "line"}).get_json()["id"]
    submit(api, collection)
    make_worker().work(burst=True)
    undone = str(uuid.uuid4())
    job_collections.join(redis, collection, undone)  # a submission that then failed
    assert view(api, collection)["status"] == "active"
    job_collections.mark(redis, [(collection, undone, "")])
    final = view(api, collection)
    assert (final["status"], final["total"]) == ("finished", 1) and final["finished_at"]


def test_losing_a_job_id_to_another_key_mid_submit_leaves_no_member_and_no_shared_image(api, redis, keyed,
                                                                                          monkeypatch):
    from shared import jobs
    from shared.payload import JobOptions

    collection = create(api, options={"mode": "line"}).get_json()["id"]
    job_id, enqueue, theirs = str(uuid.uuid4()), jobs._enqueue, (ROOT / "samples" / "lines" / "invoice_total.png")
    other = key_id(KEYS[1])

    def racing(connection, settings, jid, payload):  # the other key queues the same id first
        if payload.owner != other:
            jobs.submit(connection, keyed, theirs.read_bytes(), JobOptions.parse({"mode": "line"}, keyed),
                        job_id=jid, owner=other)
        return enqueue(connection, settings, jid, payload)

    monkeypatch.setattr(jobs, "_enqueue", racing)
    answer = submit(api, collection, job_id=job_id)  # its image was stored before the other key's
    assert answer.status_code == 409 and answer.get_json()["error"]["kind"] == "job_id_conflict"
    final = view(api, collection)
    assert (final["total"], final["counts"]["queued"]) == (0, 0), "no phantom member keeps it open"
    assert backlog.totals(redis).jobs == 1, "the other key's job keeps the id's place"
    winner = jobs.JobPayload.from_job(jobs.fetch(redis, job_id))
    assert redis.get(winner.image_key) == theirs.read_bytes(), "the winner reads its own image, never the loser's"


def test_a_job_queued_again_or_failed_as_poison_is_counted_so(api, redis):
    from shared import jobs
    from worker import recovery

    collection = create(api, options={"mode": "line"}).get_json()["id"]
    taken = [jobs.fetch(redis, submit(api, collection).get_json()["id"]) for _ in range(2)]
    job_collections.mark_jobs(redis, taken, "started")
    assert view(api, collection)["counts"]["started"] == 2
    recovery.requeue(taken[0], jobs.queue_of(redis, taken[0]), reason="its worker died (test)")
    recovery.fail_poison(taken[1], jobs.queue_of(redis, taken[1]), 3)
    counts = view(api, collection)["counts"]
    assert (counts["queued"], counts["started"], counts["failed"]) == (1, 0, 1)


@pytest.mark.parametrize("value", [5, ["x"], {"id": "y"}, "", "../../etc"])
def test_a_job_naming_a_collection_oddly_is_refused_or_joins_none(api, value):
    answer = submit(api, value, mode="line")
    assert answer.status_code in (202, 404), answer.get_json()
    if answer.status_code == 202:
        assert value == "" and "collection" not in api.get(answer.headers["Location"], headers=auth()).get_json()
