"""A worker's leases: which jobs it holds, until when, and their keys in Redis.

Each running job holds ``batchocr:lease:<id>`` = its worker's name, with a TTL of
``OCR_LEASE_S``. The worker's guardian thread renews them; a lease that is gone tells the reaper
(``worker.recovery``) that the job's worker died. Only the owner renews or releases a lease.
"""

from __future__ import annotations

import threading
import time

from redis import Redis
from rq.job import Job

from shared import keys

# Leases and the reaper's lock belong to whoever set them: renew or delete only your own. A
# lease that lapsed while Redis was unreachable is taken back only if rq still has the job as
# started by this worker (KEYS: lease and job hash of each job); returns 1 per job still ours.
RENEW = """
local ours = {}
for i = 1, #KEYS, 2 do
  local holder = redis.call('get', KEYS[i])
  if holder == ARGV[1] then
    redis.call('expire', KEYS[i], ARGV[2])
    ours[#ours + 1] = 1
  elseif not holder and redis.call('hget', KEYS[i + 1], 'status') == 'started'
      and redis.call('hget', KEYS[i + 1], 'worker_name') == ARGV[1] then
    redis.call('set', KEYS[i], ARGV[1], 'EX', ARGV[2])
    ours[#ours + 1] = 1
  else
    ours[#ours + 1] = 0
  end
end
return ours
"""
RELEASE = "for _, key in ipairs(KEYS) do if redis.call('get', key) == ARGV[1] then " \
           "redis.call('del', key) end end return 0"


def renew_leases(connection: Redis, job_ids: list[str], owner: str, seconds: int) -> list[str]:
    """Extend ``owner``'s leases (or take back one that lapsed during an outage, if rq still has
    the job as started by ``owner``); returns the ids that are still ``owner``'s."""
    if not job_ids:
        return []
    pairs = [key for i in job_ids for key in (keys.lease_key(i), Job.key_for(i))]
    ours = connection.eval(RENEW, len(pairs), *pairs, owner, seconds)
    return [job_id for job_id, mine in zip(job_ids, ours) if mine]


def release_leases(connection: Redis, job_ids: list[str], owner: str) -> None:
    if job_ids:
        connection.eval(RELEASE, len(job_ids), *[keys.lease_key(i) for i in job_ids], owner)



class Leases:
    """The jobs a worker holds and until when to renew them (a native call that never returns
    must not hold its jobs forever). Thread-safe: the main loop holds and releases, the
    guardian renews; each passes its own Redis connection."""

    def __init__(self, owner: str, lease_s: int) -> None:
        self.owner = owner
        self.lease_s = lease_s
        self._until: dict[str, float] = {}  # job id -> renew its lease until (monotonic)
        self._lock = threading.Lock()

    def held(self) -> list[str]:
        now = time.monotonic()
        with self._lock:
            return [job_id for job_id, until in self._until.items() if now < until]

    def hold(self, connection: Redis, job_id: str, until: float) -> None:
        """Take the job's lease; call it before rq marks the job started, so that the reaper
        never sees it started without a lease."""
        with self._lock:
            self._until[job_id] = until
        connection.set(keys.lease_key(job_id), self.owner, ex=self.lease_s)

    def hold_at_least(self, job_ids: list[str], until: float) -> None:
        """Renew these leases until ``until`` at least: the worker is waiting on something
        outside its jobs (an S3 outage), and their time to run must not run out meanwhile."""
        with self._lock:
            for job_id in job_ids:
                if job_id in self._until:
                    self._until[job_id] = max(self._until[job_id], until)

    def unhold(self, job_ids: list[str]) -> None:
        """Stop renewing: the leases lapse, and the reaper queues the jobs again if unfinished."""
        with self._lock:
            for job_id in job_ids:
                self._until.pop(job_id, None)

    def renew(self, connection: Redis, job_ids: list[str]) -> list[str]:
        """Renew (or take back, see ``renew_leases``); returns the ids still this worker's."""
        return renew_leases(connection, job_ids, self.owner, self.lease_s)

    def release(self, connection: Redis, job_ids: list[str]) -> None:
        """Drop the leases and crash counts of jobs whose outcome is recorded."""
        self.unhold(job_ids)
        if job_ids:
            release_leases(connection, job_ids, self.owner)
            connection.hdel(keys.CRASHES, *job_ids)
