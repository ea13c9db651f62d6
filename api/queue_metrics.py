"""``GET /metrics``: Prometheus text, read from Redis at scrape time.

Counting from Redis (rq's queue and registries, batchocr's crash hash) rather than from
in-process counters means every gunicorn process answers the same numbers and nothing is lost
when one restarts. Worker-side figures (batch sizes, stage latencies, confidences) come from
each worker's own ``/metrics`` port (``worker.metrics``).
"""

from __future__ import annotations

from flask import Blueprint, Response, current_app
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily
from rq import Worker

from shared import jobs, keys

bp = Blueprint("metrics", __name__)
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


class QueueCollector:
    """Jobs by status, queue depth, live workers and crash suspects of one deployment."""

    def __init__(self, connection, settings) -> None:
        self.connection = connection
        self.settings = settings

    def collect(self):
        queue = jobs.get_queue(self.connection, self.settings)
        queued = self.connection.llen(queue.key)
        by_status = GaugeMetricFamily("batchocr_jobs", "Jobs by rq status", labels=["queue", "status"])
        by_status.add_metric([queue.name, "queued"], queued)
        registries = {"started": queue.started_job_registry, "finished": queue.finished_job_registry,
                      "failed": queue.failed_job_registry, "scheduled": queue.scheduled_job_registry}
        for status, registry in registries.items():  # ZCARD: no rq cleanup triggered by a scrape
            by_status.add_metric([queue.name, status], self.connection.zcard(registry.key))
        yield by_status
        depth = GaugeMetricFamily("batchocr_queue_depth", "Jobs waiting in the queue", labels=["queue"])
        depth.add_metric([queue.name], queued)
        yield depth
        yield GaugeMetricFamily("batchocr_workers", "Workers registered with rq",
                                value=Worker.count(connection=self.connection))
        yield GaugeMetricFamily("batchocr_crash_suspects", "Jobs whose worker died, waiting to run alone",
                                value=self.connection.hlen(keys.CRASHES))


@bp.get("/metrics")
def metrics() -> Response:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(QueueCollector(current_app.extensions["batchocr.redis"],
                                     current_app.extensions["batchocr.settings"]))
    return Response(generate_latest(registry), content_type=CONTENT_TYPE)
