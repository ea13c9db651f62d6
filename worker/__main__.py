"""``batchocr-worker``: run one batching OCR worker process."""

from __future__ import annotations

import argparse
import logging

from redis import Redis
from rq.serializers import JSONSerializer

from shared.jobs import get_queue
from shared.models import MODELS
from shared.settings import Settings
from worker.batching import BatchWorker
from worker.models import load_model
from worker.pipeline import OcrPipeline


def load_pipelines(settings: Settings) -> dict[str, OcrPipeline]:
    """Every known model, loaded once for this process."""
    return {
        model: OcrPipeline(load_model(model, settings.threads, settings.ort_mem_arena), settings) for model in MODELS
    }


def build_worker(
    settings: Settings,
    connection: Redis,
    name: str | None = None,
    pipelines: dict[str, OcrPipeline] | None = None,
) -> BatchWorker:
    """A BatchWorker on the settings' queue (``pipelines`` default to loading every model)."""
    pipelines = pipelines if pipelines is not None else load_pipelines(settings)
    return BatchWorker(
        [get_queue(connection, settings)],
        connection=connection,
        serializer=JSONSerializer,
        settings=settings,
        pipelines=pipelines,
        name=name,
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="batchocr-worker", description=__doc__)
    parser.add_argument("--burst", action="store_true", help="exit when the queue is empty")
    parser.add_argument("--name", help="worker name (default: rq's random name)")
    parser.add_argument("--log-level", default="INFO")
    args = parser.parse_args(argv)
    logging.basicConfig(level=args.log_level, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    settings = Settings.from_env()
    connection = Redis.from_url(settings.redis_url)
    worker = build_worker(settings, connection, args.name)
    worker.work(burst=args.burst, logging_level=args.log_level)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
