"""Fair share between API keys: within a priority, each key's jobs wait in a queue of their own,
and workers take from those queues in turn.

A job of the API key with id ``k`` (``shared.auth.key_id``: 16 hex digits) and priority ``p``
waits in the rq queue ``<queue of p>.<k>`` (e.g. ``ocr-bulk.3fa2b1c0d4e5f607``); jobs with no
key (an open API) wait in the priority's own queue. So ``rq info`` and rq-dashboard list each
key's backlog, and one key's 100,000 queued pages are not in front of another key's ten.

Each priority has a rotation (``keys.rotation_key``): a Redis list of the keys of its queues that
have jobs. A submitter adds its queue after enqueueing (``register``). A worker's take
(``worker.dequeue``) moves the rotation's head to its tail and takes one job from that queue,
dropping the queue from the rotation when it is found empty, all in one Lua call: the queues
with jobs are served round-robin, a job each per turn. A queue with jobs but left out of the
rotation (a submitter that died between the two steps, a job the reaper put back, an API from
before this) is added again by the reaper's pass (``heal``), and the priority's own queue is
also looked at directly on every take.
"""

from __future__ import annotations

import re

from redis import Redis
from redis.client import Pipeline
from rq import Queue

from shared import keys

# An owner is an API key's id; anything else (a name with a separator) would make queue names
# ambiguous.
OWNER = re.compile(r"[0-9a-f]{16}")

# KEYS[1]: the rotation; ARGV[1]: a queue key. Added once, at the tail.
_REGISTER = """
if not redis.call('LPOS', KEYS[1], ARGV[1]) then redis.call('RPUSH', KEYS[1], ARGV[1]) end
return 0
"""


def queue_name(priority_queue: str, owner: str) -> str:
    """The rq queue of ``owner``'s jobs in the queue ``priority_queue`` ('' owner: that queue)."""
    if not owner:
        return priority_queue
    if not OWNER.fullmatch(owner):
        raise ValueError(f"an owner is an API key id (16 hex digits); got {owner[:32]!r}")
    return f"{priority_queue}.{owner}"


def priority_queue_of(name: str) -> str:
    """The priority queue that the queue ``name`` (a key's, or its own) belongs to."""
    base, _, owner = name.rpartition(".")
    return base if base and OWNER.fullmatch(owner) else name


def owner_queues(connection: Redis, priority_queue: str) -> list[str]:
    """The names of every key's queue of ``priority_queue`` that rq knows of (its ``rq:queues``
    set, which rq adds a queue to on its first job), sorted."""
    prefix, pattern = Queue.redis_queue_namespace_prefix, re.compile(re.escape(priority_queue) + r"\." + OWNER.pattern)
    names = (member.decode()[len(prefix):] for member in connection.smembers(Queue.redis_queues_keys))
    return sorted(name for name in names if pattern.fullmatch(name))


def register(connection: Redis | Pipeline, queue: Queue) -> None:
    """Put ``queue`` in its priority's rotation, if not there (``connection``: or a pipeline)."""
    connection.eval(_REGISTER, 1, keys.rotation_key(priority_queue_of(queue.name)), queue.key)


def heal(connection: Redis, priority_queue: str) -> list[str]:
    """Register every queue of ``priority_queue`` (its own and the keys') that has jobs but is
    not in the rotation; returns their names."""
    rotation = keys.rotation_key(priority_queue)
    present = {member.decode() for member in connection.lrange(rotation, 0, -1)}
    healed = []
    for name in [priority_queue, *owner_queues(connection, priority_queue)]:
        queue = Queue(name, connection=connection)
        if queue.key not in present and connection.llen(queue.key):
            register(connection, queue)
            healed.append(name)
    return healed
