"""How the producer reaches the queue: over HTTP to the API (default) or straight to Redis.

HTTP is the default because the API is the one gate every job passes (validation, limits and,
later, API keys) and a producer then needs no Redis credentials or network path to Redis.
``--redis`` is for operators inside the deployment: it skips the HTTP hop and base64.
Both speak the same job contract (``shared.jobs``), with the producer's deterministic job ids.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any, Protocol, TypeVar

import redis

from producer.pages import Page
from shared import collection_views, job_collections, job_views, jobs, redis_connection
from shared.client import ApiClient, ApiError
from shared.errors import BatchOcrError, EvictingRedisError, JobNotFoundError, QueueFullError
from shared.payload import JobOptions
from shared.s3 import ObjectStore
from shared.settings import Settings

logger = logging.getLogger(__name__)
T = TypeVar("T")
QUEUE_FULL_MAX_WAIT_S = 60.0

MISSING = {"status": "missing"}


class PageRejected(BatchOcrError):
    """The queue refused this page for a reason of its own (bad image, too large, ...)."""


class Transport(Protocol):
    def submit(self, page: Page, options: dict[str, str], job_id: str, retry_failed: bool) -> bool:
        """Enqueue the page's job unless it exists; True if a new job was enqueued."""

    def view(self, job_id: str) -> dict[str, Any]:
        """The job's public view (status, result, error), or ``MISSING`` if it is gone."""

    def open_collection(self, collection_id: str, name: str, options: dict[str, str]) -> dict[str, Any]:
        """Create the run's collection, or find it (a re-run); every later job joins it."""


def with_backoff(action: Callable[[], T], what: str, attempts: int = 8) -> T:
    """Run ``action``, retrying transient failures (no answer, 5xx, 429, Redis down) with
    exponential backoff: 0.5 s doubling to 16 s, about a minute in all. A full queue (429
    ``queue_full``) is back-pressure, not a failure: waited out for as long as it lasts, each
    wait the Retry-After the queue gave (at most a minute)."""
    delay, failures = 0.5, 0
    while True:
        try:
            return action()
        except (QueueFullError, ApiError, redis.exceptions.ConnectionError, redis.exceptions.TimeoutError) as exc:
            if _queue_full(exc):
                wait = min(max(float(getattr(exc, "retry_after", 0)), 1.0), QUEUE_FULL_MAX_WAIT_S)
                logger.info("%s: the queue is full; waiting %.0f s as it asks", what, wait)
                time.sleep(wait)
                continue
            failures += 1
            if (isinstance(exc, ApiError) and not exc.retryable) or failures >= attempts:
                raise
            logger.warning("%s failed (%s); retrying in %.1f s", what, exc, delay)
            time.sleep(delay)
            delay = min(delay * 2, 16.0)


def _queue_full(exc: BaseException) -> bool:
    return isinstance(exc, QueueFullError) or (isinstance(exc, ApiError) and exc.status == 429
                                               and exc.kind == "queue_full")


class HttpTransport:
    def __init__(self, base_url: str, api_key: str | None = None) -> None:
        self.client = ApiClient(base_url, api_key=api_key)
        self.collection = ""

    def open_collection(self, collection_id: str, name: str, options: dict[str, str]) -> dict[str, Any]:
        view = with_backoff(lambda: self.client.create_collection(collection_id, name=name, options=options),
                            f"opening collection {collection_id}")
        self.collection = collection_id
        return view

    def submit(self, page: Page, options: dict[str, str], job_id: str, retry_failed: bool) -> bool:
        def post() -> dict[str, Any]:
            return self.client.submit(page.data, image_uri=str(page.uri) if page.uri else None,
                                      job_id=job_id, retry_failed=retry_failed or None, collection=self.collection,
                                      **options)
        try:
            return bool(with_backoff(post, f"submitting job {job_id}")["created"])
        except ApiError as exc:
            if exc.retryable:
                raise
            raise PageRejected(exc.message) from None

    def view(self, job_id: str) -> dict[str, Any]:
        try:
            return with_backoff(lambda: self.client.get(job_id), f"reading job {job_id}")
        except ApiError as exc:
            if exc.status == 404:
                return MISSING
            raise


class RedisTransport:
    def __init__(self, settings: Settings, objects: ObjectStore) -> None:
        self.settings = settings
        self.objects = objects
        self.connection = redis_connection.connect(settings, socket_connect_timeout=5, socket_timeout=30)
        self.collection = ""

    def open_collection(self, collection_id: str, name: str, options: dict[str, str]) -> dict[str, Any]:
        JobOptions.parse(options, self.settings)
        found, _ = with_backoff(lambda: job_collections.create(
            self.connection, self.settings, owner="", name=name, options=options, collection_id=collection_id),
            f"opening collection {collection_id}")
        self.collection = collection_id
        return collection_views.describe(found)

    def submit(self, page: Page, options: dict[str, str], job_id: str, retry_failed: bool) -> bool:
        try:
            parsed = JobOptions.parse(options, self.settings)
            image = page.uri if page.uri is not None else page.data
            submission = with_backoff(
                lambda: jobs.submit(self.connection, self.settings, image, parsed,  # type: ignore[arg-type]
                                    job_id=job_id, retry_failed=retry_failed, objects=self.objects,
                                    collection=self.collection),
                f"submitting job {job_id}")
        except EvictingRedisError:  # the deployment's fault, not the page's: the run stops
            raise
        except BatchOcrError as exc:
            raise PageRejected(exc.message) from None
        return submission.created

    def view(self, job_id: str) -> dict[str, Any]:
        def read() -> dict[str, Any]:
            try:
                return job_views.describe(jobs.fetch(self.connection, job_id), self.objects)
            except JobNotFoundError:
                return MISSING
        return with_backoff(read, f"reading job {job_id}")
