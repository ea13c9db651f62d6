"""S3 access for inputs (``s3://bucket/key`` images) and results, through boto3.

Works with AWS and any S3-protocol server (MinIO, moto) via ``OCR_S3_ENDPOINT_URL``. Credentials
come from settings when set, else from boto3's standard chain (environment, profile, instance
role); they are never logged. Reads are allowed only from buckets on ``OCR_S3_INPUT_BUCKETS``:
a job can never make a worker fetch an arbitrary object, let alone an arbitrary URL.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from shared.errors import (
    BadOptionError,
    ForbiddenBucketError,
    ImageNotFoundError,
    ImageTooLargeError,
    StorageError,
    StorageUnavailableError,
)
from shared.settings import Settings

SCHEME = "s3://"
# Error codes S3 (and MinIO, moto) answer when it is overloaded or briefly failing, not refusing.
THROTTLED = frozenset({"SlowDown", "Throttling", "ThrottlingException", "RequestTimeout", "RequestLimitExceeded",
                       "TooManyRequests", "ServiceUnavailable", "InternalError", "503 SlowDown"})


def storage_error(action: str, uri: object, exc: Exception) -> StorageError:
    """The error for a failed S3 call: StorageUnavailableError when S3 did not answer, timed out
    or answered a server error or throttling (botocore had already retried), so that callers can
    wait it out; StorageError (the request was refused: credentials, permissions) otherwise."""
    from botocore.exceptions import ClientError, ConnectionError, HTTPClientError, IncompleteReadError

    if isinstance(exc, ClientError):
        code = str(exc.response.get("Error", {}).get("Code", ""))
        status = int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0)
        if status >= 500 or status == 429 or code in THROTTLED:
            return StorageUnavailableError(f"S3 is unavailable: could not {action} {uri}: {code or status}")
        return StorageError(f"could not {action} {uri}: {code or exc}")
    if isinstance(exc, (ConnectionError, HTTPClientError, IncompleteReadError)):
        return StorageUnavailableError(f"S3 is unreachable: could not {action} {uri}: {type(exc).__name__}")
    return StorageError(f"could not {action} {uri}: {type(exc).__name__}")


@dataclass(frozen=True)
class S3Uri:
    bucket: str
    key: str

    @classmethod
    def parse(cls, uri: str) -> S3Uri:
        """``s3://bucket/key`` -> S3Uri; anything else is a BadOptionError."""
        if not isinstance(uri, str) or not uri.startswith(SCHEME):
            raise BadOptionError(f"image_uri must look like s3://bucket/key; got {str(uri)[:200]!r}")
        bucket, _, key = uri[len(SCHEME):].partition("/")
        if not bucket or not key:
            raise BadOptionError(f"image_uri must name a bucket and a key; got {uri[:200]!r}")
        return cls(bucket, key)

    def __str__(self) -> str:
        return f"{SCHEME}{self.bucket}/{self.key}"


def check_input_allowed(settings: Settings, uri: S3Uri) -> None:
    """Raise ForbiddenBucketError unless the bucket is on the input allowlist, and the key is
    not under batchocr's own uploads or results (another key's image or result)."""
    if uri.bucket not in settings.input_buckets:
        raise ForbiddenBucketError(
            f"bucket {uri.bucket!r} is not on the input allowlist (OCR_S3_INPUT_BUCKETS)")
    own = [prefix for prefix in (settings.s3_image_prefix, settings.s3_prefix) if prefix]
    if uri.bucket == settings.s3_bucket and any(uri.key.startswith(prefix) for prefix in own):
        raise ForbiddenBucketError(f"{uri} is in batchocr's own storage (uploads or results), not an input")


def image_object_uri(settings: Settings, job_id: str, owner: str = "") -> S3Uri:
    """Where the API stores job ``job_id``'s upload with ``OCR_IMAGE_STORE=s3`` (under its
    owner's key id, as ``keys.image_key``)."""
    return S3Uri(settings.s3_bucket, f"{settings.s3_image_prefix}{owner + '/' if owner else ''}{job_id}")


def check_image_object(settings: Settings, uri: S3Uri) -> None:
    """Raise ForbiddenBucketError unless ``uri`` lies under the deployment's image prefix: a job
    enqueued past the API cannot make a worker read, or delete, any other object."""
    prefix = image_object_uri(settings, "")
    if uri.bucket != prefix.bucket or not uri.key.startswith(prefix.key) or uri.key == prefix.key:
        raise ForbiddenBucketError(f"{uri} is not under this deployment's image store ({prefix})")


