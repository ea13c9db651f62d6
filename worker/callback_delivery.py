"""Delivering completion callbacks (the contract is ``shared.callbacks``), beside the OCR.

Every worker runs a ``Deliverer`` thread with its own Redis connection: a receiver that is slow
or dead costs that thread its timeout, never a batch. Each pass claims the watched jobs whose
look is due (one Lua call that also pushes their next look past the claim, so a deliverer that
dies mid-try leaves the job to the next one: at least once), then for each: a job not yet ended
is looked at again later (1 s, 2 s, ... at most 10 min apart; whatever ends a job makes it due
at once, so these looks only catch an end whose signal an outage lost); an ended one is POSTed.
A failed try (no answer within ``OCR_CALLBACK_TIMEOUT_S``, a status other than 2xx, a redirect,
an address that is not allowed) is tried again after 2, 4, 8, ... s (at most
``OCR_CALLBACK_BACKOFF_MAX_S``); after ``OCR_CALLBACK_ATTEMPTS`` tries it becomes a dead letter.
A collection's end (``shared.collection_views.delivery``) is watched and delivered the same way.

Each try resolves the host and checks every address (``shared.callbacks.public_address``), then
connects to the checked address itself (the TLS name still the host's), so a name that resolves
to an internal address, now or by rebinding, reaches nothing.
"""

from __future__ import annotations

import logging
import socket
import threading
import time
from urllib.parse import urlsplit

import urllib3
from redis import Redis
from rq.job import Job
from rq.serializers import JSONSerializer

from shared import callbacks, collection_views, job_collections, keys, redis_connection
from shared.jobs import TERMINAL
from shared.settings import Settings
from worker.outage import UNREACHABLE, Outage

logger = logging.getLogger(__name__)
CLAIM_S = 60
MAX_LOOK_GAP_S = 600  # a safety net: a batch's end makes its jobs due at once (due_now)
ANSWER_BYTES = 64 * 1024
GONE_AFTER_S = 60  # a watched job with no rq job this long after its submission: none will come

# KEYS[1]: the due set; ARGV: now, claim seconds, how many. The due ids, their next look pushed on.
_CLAIM = """
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, tonumber(ARGV[3]))
for _, id in ipairs(due) do redis.call('ZADD', KEYS[1], tonumber(ARGV[1]) + tonumber(ARGV[2]), id) end
return due
"""


class DeliveryError(Exception):
    """One try failed; the message says why (it goes into the dead letter)."""


