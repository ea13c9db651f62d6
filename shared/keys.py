"""Every Redis key batchocr writes, in one place (rq's own keys stay rq's)."""

from __future__ import annotations

PREFIX = "batchocr"


def image_key(job_id: str, owner: str = "") -> str:
    """Raw image bytes of a job, written by the API with a TTL, deleted when the job ends; under
    its owner's key id, so two keys' racing submits of one job id never share an image."""
    return f"{PREFIX}:image:{owner}:{job_id}" if owner else f"{PREFIX}:image:{job_id}"


def lease_key(job_id: str) -> str:
    """A running job's lease: set by the worker holding it, renewed while it runs (TTL = lease)."""
    return f"{PREFIX}:lease:{job_id}"


# Hash version -> weight: the canary split for jobs that name no model version (shared.canary).
CANARY = f"{PREFIX}:canary"

# Hash job id -> how many workers died holding that job (suspects run alone; N = poison).
CRASHES = f"{PREFIX}:crashes"

# Sorted set worker name -> when its guardian last reached Redis (unix time): the workers alive,
# where rq's own registration outlives a killed worker by its TTL (~8 minutes).
WORKERS_SEEN = f"{PREFIX}:workers:seen"

# Written (with a short TTL) right after a job is queued when OCR_SUBMIT_REPLICAS > 0, then
# WAITed on: replicas that acknowledge it hold every earlier write, the job's included.
REPLICATION_PROBE = f"{PREFIX}:replication-probe"
# Written (5 s TTL) by a worker waiting out a Redis that refused a write for maxmemory: accepted, it has room again.
WRITE_PROBE = f"{PREFIX}:write-probe"


def done_channel(job_id: str) -> str:
    """Pub/sub channel on which a job's end is announced to clients waiting on it."""
    return f"{PREFIX}:done:{job_id}"


def limbo_key(queue_name: str) -> str:
    """Hash job id -> first time the reaper saw it in rq's intermediate queue with no lease."""
    return f"{PREFIX}:limbo:{queue_name}"


def rotation_key(queue_name: str) -> str:
    """List of the keys of a priority queue's per-API-key queues that have jobs, served in turn
    (``shared.tenants``)."""
    return f"{PREFIX}:rotation:{queue_name}"


def reaper_lock(queue_name: str) -> str:
    return f"{PREFIX}:reaper:{queue_name}"


# The backlog's tally (shared.backlog): every admitted job until it ends, and what it holds.
# Sorted set job id -> when its entry lapses (its image's TTL); hash job id -> "<image bytes
# held in Redis> <owner>"; a string: the bytes of every held image; a hash per API key:
# fields "jobs" and "bytes"; a hash bound -> refusals so far.
BACKLOG_JOBS = f"{PREFIX}:backlog:jobs"
BACKLOG_HELD = f"{PREFIX}:backlog:held"
BACKLOG_BYTES = f"{PREFIX}:backlog:bytes"
BACKLOG_OWNER_PREFIX = f"{PREFIX}:backlog:owner:"
BACKLOG_REFUSALS = f"{PREFIX}:backlog:refusals"
# Jobs that ended in one 10-second window (its start // 10): the drain rate behind Retry-After.
DRAINED_PREFIX = f"{PREFIX}:drained:"


def backlog_owner_key(owner: str) -> str:
    return BACKLOG_OWNER_PREFIX + owner


def drained_key(window: int) -> str:
    return f"{DRAINED_PREFIX}{window}"


# Completion callbacks (shared.callbacks): a hash per watched job (url, owner, since, tries,
# looks); a sorted set job id -> when a deliverer looks at it next; a list per API key of the
# deliveries that ran out of tries (JSON, newest first).
CALLBACKS_DUE = f"{PREFIX}:callbacks:due"


def callback_key(job_id: str) -> str:
    return f"{PREFIX}:callback:{job_id}"


def callbacks_dead_key(owner: str) -> str:
    return f"{PREFIX}:callbacks:dead:{owner}"


# Collections (shared.job_collections): a hash per collection (what it is, its counts by
# status), a hash job id -> status of its jobs, a sorted set job id -> join order (listing),
# a set per job of the collections it joined besides its own (a page two runs share), and a
# sorted set per API key: collection id -> created at. The job and order keys are the hash's
# key plus a suffix: the collections' Lua scripts derive them so.
def collection_key(collection_id: str) -> str:
    return f"{PREFIX}:collection:{collection_id}"


def collection_jobs_key(collection_id: str) -> str:
    return collection_key(collection_id) + ":jobs"


def collection_order_key(collection_id: str) -> str:
    return collection_key(collection_id) + ":order"


def job_collections_key(job_id: str) -> str:
    return f"{PREFIX}:job-collections:{job_id}"


def owner_collections_key(owner: str) -> str:
    return f"{PREFIX}:collections:{owner}"
