"""A batching rq worker: one blocking dequeue, then up to ``max_batch - 1`` more jobs.

It is an rq ``SimpleWorker`` (no fork per job: the ONNX sessions live in this process), so rq's
registries, heartbeats, ``rq info`` and job statuses work as usual. The job dequeued opens a
batch, which closes at ``max_batch`` jobs or ``max_wait_ms`` after it opened, whichever comes
first. Jobs are taken from the priority queues by ``worker.dequeue`` (LMOVE into rq's
intermediate queue, so they are never only in this process's memory).

Every step after a job is taken is isolated per job: a job whose payload, image or result
breaks fails alone, and nothing a job does can end the worker's loop. Each job holds a lease
while it runs (``worker.recovery``): if this process dies, another worker's reaper queues the
batch again within ``OCR_LEASE_S`` plus a few seconds, and suspects of a crash run alone.
"""

from __future__ import annotations

import logging
import time
import uuid

from rq import Queue
from rq.job import Job
from rq.utils import now
from rq.worker import WorkerStatus

from shared import priorities
from shared.errors import JobTimeoutError, StorageUnavailableError
from shared.jobs import TERMINAL
from shared.payload import JobPayload
from shared.s3 import ObjectStore
from shared.settings import Settings
from shared.job_control import end_jobs
from worker.dequeue import PriorityTaker
from worker.job_io import LoadedJob, Outcome, Patience, finish, load_jobs
from worker.metrics import WorkerMetrics
from worker import recovery
from worker.outage import UNREACHABLE, Outage, OutageTolerantWorker
from worker.pipeline import PageResult
from worker.loaded_models import Pipelines
from worker.leases import Leases
from worker.recording import OutcomeRecorder
from worker.recovery import Guardian
from worker.storage_outage import StorageOutage

logger = logging.getLogger(__name__)


class BatchTimeout(BaseException):
    """Raised by the death penalty inside a batch. A BaseException, so that the pipeline's
    per-task fallback (``except Exception``) does not swallow it and run the batch again."""


