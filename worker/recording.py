"""Recording a batch's outcomes through rq's own handlers (registries, result, callbacks),
job by job, waiting out a Redis outage: the part of ``worker.batching`` that ends each job."""

from __future__ import annotations

import logging

import redis
from rq import Queue
from rq.job import Job

from shared.errors import is_input_fault
from shared.jobs import TERMINAL
from shared.payload import JobPayload
from worker.job_io import Outcome, error_document
from worker.outage import UNREACHABLE

logger = logging.getLogger(__name__)


class OutcomeRecorder:
    """A mixin of ``BatchWorker`` (an rq worker with ``outage``, ``leases``, ``metrics`` and
    ``_hand_back``)."""

    def _record(self, prepared: list[tuple[Job, Queue]], executions: dict, outcomes: list[Outcome]) -> list[bool]:
        """Record each outcome through rq, waiting out an outage. A job queued again meanwhile
        (this worker was cut off for longer than its lease, and the job may run elsewhere) is
        left alone: its outcome here is dropped, so a job ends with one result."""
        ids = [job.id for job, _ in prepared]
        ours = set(self.outage.retry(self.connection, lambda: self.leases.renew(self.connection, ids)))
        return [self._record_one(job, queue, executions[job.id], outcome) if job.id in ours else self._lost(job)
                for (job, queue), outcome in zip(prepared, outcomes)]

    def _record_one(self, job: Job, queue: Queue, execution, outcome: Outcome) -> bool:
        tries = 0

        def step() -> bool:
            nonlocal tries
            tries += 1
            if tries > 1:  # after an outage: the first try may have gone through, or the job moved on
                if job.get_status(refresh=True) in TERMINAL:
                    return True
                if not self.leases.renew(self.connection, [job.id]):
                    return self._lost(job)
            return self._finalize(job, queue, execution, outcome)

        return self.outage.retry(self.connection, step)

    def _lost(self, job: Job) -> bool:
        logger.warning("job %s was queued again while this worker was cut off from Redis; its outcome here "
                       "is dropped", job.id, extra={"job_id": job.id})
        return False

    def _finalize(self, job: Job, queue: Queue, execution, outcome: Outcome) -> bool:
        """Record success or failure through rq's own handlers (registries, result, callbacks);
        False if that could not be done (the job's lease then lapses and the reaper acts). An
        outage is raised, for the caller to wait out."""
        try:
            error = outcome.error
            if error is not None:
                job.meta["error"] = error_document(error)
                job.save_meta()
                if execution is None:
                    self.handle_job_failure(job, queue, exc_string=repr(error))
                else:
                    self._finalize_failure(job, queue, execution, (type(error), error, error.__traceback__))
                kind = job.meta["error"]["kind"]
                self.metrics.failed(JobPayload.from_job(job).model, kind)
                logger.log(logging.INFO if is_input_fault(error) else logging.WARNING,
                           "job %s failed (%s): %s", job.id, kind, job.meta["error"]["message"],
                           extra={"job_id": job.id, "error_kind": kind})
            else:
                self._finalize_success(job, queue, execution, outcome.value)
            return True
        except redis.exceptions.OutOfMemoryError:  # this result may never fit: the job goes back instead
            logger.warning("Redis is full: the outcome of job %s could not be recorded; it goes back to the "
                           "queue (not counted as a crash)", job.id, extra={"job_id": job.id})
            self._hand_back([(job, queue)], "Redis was full when its outcome was to be recorded")
            return False
        except UNREACHABLE:
            raise
        except Exception:
            logger.exception("could not record the outcome of job %s; its lease will lapse", job.id)
            return False

    def handle_exception(self, job: Job, *exc_info) -> None:
        """rq's traceback log and exception handlers, for our own failures only: an input's
        fault (a corrupt image, a bad option) is expected, logged in one line by ``_finalize``."""
        if not is_input_fault(exc_info[1]):
            super().handle_exception(job, *exc_info)
