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

# Highest first: the order workers serve them in.
PRIORITIES = ("interactive", "normal", "bulk")
DEFAULT = "normal"


def parse(raw: object, default: str = DEFAULT) -> str:
    """A client's priority ('' or None: ``default``); BadOptionError for anything else."""
    value = str(raw or "").strip().lower() or default
    if value not in PRIORITIES:
        raise BadOptionError(f"priority must be one of {', '.join(PRIORITIES)}; got {str(raw)[:32]!r}")
    return value


def queue_name(base: str, priority: str) -> str:
    """The rq queue of ``priority`` in a deployment whose ``OCR_QUEUE_NAME`` is ``base``
    (normal keeps the bare name)."""
    if priority not in PRIORITIES:
        raise BadOptionError(f"priority must be one of {', '.join(PRIORITIES)}; got {priority!r}")
    return base if priority == DEFAULT else f"{base}-{priority}"


def queue_names(base: str) -> list[str]:
    """Every priority's queue, highest first."""
    return [queue_name(base, priority) for priority in PRIORITIES]


def named(names: str) -> set[str]:
    """The priorities a comma-separated ``OCR_PRIORITIES`` names (unknown names included)."""
    return {p.strip().lower() for p in names.split(",") if p.strip()}


def served(names: str) -> list[str]:
    """The priorities workers take jobs of, highest first: those ``names`` names ('' = all)."""
    chosen = named(names)
    return [p for p in PRIORITIES if not chosen or p in chosen]
