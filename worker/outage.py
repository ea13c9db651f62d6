"""Waiting out a Redis outage: capped exponential backoff with jitter, logged once when it
starts and once when it ends.

A worker meets Redis in every phase of its loop (registering, the blocking dequeue, gathering a
batch, marking jobs started, recording outcomes, renewing leases). An outage is none of its jobs'
fault: whichever phase meets it waits here until Redis answers again, then carries on. One
``Outage`` per process is shared by the main loop and the guardian thread, so an outage is
reported once however many places notice it.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable

import redis
from redis import Redis
from rq.exceptions import DequeueTimeout
from rq.worker import SimpleWorker, WorkerStatus

from shared import keys

logger = logging.getLogger(__name__)

COMMAND_WAKE_S = 1.0  # how often the idle command channel thread wakes: the bound on a worker's shutdown wait
# What an unreachable, restarting or stalled Redis raises (a busy loading server included), and
# a full one (maxmemory under noeviction refuses writes): waited out alike, never blamed on a job.
UNREACHABLE = (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError,
               redis.exceptions.BusyLoadingError, redis.exceptions.OutOfMemoryError)


class Backoff:
    """Delays of ``base * 2**n`` seconds capped at ``cap``, each drawn from its upper half
    ("equal jitter"), so workers cut off together do not come back in lockstep."""

    def __init__(self, base: float = 0.5, cap: float = 10.0, rng: random.Random | None = None) -> None:
        self.base, self.cap = base, cap
        self.rng = rng or random.Random()
        self.attempt = 0

    def next(self) -> float:
        ceiling = min(self.cap, self.base * 2 ** self.attempt)
        self.attempt += 1
        return ceiling / 2 + self.rng.uniform(0, ceiling / 2)

    def reset(self) -> None:
        self.attempt = 0


class Outage:
    """This process's view of whether Redis is reachable.

    ``failed`` marks the start of an outage (logged the first time), ``ended`` its end (logged
    once, with its length); ``wait`` blocks until Redis answers PING, sleeping with backoff.
    Thread-safe: the worker loop and the guardian report into the same object. A call that
    began before the last outage ended and fails after it (one stalled until its socket timeout)
    belongs to that outage: given ``began`` (``clock()`` when the call began), it starts none.
    ``wait`` without ``began`` (the call's start is unknown: rq's own loop, its command channel)
    reports a start only once a PING fails too.
    """

    def __init__(self, what: str, *, backoff: Backoff | None = None,
                 sleep: Callable[[float], None] = time.sleep,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.what = what
        self.backoff = backoff or Backoff()
        self.sleep = sleep
        self.clock = clock
        self.since: float | None = None
        self.ended_at = float("-inf")
        self.count = 0  # outages so far (each start counted once)
        self.full = False  # the outage is a full Redis: only a write it takes ends it
        self._lock = threading.Lock()

    @property
    def down(self) -> bool:
        return self.since is not None

    def failed(self, exc: BaseException, began: float | None = None) -> None:
        with self._lock:
            if self.since is not None or began is not None and began < self.ended_at:
                return
            self.since = self.clock()
            self.count += 1
            self.full = isinstance(exc, redis.exceptions.OutOfMemoryError)
        state = "full (it refuses writes)" if self.full else "unreachable"
        logger.warning("%s: Redis is %s (%s: %s); retrying with backoff until it is back",
                       self.what, state, type(exc).__name__, exc)

    def ended(self, *, wrote: bool = True) -> None:
        """The outage is over: Redis answered. ``wrote=False``: it answered a read or a PING,
        which does not end a full Redis (a PING answers; writes are still refused)."""
        with self._lock:
            if self.since is None or self.full and not wrote:
                return
            self.ended_at = self.clock()
            lasted, self.since, self.full = self.ended_at - self.since, None, False
            self.backoff.reset()
        logger.warning("%s: Redis is reachable again after %.1f s", self.what, lasted)

    def wait(self, connection: Redis, exc: BaseException, stop: Callable[[], bool] = lambda: False,
             began: float | None = None) -> bool:
        """Block until ``connection`` answers PING, or takes a write if Redis is full (True), or
        ``stop()`` becomes true (False);
        ``exc`` is what the call that ``began`` then met (None: a start not known, so the
        outage is reported once a PING fails)."""
        if began is not None:
            self.failed(exc, began)
        while not stop():
            self.sleep(self.backoff.next())
            wrote = self.full or isinstance(exc, redis.exceptions.OutOfMemoryError)  # a full Redis answers PING
            try:
                if wrote:
                    connection.set(keys.WRITE_PROBE, b"1", ex=5)
                else:
                    connection.ping()
            except UNREACHABLE as again:
                self.failed(again)
                continue
            self.ended(wrote=wrote)
            if not self.down:  # else another thread found Redis full meanwhile: a write must tell
                return True
        return False

    def retry(self, connection: Redis, step: Callable[[], object], stop: Callable[[], bool] = lambda: False):
        """Run ``step`` until it completes without meeting an outage; it must be safe to repeat.
        Raises the last outage error if ``stop()`` becomes true first."""
        while True:
            began = self.clock()
            try:
                return step()
            except UNREACHABLE as exc:
                if not self.wait(connection, exc, stop, began):
                    raise

    def quietly(self, step: Callable[[], object]) -> None:
        """Run ``step``, whose failure in an outage is harmless (what it does lapses or is done
        again later): an outage is reported, not raised."""
        began = self.clock()
        try:
            step()
        except UNREACHABLE as exc:
            self.failed(exc, began)


class OutageTolerantWorker(SimpleWorker):
    """rq's ``SimpleWorker`` that waits out an outage where it meets one instead of logging
    every attempt (rq's dequeue loop and command channel) or ending its loop (a heartbeat)."""

    def __init__(self, queues, *, outage: Outage | None = None, **kwargs) -> None:
        super().__init__(queues, **kwargs)
        self.outage = outage or Outage(f"worker {self.name}")
        self._unsubscribing = False

    def dequeue_job_and_maintain_ttl(self, timeout: int | None, max_idle_time: int | None = None):
        """rq's blocking dequeue, with a Redis outage waited out here (backoff with jitter, logged
        once) where rq would log every attempt. ``max_idle_time`` is not supported."""
        while True:
            began = self.outage.clock()
            try:
                self.set_state(WorkerStatus.IDLE)
                self.heartbeat()
                if self.should_run_maintenance_tasks:
                    self.run_maintenance_tasks()
                result = self.dequeue(timeout)
                if result is not None:
                    result[0].redis_server_version = self.get_redis_server_version()
                return result
            except DequeueTimeout:
                continue
            except UNREACHABLE as exc:
                if not self.outage.wait(self.connection, exc, stop=lambda: self._stop_requested, began=began):
                    return None

    def dequeue(self, timeout: float | None):
        """The next (job, queue), or None (``timeout`` as rq's). Subclasses take jobs their way
        (``BatchWorker``: ``worker.dequeue``); rq's own multi-queue pop would hold them in memory only."""
        raise NotImplementedError

    def heartbeat(self, timeout: int | None = None, pipeline=None) -> None:
        """rq's heartbeat; one missed while Redis is unreachable is harmless (its TTL is minutes)."""
        if pipeline is not None:
            return super().heartbeat(timeout, pipeline)
        self._quietly(lambda: super(OutageTolerantWorker, self).heartbeat(timeout))

    def check_for_suspension(self, burst: bool) -> None:
        """rq's check at the top of its loop, which would end the loop in an outage."""
        self.outage.retry(self.connection, lambda: super(OutageTolerantWorker, self).check_for_suspension(burst),
                          stop=lambda: self._stop_requested)

    def run_maintenance_tasks(self) -> None:
        """rq's registry cleaning: skipped in an outage (it runs again within minutes)."""
        self._quietly(super().run_maintenance_tasks)

    def _pubsub_exception_handler(self, exc: Exception, pubsub, pubsub_thread) -> None:
        """rq's command channel thread: an outage is waited out (its read may have been waiting
        since before the last outage ended, so a PING decides whether this is a new one); an
        error from its socket being closed under it while rq stops the thread is not raised."""
        if isinstance(exc, UNREACHABLE):
            if not self.outage.wait(self.connection, exc, stop=lambda: self._unsubscribing):
                time.sleep(self.outage.backoff.cap)  # until rq stops the thread: no spinning meanwhile
        elif not self._unsubscribing:
            raise exc

    def subscribe(self) -> None:
        """rq's command channel (shutdown, stop-job), with its thread's idle wait cut from rq's
        60 s to ``COMMAND_WAKE_S``: redis-py 8.2's ``PubSubWorkerThread.stop`` joins the thread,
        and a thread that has already read the unsubscribe reply sleeps out that whole wait, so
        a worker's shutdown (burst end, SIGTERM) could hang for up to a minute."""
        self._unsubscribing = False
        self.pubsub = self.connection.pubsub()
        self.pubsub.subscribe(**{self.pubsub_channel_name: self.handle_payload})
        self.pubsub_thread = self.pubsub.run_in_thread(sleep_time=COMMAND_WAKE_S, daemon=True,
                                                       exception_handler=self._pubsub_exception_handler)

    def unsubscribe(self) -> None:
        """rq stops the command channel thread here; errors from its closing socket are expected
        from now until the next ``subscribe``. In an outage no UNSUBSCRIBE is sent (closing the
        connection ends the subscription) and the thread, a daemon, is waited for at most
        ``COMMAND_WAKE_S`` (its PING may be stuck in a black hole)."""
        self._unsubscribing = True
        if not self.outage.down:
            super().unsubscribe()
        elif self.pubsub_thread:
            self.pubsub_thread.stop(timeout=COMMAND_WAKE_S)
            self.pubsub.close()

    def teardown(self) -> None:
        """rq's teardown (deregistering, then the command channel). A worker that stops during
        an outage does not wait for Redis to deregister (a black hole would hold it until the
        socket timeout, ~7 minutes, per attempt): its registration lapses with its TTL."""
        if self.outage.down:
            logger.warning("%s: stopping while Redis is unreachable; its registration lapses on its own", self.name)
            self.unsubscribe()
            return
        super().teardown()

    def _quietly(self, step) -> None:
        """A step whose failure in an outage is harmless (state, heartbeat, cleanup)."""
        self.outage.quietly(step)

