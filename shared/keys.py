"""Every Redis key batchocr writes, in one place (rq's own keys stay rq's)."""

from __future__ import annotations

PREFIX = "batchocr"


def image_key(job_id: str) -> str:
    """Raw image bytes of a job, written by the API with a TTL, deleted when the job ends."""
    return f"{PREFIX}:image:{job_id}"


def lease_key(job_id: str) -> str:
    """A running job's lease: set by the worker holding it, renewed while it runs (TTL = lease)."""
    return f"{PREFIX}:lease:{job_id}"


# Hash version -> weight: the canary split for jobs that name no model version (shared.canary).
CANARY = f"{PREFIX}:canary"

# Hash job id -> how many workers died holding that job (suspects run alone; N = poison).
CRASHES = f"{PREFIX}:crashes"


def limbo_key(queue_name: str) -> str:
    """Hash job id -> first time the reaper saw it in rq's intermediate queue with no lease."""
    return f"{PREFIX}:limbo:{queue_name}"


def reaper_lock(queue_name: str) -> str:
    return f"{PREFIX}:reaper:{queue_name}"