class ObjectStore:
    """A lazily built boto3 S3 client with the few operations batchocr needs.

    Build one per process (boto3 clients are thread-safe) and pass it along. ``patient``
    (workers, the producer): 4 attempts, 30 s reads; otherwise (the API, a client waiting on the
    answer) 2 attempts, 5 s reads, so a stalled S3 is a 502 in about 16 s, not 150 s.
    """

    def __init__(self, settings: Settings, *, patient: bool = True) -> None:
        self.settings = settings
        self.patient = patient
        self._client: Any = None

    @property
    def client(self) -> Any:
        if self._client is None:
            import boto3  # imported here: processes that never touch S3 skip its start-up cost
            from botocore.config import Config

            s = self.settings
            kwargs: dict[str, Any] = {
                "endpoint_url": s.s3_endpoint_url or None,
                "region_name": s.s3_region or None,
                "config": Config(retries={"max_attempts": 4 if self.patient else 2, "mode": "standard"},
                                 connect_timeout=5 if self.patient else 3, read_timeout=30 if self.patient else 5),
            }
            if s.s3_access_key_id:
                kwargs["aws_access_key_id"] = s.s3_access_key_id
                kwargs["aws_secret_access_key"] = s.s3_secret_access_key
            self._client = boto3.client("s3", **kwargs)
        return self._client

    def read(self, uri: S3Uri, max_bytes: int) -> bytes:
        """The object's bytes; refuses objects over ``max_bytes`` before downloading them."""
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            response = self.client.get_object(Bucket=uri.bucket, Key=uri.key)
            size = int(response.get("ContentLength") or 0)
            if size > max_bytes:
                response["Body"].close()
                raise ImageTooLargeError(f"{uri} is {size} bytes; the limit is {max_bytes}")
            data = response["Body"].read(max_bytes + 1)
            if len(data) > max_bytes:
                raise ImageTooLargeError(f"{uri} is over the limit of {max_bytes} bytes")
            return data
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code", "")
            if code in ("NoSuchKey", "404", "NoSuchBucket"):
                raise ImageNotFoundError(f"{uri} does not exist") from None
            raise storage_error("read", uri, exc) from None
        except BotoCoreError as exc:
            raise storage_error("read", uri, exc) from None

    def write_json(self, uri: S3Uri, body: bytes) -> None:
        self.write(uri, body, "application/json")

    def write(self, uri: S3Uri, body: bytes, content_type: str = "application/octet-stream") -> None:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            self.client.put_object(Bucket=uri.bucket, Key=uri.key, Body=body, ContentType=content_type)
        except (BotoCoreError, ClientError) as exc:
            raise storage_error("write", uri, exc) from None

    def exists(self, uri: S3Uri) -> bool:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            self.client.head_object(Bucket=uri.bucket, Key=uri.key)
            return True
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code", "") in ("404", "NoSuchKey", "NotFound"):
                return False
            raise storage_error("look up", uri, exc) from None
        except BotoCoreError as exc:
            raise storage_error("look up", uri, exc) from None

    def delete(self, uri: S3Uri) -> None:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            self.client.delete_object(Bucket=uri.bucket, Key=uri.key)
        except (BotoCoreError, ClientError) as exc:
            raise storage_error("delete", uri, exc) from None

    def presign(self, uri: S3Uri) -> str:
        return self.client.generate_presigned_url(
            "get_object", Params={"Bucket": uri.bucket, "Key": uri.key}, ExpiresIn=self.settings.s3_presign_ttl_s)

    def list(self, prefix_uri: S3Uri | str) -> Iterator[tuple[S3Uri, str]]:
        """(uri, etag) of every object under an ``s3://bucket/prefix`` (prefix may be empty)."""
        text = str(prefix_uri)
        bucket, _, prefix = text[len(SCHEME):].partition("/")
        paginator = self.client.get_paginator("list_objects_v2")
        for page in paginator.paginate(Bucket=bucket, Prefix=prefix):
            for item in page.get("Contents", []):
                yield S3Uri(bucket, item["Key"]), item.get("ETag", "").strip('"')
