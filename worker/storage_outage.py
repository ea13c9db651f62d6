"""Waiting out an S3 outage: a job whose image or result S3 cannot take right now is not failed.

botocore already retries each call a few times (``shared.s3.ObjectStore``); what still fails
with ``StorageUnavailableError`` (S3 unreachable, timing out, answering 5xx or throttling) is an
outage, none of the job's fault. The worker then retries the same step (read the input again,
write the result already computed again: both idempotent) with capped exponential backoff, and
meanwhile keeps the batch's jobs its own (``keep``: their leases and rq's started-registry
entries), so no reaper and no rq cleanup takes them while it waits. It stops waiting when the
worker is asked to stop; the caller then hands the job back to the queue, unfailed.

A refusal (bad credentials, no such bucket, access denied) is not waited out: it fails the
job as ``storage`` with the reason, and ``retry_failed`` runs it again once S3 is fixed.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import TypeVar

from shared.errors import StorageUnavailableError
from worker.outage import Backoff

logger = logging.getLogger(__name__)

T = TypeVar("T")
STILL_DOWN_LOG_S = 300.0  # how often a long outage is logged again, so it stays visible


class StorageOutage:
    """This worker's view of S3: ``call`` runs a step, waiting out an outage it meets.

    Logged once when an outage starts, every ``STILL_DOWN_LOG_S`` while it lasts, and once when
    it ends. Used by the worker's main thread only.
    """

    def __init__(self, what: str, *, backoff: Backoff | None = None,
                 sleep: Callable[[float], None] = time.sleep,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.what = what
        self.backoff = backoff or Backoff(base=1.0, cap=30.0)
        self.sleep = sleep
        self.clock = clock
        self.since: float | None = None
        self.count = 0  # outages so far
        self._logged_at = 0.0

    def call(self, step: Callable[[], T], *, keep: Callable[[float], None], stop: Callable[[], bool]) -> T:
        """``step()``'s value, once S3 takes it. ``keep(seconds)`` is called after each wait
        with its length (to extend what the worker holds); raises the last
        StorageUnavailableError if ``stop()`` becomes true first."""
        while True:
            try:
                value = step()
            except StorageUnavailableError as exc:
                self._failed(exc)
                if stop():
                    raise
                waited = self._pause(self.backoff.next(), stop)
                keep(waited)
                continue
            self._ended()
            return value

    def _pause(self, seconds: float, stop: Callable[[], bool]) -> float:
        """Sleep ``seconds`` in short slices, ending early on ``stop()``; returns the time slept."""
        began = self.clock()
        end = began + seconds
        while not stop() and (left := end - self.clock()) > 0.001:
            self.sleep(min(left, 0.5))
        return self.clock() - began

    def _failed(self, exc: StorageUnavailableError) -> None:
        now = self.clock()
        if self.since is None:
            self.since, self._logged_at = now, now
            self.count += 1
            logger.warning("%s: %s; waiting with backoff until S3 is back (no job is failed for it)",
                           self.what, exc.message)
        elif now - self._logged_at >= STILL_DOWN_LOG_S:
            self._logged_at = now
            logger.warning("%s: S3 still unavailable after %.0f s (%s)", self.what, now - self.since, exc.message)

    def _ended(self) -> None:
        if self.since is None:
            return
        lasted, self.since = self.clock() - self.since, None
        self.backoff.reset()
        logger.warning("%s: S3 answers again after %.1f s", self.what, lasted)
