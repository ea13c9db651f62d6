"""``GET /metrics``: Prometheus text, read from Redis at scrape time; ``GET /metrics/queues``:
the queued jobs as JSON, for an autoscaler (KEDA's metrics-api trigger).

Counting from Redis (rq's queue and registries, batchocr's crash hash) rather than from
in-process counters means every gunicorn process answers the same numbers and nothing is lost
when one restarts. Worker-side figures (batch sizes, stage latencies, confidences) come from
each worker's own ``/metrics`` port (``worker.metrics``).
"""

from __future__ import annotations

import time

from flask import Blueprint, Response, current_app, jsonify
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from rq import Queue, Worker

from shared import backlog, jobs, keys, priorities, tenants
from shared.redis_memory import RedisMemory

bp = Blueprint("metrics", __name__)
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


def queue_depths(connection, settings) -> dict[str, dict[str, int]]:
    """Priority -> {queue name -> jobs waiting}: each priority's own queue and its API keys'
    queues (``shared.tenants``)."""
    depths = {}
    for priority, queue in zip(priorities.PRIORITIES, jobs.get_queues(connection, settings)):
        names = [queue.name, *tenants.owner_queues(connection, queue.name)]
        with connection.pipeline(transaction=False) as pipe:
            for name in names:
                pipe.llen(Queue(name, connection=connection).key)
            depths[priority] = dict(zip(names, pipe.execute()))
    return depths


class QueueCollector:
    """Jobs by status, queue depth, live workers and crash suspects of one deployment."""

    def __init__(self, connection, settings) -> None:
        self.connection = connection
        self.settings = settings

    def collect(self):
        by_status = GaugeMetricFamily("batchocr_jobs", "Jobs by rq status", labels=["queue", "status"])
        depth = GaugeMetricFamily("batchocr_queue_depth", "Jobs waiting in the queue", labels=["queue"])
        queued_by_name = {name: n for by_queue in queue_depths(self.connection, self.settings).values()
                          for name, n in by_queue.items()}
        for name, queued in queued_by_name.items():  # each priority's queue, and its API keys' queues
            queue = Queue(name, connection=self.connection)
            by_status.add_metric([queue.name, "queued"], queued)
            depth.add_metric([queue.name], queued)
            registries = {"started": queue.started_job_registry, "finished": queue.finished_job_registry,
                          "failed": queue.failed_job_registry, "scheduled": queue.scheduled_job_registry}
            for status, registry in registries.items():  # ZCARD: no rq cleanup triggered by a scrape
                by_status.add_metric([queue.name, status], self.connection.zcard(registry.key))
        yield by_status
        yield depth
        yield GaugeMetricFamily("batchocr_workers", "Workers alive: their guardian reached Redis within "
                                "3 lease periods", value=self._alive())
        yield GaugeMetricFamily("batchocr_workers_registered", "Workers registered with rq (a killed one stays "
                                "until its registration's TTL)", value=Worker.count(connection=self.connection))
        yield GaugeMetricFamily("batchocr_crash_suspects", "Jobs whose worker died, waiting to run alone",
                                value=self.connection.hlen(keys.CRASHES))
        yield from self._backlog()

    def _alive(self) -> int:
        return self.connection.zcount(keys.WORKERS_SEEN, time.time() - 3 * self.settings.lease_s, "+inf")

    def _backlog(self):
        """Admission control's bounds, what they hold now, and its refusals (``shared.backlog``)."""
        memory = RedisMemory.read(self.connection)
        bounds, held = backlog.Bounds.derive(self.settings, memory), backlog.totals(self.connection)
        for name, text, value in (
            ("batchocr_backlog_jobs", "Jobs admitted and not ended (waiting or running)", held.jobs),
            ("batchocr_backlog_bytes", "Bytes of Redis held by the backlog's images", held.bytes),
            ("batchocr_backlog_max_jobs", "Admission bound on jobs", bounds.jobs),
            ("batchocr_backlog_max_bytes", "Admission bound on image bytes in Redis", bounds.bytes),
            ("batchocr_backlog_key_share", "Share of each bound one API key may hold", bounds.share),
            ("batchocr_drain_jobs_per_second", "Jobs ended per second over the last minute",
             backlog.drain_rate(self.connection)),
            ("batchocr_redis_used_memory_bytes", "Redis used_memory", memory.used),
            ("batchocr_redis_maxmemory_bytes", "Redis maxmemory (0 = no limit)", memory.maxmemory),
            ("batchocr_redis_evicting", "1 if Redis's maxmemory-policy may evict keys (jobs can be lost)",
             int(memory.evicting)),
        ):
            yield GaugeMetricFamily(name, text, value=value)
        refusals = CounterMetricFamily("batchocr_backlog_refusals", "Submissions refused with 429, by bound",
                                       labels=["bound"])
        for bound in backlog.BOUND_NAMES:
            refusals.add_metric([bound], held.refusals.get(bound, 0))
        yield refusals


@bp.get("/metrics")
def metrics() -> Response:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(QueueCollector(current_app.extensions["batchocr.redis"],
                                     current_app.extensions["batchocr.settings"]))
    return Response(generate_latest(registry), content_type=CONTENT_TYPE)


@bp.get("/metrics/queues")
def queues() -> Response:
    """``{"queued": total, "priorities": {priority: n}, "queues": {name: n}}``: what an
    autoscaler needs to size the workers, whichever API keys' queues hold it."""
    depths = queue_depths(current_app.extensions["batchocr.redis"], current_app.extensions["batchocr.settings"])
    by_priority = {priority: sum(by_queue.values()) for priority, by_queue in depths.items()}
    return jsonify(queued=sum(by_priority.values()), priorities=by_priority,
                   queues={name: n for by_queue in depths.values() for name, n in by_queue.items()})
