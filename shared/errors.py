"""batchocr's error tree. Every error the system raises on purpose derives from one root.

    BatchOcrError
    ├── ConfigError            a setting is missing or malformed
    │   └── EvictingRedisError     Redis may evict keys (maxmemory-policy) (503)
    ├── InputError             the client sent something we cannot accept (HTTP 4xx)
    │   ├── MissingImageError      no file / no image_base64          (400)
    │   ├── BadJsonError           the body is empty, not JSON, or not an object (400)
    │   ├── BadBase64Error         image_base64 does not decode       (400)
    │   ├── BadOptionError         an option has a bad value           (400)
    │   ├── UnsupportedImageError  bytes are not an image we can read  (415)
    │   ├── ImageTooLargeError     over the byte or pixel limit        (413)
    │   ├── ImageDecodeError       the image is corrupt / undecodable  (422)
    │   ├── ForbiddenBucketError   an s3:// input outside the allowlist (403)
    │   └── JobIdConflictError     a chosen job_id belongs to another key (409)
    ├── UnauthorizedError      no API key, or a wrong one              (401)
    ├── JobNotFoundError       unknown or expired job id               (404)
    ├── ImageExpiredError      the job's image key expired before a worker took it
    ├── ImageNotFoundError     the job's s3:// input does not exist
    ├── StorageError           S3 could not be read or written          (502)
    │   └── StorageUnavailableError  S3 did not answer, or answered 5xx/throttled (503)
    ├── ServiceBusyError       no capacity left for a synchronous request (503)
    ├── QueueFullError         the backlog is at a bound; retry after ``retry_after`` s (429)
    ├── JobTimeoutError        the job's batch ran past the job timeout
    └── ModelError             a model file is missing or inconsistent

The API maps the tree to HTTP in one handler (``api/errors.py``); the worker stores
``kind`` and ``message`` of the error on the failed job so clients get a reason, and logs a
failure that is the input's fault (:func:`is_input_fault`) in one line, without a traceback.
"""

from __future__ import annotations


class BatchOcrError(Exception):
    """Root of all batchocr errors. ``kind`` is a stable, machine-readable name."""

    kind = "error"
    http_status = 500

    def __init__(self, message: str, *, job_id: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.job_id = job_id

    def to_dict(self) -> dict[str, str]:
        return {"kind": self.kind, "message": self.message}


class ConfigError(BatchOcrError):
    kind = "config"


class EvictingRedisError(ConfigError):
    kind = "redis_evicting"
    http_status = 503


class InputError(BatchOcrError):
    kind = "bad_input"
    http_status = 400


class MissingImageError(InputError):
    kind = "missing_image"


class BadJsonError(InputError):
    kind = "bad_json"


class BadBase64Error(InputError):
    kind = "bad_base64"


class BadOptionError(InputError):
    kind = "bad_option"


class UnsupportedImageError(InputError):
    kind = "unsupported_image"
    http_status = 415


class ImageTooLargeError(InputError):
    kind = "image_too_large"
    http_status = 413


class ImageDecodeError(InputError):
    kind = "undecodable_image"
    http_status = 422


class ForbiddenBucketError(InputError):
    kind = "forbidden_bucket"
    http_status = 403


class JobIdConflictError(InputError):
    kind = "job_id_conflict"
    http_status = 409


class CollectionConflictError(InputError):
    """A collection id another API key uses, or a job joining a cancelled collection."""

    kind = "collection_conflict"
    http_status = 409


class UnauthorizedError(BatchOcrError):
    kind = "unauthorized"
    http_status = 401


class JobNotFoundError(BatchOcrError):
    kind = "not_found"
    http_status = 404


class CollectionNotFoundError(BatchOcrError):
    kind = "collection_not_found"
    http_status = 404


class ImageExpiredError(BatchOcrError):
    kind = "image_expired"
    http_status = 410


class ImageNotFoundError(BatchOcrError):
    kind = "image_not_found"
    http_status = 404


class StorageError(BatchOcrError):
    kind = "storage"
    http_status = 502


class StorageUnavailableError(StorageError):
    """S3 could not be reached, timed out, or answered with a server error or throttling, after
    botocore's own retries: an infrastructure fault, never a job's. Workers wait it out
    (``worker.storage_outage``); the API answers 503 with ``Retry-After``."""

    kind = "storage_unavailable"
    http_status = 503
    retry_after = 10


class ServiceBusyError(BatchOcrError):
    kind = "busy"
    http_status = 503


class QueueFullError(BatchOcrError):
    """Admission control refused a job (``shared.backlog``): nothing was stored. ``retry_after``:
    whole seconds until the backlog has likely drained below the bound (the drain rate's guess)."""

    kind = "queue_full"
    http_status = 429

    def __init__(self, message: str, *, retry_after: int, bound: str) -> None:
        super().__init__(message)
        self.retry_after = retry_after
        self.bound = bound


class NotReplicatedError(BatchOcrError):
    """OCR_SUBMIT_REPLICAS: the job was queued on the master, but fewer replicas than asked for
    confirmed it in time, so a failover now could lose it. It may still run."""

    kind = "not_replicated"
    http_status = 503


class JobTimeoutError(BatchOcrError):
    kind = "timeout"
    http_status = 504


class ModelError(BatchOcrError):
    kind = "model"


def is_input_fault(exc: BaseException) -> bool:
    """Whether a failure is an expected outcome of what a client sent (a bad or missing image
    or option), not a fault of ours: such failures are logged in one line, never with a
    traceback."""
    return isinstance(exc, (InputError, ImageNotFoundError))
