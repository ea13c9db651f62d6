"""Job priorities: which rq queue a job waits in, and the order workers serve them.

Each priority is its own rq queue, so ``rq info``, rq-dashboard and a queue-length autoscaler
see every one: ``<OCR_QUEUE_NAME>-interactive``, ``<OCR_QUEUE_NAME>`` (normal: the name
deployments already watch) and ``<OCR_QUEUE_NAME>-bulk``. A worker takes the highest non-empty
priority first, except that each lower priority that has jobs gets at least ``OCR_MIN_SHARE``
of a worker's jobs (``worker.dequeue``), so a stream of interactive jobs never starves a bulk
run. A job's priority is part of its options (shown in its view); its queue is its rq origin.
"""

from __future__ import annotations

from shared.errors import BadOptionError
from shared.settings import Settings

# Highest first: the order workers serve them in.
PRIORITIES = ("interactive", "normal", "bulk")
DEFAULT = "normal"


def parse(raw: object, default: str = DEFAULT) -> str:
    """A client's priority ('' or None: ``default``); BadOptionError for anything else."""
    value = str(raw or "").strip().lower() or default
    if value not in PRIORITIES:
        raise BadOptionError(f"priority must be one of {', '.join(PRIORITIES)}; got {str(raw)[:32]!r}")
    return value


def queue_name(settings: Settings, priority: str) -> str:
    """The rq queue of ``priority`` (normal keeps the bare ``OCR_QUEUE_NAME``)."""
    if priority not in PRIORITIES:
        raise BadOptionError(f"priority must be one of {', '.join(PRIORITIES)}; got {priority!r}")
    return settings.queue_name if priority == DEFAULT else f"{settings.queue_name}-{priority}"


def queue_names(settings: Settings) -> list[str]:
    """Every priority's queue, highest first."""
    return [queue_name(settings, priority) for priority in PRIORITIES]


def of_queue(settings: Settings, name: str) -> str:
    """The priority whose queue is ``name`` ('' if none of this deployment's)."""
    return next((p for p in PRIORITIES if queue_name(settings, p) == name), "")
