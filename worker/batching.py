"""A batching rq worker: one blocking dequeue, then up to ``max_batch - 1`` more jobs.

It is an rq ``SimpleWorker`` (no fork per job: the ONNX sessions live in this process), so rq's
registries, heartbeats, ``rq info`` and job statuses work as usual. Only ``execute_job`` is
replaced: the job rq dequeued opens a batch, which closes at ``max_batch`` jobs or ``max_wait_ms``
after it opened, whichever comes first. Extra jobs are moved to rq's intermediate queue with
LMOVE/BLMOVE, as rq does for its own dequeue, so they are never only in this process's memory.
"""

from __future__ import annotations

import logging
import time
import uuid

from rq import Queue
from rq.job import Job
from rq.timeouts import JobTimeoutException
from rq.utils import now
from rq.worker import SimpleWorker, WorkerStatus

from shared.settings import Settings
from worker.jobs import LoadedJob, error_document, load_jobs, result_document
from worker.pipeline import OcrPipeline

logger = logging.getLogger(__name__)


class BatchWorker(SimpleWorker):
    """An rq worker that runs up to ``settings.max_batch`` OCR jobs per model call.

    Args:
        pipelines: loaded pipelines by model name, built once for this process.
    """

    def __init__(self, queues, *, settings: Settings, pipelines: dict[str, OcrPipeline], **kwargs) -> None:
        super().__init__(queues, **kwargs)
        self.settings = settings
        self.pipelines = pipelines
        self.batches_run = 0

    def execute_job(self, job: Job, queue: Queue) -> None:
        batch = [(job, queue), *self._gather(self.settings.max_batch - 1, self.settings.max_wait_ms / 1000)]
        self._run_batch(batch)
        self.set_state(WorkerStatus.IDLE)

    def _gather(self, room: int, max_wait: float) -> list[tuple[Job, Queue]]:
        """Take up to ``room`` more jobs that are queued or arrive within ``max_wait`` s."""
        taken: list[tuple[Job, Queue]] = []
        deadline = time.monotonic() + max_wait
        while len(taken) < room:
            result = Queue.dequeue_any(self._ordered_queues, None, connection=self.connection,
                                       job_class=self.job_class, serializer=self.serializer)
            if result is None:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                result = self._wait_for_job(remaining)
                if result is None:
                    continue
            taken.append(result)
        return taken

    def _wait_for_job(self, timeout: float) -> tuple[Job, Queue] | None:
        """Wait up to ``timeout`` s for one more job.

        Redis checks blocking-command timeouts only every 100 ms (``hz 10``), so BLMOVE would
        stretch a 20 ms ``max_wait`` to ~100 ms: short waits poll every 2 ms instead, and only
        long waits block (BLMOVE keeps the job in rq's intermediate queue, as rq does).
        """
        if timeout < 0.5 or len(self.queues) != 1:
            time.sleep(min(timeout, 0.002))
            return None
        queue = self.queues[0]
        job_id = self.connection.blmove(queue.key, queue.intermediate_queue_key, timeout - 0.2)
        if job_id is None:
            return None
        try:
            return Job.fetch(job_id.decode(), connection=self.connection, serializer=self.serializer), queue
        except Exception:
            logger.warning("dropping unreadable job id %r from %s", job_id, queue.name, exc_info=True)
            self.connection.lrem(queue.intermediate_queue_key, 1, job_id)
            return None

    def _run_batch(self, batch: list[tuple[Job, Queue]]) -> None:
        batch_id = uuid.uuid4().hex[:12]
        started = time.perf_counter()
        executions = {}
        for job, _ in batch:
            executions[job.id] = self.prepare_execution(job)
            self.prepare_job_execution(job, remove_from_intermediate_queue=len(self.queues) == 1)
            job.started_at = now()
        loaded = load_jobs(self.connection, [job for job, _ in batch], self.settings)
        outcomes = self._ocr(loaded, batch_id)
        for (job, queue), outcome in zip(batch, outcomes):
            self._finalize(job, queue, executions[job.id], outcome)
        self.connection.delete(*[(job.kwargs or {}).get("image_key", "") for job, _ in batch])
        self.batches_run += 1
        logger.info("batch %s: %d jobs, %d failed, %.0f ms", batch_id, len(batch),
                    sum(isinstance(o, BaseException) for o in outcomes), (time.perf_counter() - started) * 1000)

    def _ocr(self, loaded: list[LoadedJob], batch_id: str) -> list[dict | BaseException]:
        """Run each model's decodable tasks as one batch; map results back to the jobs."""
        outcomes: list[dict | BaseException | None] = [item.error for item in loaded]
        timeout = max(item.job.timeout or self.settings.job_timeout_s for item in loaded)
        for model, pipeline in self.pipelines.items():
            members = [i for i, item in enumerate(loaded) if item.task is not None and item.model == model]
            if not members:
                continue
            try:
                with self.death_penalty_class(timeout, JobTimeoutException, job_id=loaded[members[0]].job.id):
                    pages = pipeline.run([loaded[i].task for i in members])
            except Exception as exc:
                pages = [exc] * len(members)
            finished = time.time()
            for i, page in zip(members, pages):
                outcomes[i] = page if isinstance(page, BaseException) else result_document(
                    loaded[i], page, batch_size=len(loaded), batch_id=batch_id, finished_at=finished)
        return [o if o is not None else RuntimeError("no pipeline for this job's model") for o in outcomes]

    def _finalize(self, job: Job, queue: Queue, execution, outcome: dict | BaseException) -> None:
        """Record success or failure through rq's own handlers (registries, result, callbacks)."""
        if isinstance(outcome, BaseException):
            job.meta["error"] = error_document(outcome)
            job.save_meta()
            exc_info = (type(outcome), outcome, outcome.__traceback__)
            self._finalize_failure(job, queue, execution, exc_info)
            logger.info("job %s failed: %s", job.id, job.meta["error"]["message"])
        else:
            self._finalize_success(job, queue, execution, outcome)