class Deliverer(threading.Thread):
    """Background thread of a worker: delivers the callbacks of jobs that ended."""

    def __init__(self, settings: Settings, clock=time.time, batch: int = 16, outage: Outage | None = None) -> None:
        super().__init__(name="batchocr-callbacks", daemon=True)
        self.settings = settings
        self.outage = outage or Outage("callbacks")  # the worker's: an outage is logged once, not per try
        self.clock = clock
        self.batch = batch
        self.connection: Redis = redis_connection.connect(settings, socket_connect_timeout=2, socket_timeout=5)
        self._claim = self.connection.register_script(_CLAIM)
        self._stopping = threading.Event()

    def run(self) -> None:
        while not self._stopping.is_set():
            began = self.outage.clock()
            try:
                busy = self.step()
            except UNREACHABLE as exc:  # nothing is lost, the due set keeps it all
                self.outage.wait(self.connection, exc, stop=self._stopping.is_set, began=began)
                busy = 0
            except Exception as exc:
                logger.warning("callbacks: %s: %s", type(exc).__name__, exc)
                busy = 0
            self._stopping.wait(0 if busy else 0.5)

    def stop(self) -> None:
        self._stopping.set()

    def step(self) -> int:
        """One pass over the due jobs; returns how many it claimed."""
        due = [raw.decode() for raw in self._claim(keys=[keys.CALLBACKS_DUE], args=[self.clock(), CLAIM_S, self.batch])]
        for job_id in due:
            try:
                self._handle(job_id)
            except UNREACHABLE:
                raise
            except Exception as exc:  # one job's fault: the others' callbacks go on; its own is due again later
                logger.warning("callbacks: job %s: %s: %s", job_id, type(exc).__name__, exc)
        return len(due)

    def _handle(self, job_id: str) -> None:
        watch = {k.decode(): v.decode() for k, v in self.connection.hgetall(keys.callback_key(job_id)).items()}
        if not watch:
            self.connection.zrem(keys.CALLBACKS_DUE, job_id)
            return
        if job_id.startswith(job_collections.WATCH_PREFIX):
            self._handle_collection(job_id, watch)
            return
        job = Job.fetch_many([job_id], connection=self.connection, serializer=JSONSerializer)[0]
        status = job.get_status(refresh=False) if job is not None else None
        status_name = status.value if status is not None else ""
        if status_name not in TERMINAL:
            if job is None and self.clock() - float(watch.get("since", 0)) > GONE_AFTER_S:
                logger.warning("callback of job %s dropped: the job is gone", job_id, extra={"job_id": job_id})
                self._forget(job_id)
                return
            looks = int(watch.get("looks", 0)) + 1
            self.connection.hset(keys.callback_key(job_id), "looks", looks)
            self.connection.zadd(keys.CALLBACKS_DUE, {job_id: self.clock() + min(2 ** looks / 2, MAX_LOOK_GAP_S)})
            return
        error = job.meta.get("error") if status_name == "failed" else None
        self._try(job_id, watch, callbacks.delivery_id(job_id, status_name), callbacks.body(job_id, status_name, error))

    def _handle_collection(self, watched_id: str, watch: dict[str, str]) -> None:
        """A collection's end (``shared.collection_views.delivery``); one open again is forgotten:
        its next end watches it anew."""
        delivery = collection_views.delivery(self.connection, watched_id)
        if delivery is None:
            self._forget(watched_id)
            return
        self._try(watched_id, watch, *delivery)

    def _try(self, job_id: str, watch: dict[str, str], delivery_id: str, body: bytes) -> None:
        attempt = int(watch.get("tries", 0)) + 1
        try:
            post(self.settings, watch["url"], body, {
                "Content-Type": "application/json",
                "X-BatchOCR-Delivery": delivery_id,
                "X-BatchOCR-Attempt": str(attempt),
                "X-BatchOCR-Signature": callbacks.sign(callbacks.key_secret(self.settings, watch["owner"]), body,
                                                       int(self.clock())),
            })
        except DeliveryError as exc:
            self._failed(job_id, watch, delivery_id, attempt, str(exc))
            return
        self._forget(job_id)
        logger.info("callback of job %s delivered (try %d)", job_id, attempt, extra={"job_id": job_id})

    def _failed(self, job_id: str, watch: dict[str, str], delivery_id: str, attempt: int, reason: str) -> None:
        host = urlsplit(watch["url"]).hostname  # never the whole URL: its query may carry a token
        if attempt >= self.settings.callback_attempts:
            callbacks.dead_letter(self.connection, watch["owner"], {
                "delivery_id": delivery_id, "job_id": job_id, "status": delivery_id.split(".")[1],
                "url": watch["url"], "attempts": attempt, "last_error": reason, "failed_at": self.clock()})
            self._forget(job_id)
            logger.warning("callback of job %s to %s failed %d times, kept as a dead letter: %s", job_id, host,
                           attempt, reason, extra={"job_id": job_id})
            return
        delay = min(2.0 ** attempt, self.settings.callback_backoff_max_s)
        self.connection.hset(keys.callback_key(job_id), "tries", attempt)
        self.connection.zadd(keys.CALLBACKS_DUE, {job_id: self.clock() + delay})
        logger.info("callback of job %s to %s failed (try %d, again in %.0f s): %s", job_id, host, attempt, delay,
                    reason, extra={"job_id": job_id})

    def _forget(self, job_id: str) -> None:
        with self.connection.pipeline() as pipe:
            pipe.delete(keys.callback_key(job_id))
            pipe.zrem(keys.CALLBACKS_DUE, job_id)
            pipe.execute()


def post(settings: Settings, url: str, body: bytes, headers: dict[str, str]) -> None:
    """One POST to a checked address of ``url``'s host; DeliveryError unless answered 2xx."""
    parts = urlsplit(url)
    host, port = parts.hostname or "", parts.port or (443 if parts.scheme == "https" else 80)
    address = _checked_address(settings, host, port)
    timeout = urllib3.Timeout(connect=settings.callback_timeout_s, read=settings.callback_timeout_s)
    if parts.scheme == "https":
        pool = urllib3.HTTPSConnectionPool(address, port, timeout=timeout, retries=False, cert_reqs="CERT_REQUIRED",
                                           server_hostname=host, assert_hostname=host)
    else:
        pool = urllib3.HTTPConnectionPool(address, port, timeout=timeout, retries=False)
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    headers = headers | {"Host": parts.netloc.rsplit("@", 1)[-1], "User-Agent": "batchocr-callbacks"}
    try:
        with pool:
            answer = pool.urlopen("POST", target, body=body, headers=headers, redirect=False,
                                  preload_content=False, assert_same_host=False)
            answer.read(ANSWER_BYTES)
            answer.release_conn()
    except (urllib3.exceptions.HTTPError, OSError) as exc:
        raise DeliveryError(f"no answer: {type(exc).__name__}") from None
    if not 200 <= answer.status < 300:
        moved = " (redirects are not followed)" if 300 <= answer.status < 400 else ""
        raise DeliveryError(f"answered {answer.status}{moved}")


def _checked_address(settings: Settings, host: str, port: int) -> str:
    """An address of ``host`` to connect to: every address it resolves to must be public,
    unless the host is in ``OCR_CALLBACK_HOSTS``."""
    try:
        found = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except OSError as exc:
        raise DeliveryError(f"{host} does not resolve: {exc.strerror or exc}") from None
    except UnicodeError:  # a name the API took before it checked names (idna: a label over 63 characters)
        raise DeliveryError(f"{host!r} is not a valid host name") from None
    addresses = [info[4][0] for info in found]
    if not callbacks.is_allowed(settings, host, port) and not all(map(callbacks.public_address, addresses)):
        raise DeliveryError(f"{host} resolves to a loopback, private or link-local address; not allowed")
    return addresses[0]
