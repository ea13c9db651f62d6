"""Waiting out an S3 outage: a job whose image or result S3 cannot take right now is not failed.

botocore already retries each call a few times (``shared.s3.ObjectStore``); what still fails
with ``StorageUnavailableError`` (S3 unreachable, timing out, answering 5xx or throttling) is an
outage, none of the job's fault. The worker then retries the same step (read the input again,
write the result already computed again: both idempotent) with capped exponential backoff.

A stalled S3 (connections open, nothing flowing) holds one call for minutes (botocore's
attempts × read timeout), so each step runs in a thread of its own while the worker's thread
watches it: it keeps the batch's jobs its own meanwhile (``keep``: their leases and rq's
started-registry entries, so no reaper and no rq cleanup takes them), reports a step silent for
``STALL_LOG_S`` as an outage, and, once the worker is asked to stop, gives a step in flight
``STOP_GRACE_S`` and then leaves it, so the caller can hand the job back to the queue, unfailed.

A refusal (bad credentials, no such bucket, access denied) is not waited out: it fails the
job as ``storage`` with the reason, and ``retry_failed`` runs it again once S3 is fixed.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any, TypeVar

from shared.errors import StorageUnavailableError
from worker.outage import Backoff

logger = logging.getLogger(__name__)

T = TypeVar("T")
KEEP_EVERY_S = 5.0  # how often the jobs are kept while a step is in flight or the worker waits
KEEP_HORIZON_S = 60.0  # each keep holds the jobs at least this long from now
STALL_LOG_S = 30.0  # a step silent this long is an outage (a stalled S3), logged as such
STOP_GRACE_S = 5.0  # once asked to stop, how long a step in flight may still finish
STILL_DOWN_LOG_S = 300.0  # how often a long outage is logged again, so it stays visible


class StorageOutage:
    """This worker's view of S3: ``call`` runs a step, waiting out an outage it meets.

    Logged once when an outage starts, every ``STILL_DOWN_LOG_S`` while it lasts, and once when
    it ends (its length counted from the start of the step that met it). Used by one thread.
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
        """``step()``'s value, once S3 takes it. ``keep(seconds)`` must hold the jobs at least
        ``seconds`` from now; raises StorageUnavailableError if ``stop()`` becomes true first."""
        while True:
            began = self.clock()
            if self.since is not None and stop():  # stopping in a known outage: no step is tried
                raise StorageUnavailableError("S3 was unavailable when the worker was stopped")
            try:
                value = self._watch(step, keep, stop, began)
            except StorageUnavailableError as exc:
                self._failed(exc.message, began, leaving=stop())
                if stop():
                    raise
                self._pause(self.backoff.next(), keep, stop)
                continue
            self._ended()
            return value

    def _watch(self, step: Callable[[], T], keep: Callable[[float], None], stop: Callable[[], bool],
               began: float) -> T:
        """Run ``step`` in a thread; keep the jobs and watch for a stall or a stop meanwhile."""
        outcome: dict[str, Any] = {}
        thread = threading.Thread(target=_capture, args=(step, outcome), name="batchocr-s3", daemon=True)
        thread.start()
        kept_at, stopped_at = began, None
        while True:
            thread.join(0.5)
            if not thread.is_alive():
                break
            now = self.clock()
            if now - kept_at >= KEEP_EVERY_S:
                keep(KEEP_HORIZON_S)
                kept_at = now
            if now - began >= STALL_LOG_S:
                self._failed(f"S3 has not answered for {now - began:.0f} s", began)
            if stop():
                stopped_at = now if stopped_at is None else stopped_at
                if now - stopped_at >= STOP_GRACE_S:  # the thread is left to end on its own
                    raise StorageUnavailableError(f"S3 had not answered for {now - began:.0f} s when the worker "
                                                  "was stopped")
        if "error" in outcome:
            raise outcome["error"]
        return outcome["value"]

    def _pause(self, seconds: float, keep: Callable[[float], None], stop: Callable[[], bool]) -> None:
        """Sleep ``seconds`` in short slices, the jobs kept throughout, ending early on ``stop()``."""
        keep(seconds + KEEP_HORIZON_S)
        end = self.clock() + seconds
        while not stop() and (left := end - self.clock()) > 0.001:
            self.sleep(min(left, 0.5))

    def _failed(self, reason: str, began: float, leaving: bool = False) -> None:
        now = self.clock()
        if self.since is None:
            self.since, self._logged_at = began, now
            self.count += 1
            then = "the worker is stopping: its jobs go back to the queue" if leaving else \
                "waiting with backoff until S3 is back"
            logger.warning("%s: %s; %s (no job is failed for it)", self.what, reason, then)
        elif now - self._logged_at >= STILL_DOWN_LOG_S:
            self._logged_at = now
            logger.warning("%s: S3 still unavailable after %.0f s (%s)", self.what, now - self.since, reason)

    def _ended(self) -> None:
        if self.since is None:
            return
        lasted, self.since = self.clock() - self.since, None
        self.backoff.reset()
        logger.warning("%s: S3 answers again after %.1f s", self.what, lasted)


def _capture(step: Callable[[], Any], outcome: dict[str, Any]) -> None:
    try:
        outcome["value"] = step()
    except BaseException as exc:  # handed to the watching thread, which raises it there
        outcome["error"] = exc
