"""A worker's Prometheus metrics, served on ``OCR_METRICS_PORT`` when it is set.

One ``WorkerMetrics`` per process, with its own registry, passed to the worker explicitly.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server

from shared.document import ResultDocument
from worker.pipeline import OcrPipeline

STAGES = ("queue_wait", "decode", "detection", "recognition", "total")
SECONDS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300)


class WorkerMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.jobs = Counter("batchocr_worker_jobs", "Jobs this worker ended, by outcome",
                            ["status", "model", "kind"], registry=self.registry)
        self.batch_size = Histogram("batchocr_batch_size", "Jobs per batch", registry=self.registry,
                                    buckets=(1, 2, 3, 4, 6, 8, 12, 16, 32, 64))
        self.stage = Histogram("batchocr_stage_seconds", "Per-job latency by stage (recognition is the "
                               "batch's shared pass)", ["stage", "model"], registry=self.registry, buckets=SECONDS)
        self.confidence = Histogram("batchocr_line_confidence", "Recognition confidence of returned lines",
                                    ["model"], registry=self.registry,
                                    buckets=(0.5, 0.6, 0.7, 0.8, 0.85, 0.9, 0.95, 0.98, 0.99, 1.0))
        self.inference = Gauge("batchocr_worker_inference", "1 for each loaded model version, labelled with "
                               "the backend and precision it runs on", ["model", "backend", "precision"],
                               registry=self.registry)
        self.recovered = Counter("batchocr_recovered_jobs", "Jobs of dead workers this worker's reaper "
                                 "handled", ["action"], registry=self.registry)

    def loaded(self, pipeline: OcrPipeline) -> None:
        """A model version this worker holds, and what it runs on (``worker.backend_choice``)."""
        choice = pipeline.model.choice
        self.inference.labels(pipeline.model.spec.name, choice.backend, choice.precision).set(1)

    def unloaded(self, pipeline: OcrPipeline) -> None:
        choice = pipeline.model.choice
        self.inference.remove(pipeline.model.spec.name, choice.backend, choice.precision)

    def serve(self, port: int) -> None:
        start_http_server(port, registry=self.registry)

    def finished(self, document: ResultDocument) -> None:
        self.jobs.labels("finished", document.model, "").inc()
        for stage in STAGES:
            value = getattr(document.timings_ms, stage, None)
            if value is not None:
                self.stage.labels(stage, document.model).observe(value / 1000.0)
        for line in document.lines:
            self.confidence.labels(document.model).observe(float(line.confidence))

    def failed(self, model: str, kind: str) -> None:
        self.jobs.labels("failed", model, kind).inc()
