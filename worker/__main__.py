"""``batchocr-worker``: run one batching OCR worker process."""

from __future__ import annotations

import argparse
import logging
import os
import time

from redis import Redis
from rq.serializers import JSONSerializer

from shared import logs, redis_connection
from shared.entry import console_script
from shared.errors import EvictingRedisError
from shared.jobs import get_queues
from shared.redis_memory import RedisMemory, check_no_eviction
from shared.settings import Settings
from worker.batching import BatchWorker
from worker.callback_delivery import Deliverer
from worker.lexicon import english
from worker.metrics import WorkerMetrics
from worker.outage import UNREACHABLE, Outage
from worker.pipeline import OcrPipeline
from worker.loaded_models import Pipelines
from worker.warm_up import warm_up

logger = logging.getLogger(__name__)


def load_pipelines(settings: Settings) -> dict[str, OcrPipeline]:
    """The default model, loaded at start so the first batch does not wait; other versions
    load on first use (``worker.loaded_models.Pipelines``). The English word list too, unless jobs
    read everything as it is by default (``OCR_DEFAULT_LANG=all``). Warmed up (``worker.warm_up``)."""
    if settings.default_lang != "all":
        english()
    pipeline = OcrPipeline.load(settings.default_model, settings)
    warm_up(pipeline, settings.warm_up_width)
    return {settings.default_model: pipeline}


def build_worker(
    settings: Settings,
    connection: Redis,
    name: str | None = None,
    pipelines: Pipelines | dict[str, OcrPipeline] | None = None,
    metrics: WorkerMetrics | None = None,
    outage: Outage | None = None,
) -> BatchWorker:
    """A BatchWorker on the settings' priority queues (``pipelines``: loaded models to start with; by
    default the default model, loaded now)."""
    if not isinstance(pipelines, Pipelines):
        pipelines = Pipelines(settings, pipelines if pipelines is not None else load_pipelines(settings))
    return BatchWorker(
        get_queues(connection, settings, served=True),
        connection=connection,
        serializer=JSONSerializer,
        settings=settings,
        pipelines=pipelines,
        metrics=metrics,
        outage=outage,
        name=name,
    )


def run(settings: Settings, name: str | None, burst: bool, log_level: str) -> int:
    """Run a worker until it is asked to stop. An outage in any phase is waited out where it is
    met (``worker.outage``); one that ends rq's loop anyway (registering, rq's own bookkeeping)
    is waited out here, and the worker starts again under a fresh registration, keeping the
    loaded models. Nothing here exits on a Redis error; a Redis that may evict keys is refused
    whenever a registration starts (EvictingRedisError: ``shared.redis_memory``)."""
    metrics = WorkerMetrics()
    pipelines = Pipelines(settings, load_pipelines(settings), on_load=metrics.loaded, on_unload=metrics.unloaded)
    if settings.metrics_port:
        metrics.serve(settings.metrics_port)
    outage = Outage(f"worker {name or os.getpid()}")
    deliverer = Deliverer(settings, outage=outage) if settings.callback_secret else None  # completion callbacks, beside the OCR
    if deliverer is not None:
        deliverer.start()
    try:
        return _work(settings, name, burst, log_level, pipelines, metrics, outage)
    finally:
        if deliverer is not None:
            deliverer.stop()


def _work(settings: Settings, name: str | None, burst: bool, log_level: str, pipelines: Pipelines,
          metrics: WorkerMetrics, outage: Outage) -> int:
    generation = 0
    while True:
        connection = redis_connection.connect(settings, socket_connect_timeout=5, socket_keepalive=True)
        worker_name = name if generation == 0 or name is None else f"{name}.{generation}"
        worker = None
        try:
            check_no_eviction(RedisMemory.read(connection), settings, "batchocr-worker")
            worker = build_worker(settings, connection, worker_name, pipelines=pipelines, metrics=metrics,
                                  outage=outage)
            worker.work(burst=burst, logging_level=log_level)
        except UNREACHABLE as exc:
            if worker is None or not (burst or worker.shutdown_requested):
                outage.wait(connection, exc, stop=lambda: worker is not None and worker.shutdown_requested)
        except ValueError as exc:  # rq: the name is still registered (its last teardown met an outage)
            if "active worker named" not in str(exc):
                raise
            generation += 1
            connection.close()
            continue
        if worker is not None and (burst or worker.shutdown_requested):
            return 0
        time.sleep(outage.backoff.next())  # rq's loop ended for a reason it logged: do not spin
        connection.close()


@console_script("batchocr-worker")
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="batchocr-worker", description=__doc__)
    parser.add_argument("--burst", action="store_true", help="exit when the queue is empty")
    parser.add_argument("--name", help="worker name (default: rq's random name)")
    parser.add_argument("--log-level", default="INFO")
    args = parser.parse_args(argv)
    settings = Settings.from_env()
    logs.configure(args.log_level, settings.log_format)
    try:
        return run(settings, args.name, args.burst, args.log_level)
    except EvictingRedisError as exc:
        logger.error("%s", exc.message)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
