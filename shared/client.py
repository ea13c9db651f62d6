"""A small HTTP client for the batchocr API (standard library only)."""

from __future__ import annotations

import base64
import json
import time
import urllib.error
import urllib.request
from typing import Any

from shared.errors import BatchOcrError
from shared.jobs import TERMINAL


class ApiError(BatchOcrError):
    """The API answered with an error (``status`` is the HTTP status; 0 = no answer at all)."""

    def __init__(self, message: str, *, status: int, kind: str = "api", retry_after: float = 0.0) -> None:
        super().__init__(message)
        self.status = status
        self.kind = kind
        self.retry_after = retry_after

    @property
    def retryable(self) -> bool:
        return self.status == 0 or self.status == 429 or self.status >= 500


class ApiClient:
    """Submit images to ``base_url`` and poll their jobs."""

    def __init__(self, base_url: str, timeout: float = 30.0, api_key: str | None = None) -> None:
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        self.headers = {"Content-Type": "application/json"}
        if api_key:
            self.headers["Authorization"] = f"Bearer {api_key}"

    def submit(self, image: bytes | None = None, *, image_uri: str | None = None, **fields: Any) -> dict[str, Any]:
        """POST a job: image bytes (sent as base64) or an ``image_uri``, plus options and
        optionally ``job_id`` / ``retry_failed``. Returns the API's answer (``created`` tells
        whether a new job was enqueued)."""
        body: dict[str, Any] = {k: v for k, v in fields.items() if v not in (None, "")}
        if image_uri:
            body["image_uri"] = image_uri
        else:
            body["image_base64"] = base64.b64encode(image or b"").decode("ascii")
        return self._request("POST", "/v1/jobs", body)

    def create_collection(self, collection_id: str | None = None, **fields: Any) -> dict[str, Any]:
        """POST a collection (``name``, ``options``, ``callback_url``); with ``collection_id``,
        the existing one of that id is answered instead (``created`` false)."""
        body = {k: v for k, v in fields.items() if v not in (None, "")} | ({"id": collection_id} if collection_id else {})
        return self._request("POST", "/v1/collections", body)

    def collection(self, collection_id: str) -> dict[str, Any]:
        """The collection's counts by status, progress and times."""
        return self._request("GET", f"/v1/collections/{collection_id}")

    def get(self, job_id: str, wait: float = 0) -> dict[str, Any]:
        """The job's view; with ``wait`` (s, at most 30), once it has ended or ``wait`` passed."""
        return self._request("GET", f"/v1/jobs/{job_id}" + (f"?wait={wait:g}" if wait else ""))

    def wait(self, job_id: str, timeout: float = 120.0, interval: float = 0.1) -> dict[str, Any]:
        """Poll until the job is finished or failed; raises TimeoutError after ``timeout`` s."""
        deadline = time.monotonic() + timeout
        while True:
            view = self.get(job_id)
            if view["status"] in TERMINAL:
                return view
            if time.monotonic() > deadline:
                raise TimeoutError(f"job {job_id} still {view['status']} after {timeout:.0f} s")
            time.sleep(interval)

    def _request(self, method: str, path: str, body: dict | None = None) -> dict[str, Any]:
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(self.base_url + path, data=data, method=method, headers=self.headers)
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                return json.load(response)
        except urllib.error.HTTPError as err:
            try:
                detail = json.loads(err.read() or b"{}").get("error", {})
            except ValueError:
                detail = {}
            raise ApiError(f"{method} {path}: HTTP {err.code} {detail.get('message', '')}".rstrip(),
                           status=err.code, kind=detail.get("kind", "api"),
                           retry_after=_seconds(err.headers.get("Retry-After"))) from None
        except (urllib.error.URLError, ConnectionError, TimeoutError) as err:
            raise ApiError(f"{method} {path}: no answer from {self.base_url} ({err})", status=0,
                           kind="unavailable") from None


def _seconds(header: str | None) -> float:
    """A Retry-After header's delay in seconds (the delta-seconds form batchocr sends); 0 if absent."""
    try:
        return max(0.0, float(header)) if header else 0.0
    except ValueError:
        return 0.0
