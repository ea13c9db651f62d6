"""``batchocr-worker``: run one batching OCR worker process."""

from __future__ import annotations

import argparse
import contextlib
import logging
import time

import redis
from redis import Redis
from rq.serializers import JSONSerializer

from shared import logs
from shared.jobs import get_queue
from shared.settings import Settings
from worker.batching import BatchWorker
from worker.lexicon import english
from worker.metrics import WorkerMetrics
from worker.pipeline import OcrPipeline
from worker.registry import Pipelines

logger = logging.getLogger(__name__)


def load_pipelines(settings: Settings) -> dict[str, OcrPipeline]:
    """The default model, loaded at start so the first batch does not wait; other versions
    load on first use (``worker.registry.Pipelines``). The English word list too, unless jobs
    read everything as it is by default (``OCR_DEFAULT_LANG=all``)."""
    if settings.default_lang != "all":
        english()
    return {settings.default_model: OcrPipeline.load(settings.default_model, settings)}


def build_worker(
    settings: Settings,
    connection: Redis,
    name: str | None = None,
    pipelines: Pipelines | dict[str, OcrPipeline] | None = None,
    metrics: WorkerMetrics | None = None,
) -> BatchWorker:
    """A BatchWorker on the settings' queue (``pipelines``: loaded models to start with; by
    default the default model, loaded now)."""
    if not isinstance(pipelines, Pipelines):
        pipelines = Pipelines(settings, pipelines if pipelines is not None else load_pipelines(settings))
    return BatchWorker(
        [get_queue(connection, settings)],
        connection=connection,
        serializer=JSONSerializer,
        settings=settings,
        pipelines=pipelines,
        metrics=metrics,
        name=name,
    )


def run(settings: Settings, name: str | None, burst: bool, log_level: str) -> int:
    """Run a worker until it is asked to stop. rq's loop quits on most Redis errors (a restart,
    a failover): then wait with backoff, reconnect and go on with a fresh registration, keeping
    the loaded models. Jobs of a batch interrupted that way are recovered by their leases."""
    pipelines = Pipelines(settings, load_pipelines(settings))
    metrics = WorkerMetrics()
    if settings.metrics_port:
        metrics.serve(settings.metrics_port)
    delay, generation = 1.0, 0
    while True:
        connection = Redis.from_url(settings.redis_url, socket_connect_timeout=5, socket_keepalive=True)
        worker_name = name if generation == 0 or name is None else f"{name}.{generation}"
        worker = build_worker(settings, connection, worker_name, pipelines=pipelines, metrics=metrics)
        try:
            worker.work(burst=burst, logging_level=log_level)
        except redis.exceptions.RedisError as exc:
            logger.warning("worker %s: Redis error (%s)", worker_name, exc)
        if burst or worker.shutdown_requested:
            return 0
        generation += 1
        logger.warning("worker loop ended; reconnecting to Redis in %.0f s", delay)
        time.sleep(delay)
        delay = min(delay * 2, 30.0)
        with contextlib.suppress(redis.exceptions.RedisError):
            if connection.ping():
                delay = 1.0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="batchocr-worker", description=__doc__)
    parser.add_argument("--burst", action="store_true", help="exit when the queue is empty")
    parser.add_argument("--name", help="worker name (default: rq's random name)")
    parser.add_argument("--log-level", default="INFO")
    args = parser.parse_args(argv)
    settings = Settings.from_env()
    logs.configure(args.log_level, settings.log_format)
    return run(settings, args.name, args.burst, args.log_level)


if __name__ == "__main__":
    raise SystemExit(main())
