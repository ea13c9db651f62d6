"""Durable submits: with ``OCR_SUBMIT_REPLICAS``, a job is acknowledged only once that many
Redis replicas hold it, so a failover right after the 202 cannot lose it."""

from __future__ import annotations

from redis import Redis

from shared import keys
from shared.errors import NotReplicatedError
from shared.settings import Settings


def confirm(connection: Redis, settings: Settings, job_id: str) -> None:
    """With ``OCR_SUBMIT_REPLICAS``, wait until that many replicas hold the job: a probe key is
    written after it and WAITed on in the same round trip (WAIT counts the writes of its own
    connection; the master's replication stream is ordered, so a replica holding the probe
    holds the job)."""
    if not settings.submit_replicas:
        return
    pipe = connection.pipeline(transaction=False)
    pipe.set(keys.REPLICATION_PROBE, job_id, ex=60)
    pipe.execute_command("WAIT", settings.submit_replicas, settings.submit_replica_wait_ms)
    confirmed = int(pipe.execute()[-1])
    if confirmed < settings.submit_replicas:
        raise NotReplicatedError(
            f"job {job_id} was queued but {confirmed} of {settings.submit_replicas} replica(s) confirmed it within "
            f"{settings.submit_replica_wait_ms} ms, so a Redis failover now could lose it; it may still run: "
            f"check GET /v1/jobs/{job_id} before submitting again", job_id=job_id)