class BatchWorker(OutcomeRecorder, OutageTolerantWorker):
    """An rq worker that runs up to ``settings.max_batch`` OCR jobs per model call;
    ``pipelines``: this process's model versions (loaded on first use, bounded)."""

    def __init__(self, queues, *, settings: Settings, pipelines: Pipelines,
                 metrics: WorkerMetrics | None = None, outage: Outage | None = None, **kwargs) -> None:
        super().__init__(queues, outage=outage, **kwargs)
        self.settings = settings
        self.pipelines = pipelines
        self.metrics = metrics or WorkerMetrics()
        self.objects = ObjectStore(settings)
        self.storage = StorageOutage(f"worker {self.name}")
        self.batches_run = 0
        self.leases = Leases(self.name, settings.lease_s)
        self.shutdown_requested = False
        self.taker = PriorityTaker.for_worker(self, settings)

    def dequeue(self, timeout: float | None):
        return self.taker.take(timeout)  # highest priority first, owed shares aside

    def work(self, *args, **kwargs) -> bool:
        """rq's work loop beside the guardian thread (leases; a reaper of every priority's queue)."""
        watched = dict.fromkeys([q.name for q in self.queues] + priorities.queue_names(self.settings.queue_name))
        guardian = Guardian(self.settings, list(watched), self.leases, self.metrics, self.outage)
        guardian.start()
        try:
            return super().work(*args, **kwargs)
        finally:
            guardian.stop()

    def request_stop(self, signum, frame) -> None:
        """SIGTERM/SIGINT: remember it (rq raises StopRequested when idle and sets no flag) so
        the process exits instead of reconnecting; then rq's warm or cold shutdown."""
        self.shutdown_requested = True
        super().request_stop(signum, frame)

    def execute_job(self, job: Job, queue: Queue) -> None:
        batch, began = [(job, queue)], self.outage.clock()
        try:
            # BUSY first: a SIGTERM while gathering then waits for this batch instead of abandoning it.
            self.set_state(WorkerStatus.BUSY)
            if recovery.is_suspect(self.connection, job.id):
                logger.warning("job %s was held by a worker that died: running it alone", job.id)
            else:
                self._gather(batch, self.settings.max_batch, self.settings.max_wait_ms / 1000)
        except UNREACHABLE as exc:
            self.outage.wait(self.connection, exc, began=began)
            self._hand_back(batch, "Redis was unreachable while its batch was gathered")
            return
        self._run_batch(batch)
        self._quietly(lambda: self.set_state(WorkerStatus.IDLE))

    def _gather(self, batch: list[tuple[Job, Queue]], size: int, max_wait: float) -> None:
        """Add jobs to ``batch`` up to ``size``, those queued or arriving within ``max_wait`` s.

        Redis checks blocking-command timeouts only every 100 ms, which would stretch a 20 ms
        ``max_wait`` fivefold, so waiting polls every 2 ms. In an outage ``batch`` holds every
        job taken so far, for the caller to hand back.
        """
        deadline = time.monotonic() + max_wait
        while len(batch) < size and not self._stop_requested:
            result = self.taker.take(None, upto=batch[0][1])  # nothing of lower priority than its opener
            if result is not None:
                if recovery.is_suspect(self.connection, result[0].id):
                    recovery.put_back(*result)
                    break
                batch.append(result)
                continue
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            time.sleep(min(remaining, 0.002))

    def _run_batch(self, batch: list[tuple[Job, Queue]]) -> None:
        batch_id = uuid.uuid4().hex[:12]
        started, began = time.perf_counter(), self.outage.clock()
        prepared: list[tuple[Job, Queue]] = []
        try:
            deadline = self._deadline(batch)
            prepared, executions, failed = self._prepare(batch, deadline)
            patience = self._patience(prepared, executions, deadline - time.monotonic())
            loaded = load_jobs(self.connection, [job for job, _ in prepared], self.settings, self.objects, patience)
            outcomes = self._ocr(loaded, batch_id, patience) if loaded else []
        except UNREACHABLE as exc:  # an outage before any result: not the jobs' fault, queue them again
            self.outage.wait(self.connection, exc, began=began)
            self._hand_back(batch, "Redis was unreachable while its batch started")
            return
        except Exception as exc:  # anything else: fail the batch's jobs with the reason, keep the worker
            logger.exception("batch %s could not run", batch_id)
            outcomes = [Outcome.failed(exc)] * len(prepared)
        except (SystemExit, KeyboardInterrupt):  # a second SIGTERM: hand the batch back, then exit
            self._hand_back(batch, "its worker was stopped mid-batch", wait=False)
            raise
        prepared, outcomes = self._set_aside(prepared, outcomes)
        recorded = self._record(prepared, executions, outcomes)
        done = [job for (job, _), ok in zip(prepared, recorded) if ok]
        self._release(done)
        self.leases.unhold([job.id for (job, _), ok in zip(prepared, recorded) if not ok])
        self._end_jobs(done)
        self.batches_run += 1
        self.metrics.batch_size.observe(len(batch))
        logger.info("batch %s: %d jobs, %d failed, %.0f ms", batch_id, len(batch),
                    failed + sum(o.error is not None for o in outcomes),
                    (time.perf_counter() - started) * 1000,
                    extra={"batch_id": batch_id, "job_ids": [job.id for job, _ in batch]})

    def _deadline(self, batch: list[tuple[Job, Queue]]) -> float:
        """Until when the batch's leases are renewed: a job timeout per model group, + 60 s."""
        groups = len({JobPayload.from_job(job).model for job, _ in batch}) or 1
        return time.monotonic() + self.settings.job_timeout_s * groups + 60

    def _prepare(self, batch: list[tuple[Job, Queue]], deadline: float):
        """Mark each job started (rq's bookkeeping); a job that cannot be prepared fails alone."""
        prepared, executions, failed = [], {}, 0
        for job, queue in batch:
            try:
                self.leases.hold(self.connection, job.id, deadline)
                executions[job.id] = self.prepare_execution(job)
                self.connection.delete(queue.intermediate_queue.get_first_seen_key(job.id))
                self.prepare_job_execution(job, remove_from_intermediate_queue=True)
                job.started_at = now()
                prepared.append((job, queue))
            except UNREACHABLE:
                raise
            except Exception as exc:
                failed += 1
                logger.exception("job %s could not be started", job.id)
                self._finalize(job, queue, executions.get(job.id), Outcome.failed(exc))
                self._release([job])
                self._end_jobs([job])
        return prepared, executions, failed

    def _patience(self, prepared: list[tuple[Job, Queue]], executions: dict, budget: float) -> Patience:
        """How the batch's S3 steps run: an outage is waited out (``worker.storage_outage``),
        the batch's jobs kept this worker's meanwhile, and the batch's time to run (``budget``
        s) still whole once it ends; a stop request ends it."""
        ids = [job.id for job, _ in prepared]
        timeout = min((job.timeout or self.settings.job_timeout_s for job, _ in prepared), default=0)
        started_until = [time.monotonic() + timeout + 60]  # rq's entries, as _prepare left them

        def keep(seconds: float) -> None:
            """Leases renewed ``seconds`` + the budget more at least; rq's started entries (job
            timeout + 60 s from their last heartbeat) renewed too when they would lapse sooner."""
            now = time.monotonic()
            self.leases.hold_at_least(ids, now + seconds + budget)
            if started_until[0] < now + seconds + 30:
                ttl = int(max(seconds, timeout)) + 60
                self._quietly(lambda: self._keep_started(prepared, executions, ttl))
                started_until[0] = now + ttl

        return lambda step: self.storage.call(step, keep=keep, stop=lambda: self.shutdown_requested)

    def _keep_started(self, prepared: list[tuple[Job, Queue]], executions: dict, ttl: int) -> None:
        """rq's heartbeat for the batch's executions, so rq's cleanup never takes them as abandoned."""
        with self.connection.pipeline() as pipe:
            for job, _ in prepared:
                executions[job.id].heartbeat(job.started_job_registry, ttl, pipeline=pipe)
            pipe.execute()
        self.heartbeat()

    def _ocr(self, loaded: list[LoadedJob], batch_id: str, patience: Patience) -> list[Outcome]:
        """Run each model's decodable tasks as one batch; finish and store each job's result."""
        outcomes = [None if item.error is None else Outcome.failed(item.error) for item in loaded]
        timeout = max(item.job.timeout or self.settings.job_timeout_s for item in loaded)
        for model in sorted({item.model for item in loaded if item.task is not None}):
            members = [i for i, item in enumerate(loaded) if item.task is not None and item.model == model]
            pages = self._run_model(model, [loaded[i] for i in members], timeout)
            finished_at = time.time()
            for i, page in zip(members, pages):
                outcomes[i], document = finish(loaded[i], page, self.settings, self.objects, batch_size=len(loaded),
                                               batch_id=batch_id, finished_at=finished_at, patience=patience)
                if document is not None:
                    self.metrics.finished(document)
        return [o or Outcome.failed(RuntimeError("no pipeline for this job's model")) for o in outcomes]

    def _run_model(self, model: str, items: list[LoadedJob], timeout: int) -> list[PageResult | BaseException]:
        """One model's share of the batch through its pipeline, under the job timeout."""
        try:
            pipeline = self.pipelines.get(model)
            with self.death_penalty_class(timeout, BatchTimeout, job_id=items[0].job.id):
                return pipeline.run([item.task for item in items])
        except BatchTimeout:  # with batch-mates, which job was slow is not known: none is failed for it
            error = JobTimeoutError(f"the job ran past the job timeout ({timeout} s)")
            return [recovery.RanTooLong() if len(items) > 1 else error] * len(items)
        except Exception as exc:
            return [exc] * len(items)

    def _set_aside(self, prepared: list[tuple[Job, Queue]], outcomes: list[Outcome]):
        """Jobs queued again, unfailed: those of a batch that ran past the job timeout (each to
        run alone), and those S3 was unavailable for when the worker was stopped; returns the
        rest of ``prepared`` and their ``outcomes``."""
        aside, unserved, kept, kept_outcomes = [], [], [], []
        for job_queue, outcome in zip(prepared, outcomes):
            if isinstance(outcome.error, recovery.RanTooLong):
                aside.append(job_queue)
            elif isinstance(outcome.error, StorageUnavailableError):
                unserved.append(job_queue)
            else:
                kept.append(job_queue)
                kept_outcomes.append(outcome)
        if aside:
            self.outage.retry(self.connection, lambda: recovery.run_alone(self.connection, [j.id for j, _ in aside]))
            self._hand_back(aside, "its batch ran past the job timeout; it runs alone")
        if unserved:
            self._hand_back(unserved, "S3 was unavailable when its worker was stopped")
        return kept, kept_outcomes

    def _release(self, jobs: list[Job]) -> None:
        try:  # in an outage leases lapse on their own; the reaper skips finished jobs
            self.outage.quietly(lambda: self.leases.release(self.connection, [job.id for job in jobs]))
        except Exception:
            logger.warning("could not release leases", exc_info=True)

    def _hand_back(self, batch: list[tuple[Job, Queue]], reason: str, wait: bool = True) -> None:
        """Queue the batch's jobs again at once, at the front: not a crash. With ``wait``, each
        waits out an outage first (a cold shutdown does not wait: leases then lapse)."""
        def requeue(job: Job, queue: Queue) -> None:
            if job.get_status(refresh=True) not in TERMINAL:  # a job failed alone while preparing stays failed
                recovery.requeue(job, queue, reason=reason)

        for job, queue in batch:
            try:
                if wait:
                    self.outage.retry(self.connection, lambda: requeue(job, queue))
                else:
                    requeue(job, queue)
            except Exception:
                logger.exception("could not queue job %s again; its lease will lapse", job.id)
        self.leases.unhold([job.id for job, _ in batch])

    def _end_jobs(self, jobs: list[Job]) -> None:
        """Images deleted, backlog places given back (``end_jobs``); in an outage both lapse on
        their own (image TTL; ``shared.backlog``), and the outage is waited out where next met."""
        try:
            self.outage.quietly(lambda: end_jobs(self.connection, jobs, self.objects))
        except Exception:
            logger.warning("could not delete the batch's images", exc_info=True)
