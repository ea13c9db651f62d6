"""HTTP routes: submit a job, read its status and result, health."""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any

from flask import Blueprint, current_app, g, jsonify, request, url_for
from werkzeug.exceptions import RequestEntityTooLarge

from api.security import authenticate
from shared import callbacks, canary, job_collections, job_control, job_views, jobs, query_values
from shared.errors import (
    BadBase64Error,
    BadJsonError,
    BadOptionError,
    MissingImageError,
)
from shared.images import check_media_type
from shared.payload import JobOptions
from shared.redis_memory import RedisMemory, check_no_eviction
from shared.s3 import S3Uri

bp = Blueprint("v1", __name__)
bp.before_request(authenticate)

# Fields of a submission that carry the image, not job options.
IMAGE_FIELDS = ("image_base64", "image_uri")


def _settings():
    return current_app.extensions["batchocr.settings"]


def _redis():
    return current_app.extensions["batchocr.redis"]


def _objects():
    return current_app.extensions["batchocr.objects"]


def _read_submission() -> tuple[bytes | S3Uri, dict[str, Any]]:
    """The image (bytes from multipart ``file`` or JSON ``image_base64``, or an ``image_uri``)
    and the remaining fields."""
    if request.is_json:
        body = json_object()
    else:
        body = dict(request.form.items())
    if body.get("image_uri"):
        return S3Uri.parse(body.pop("image_uri")), body
    if request.is_json:
        return decode_base64(body.pop("image_base64", None)), body
    upload = request.files.get("file")
    if upload is None:
        raise MissingImageError("send an image as multipart field 'file', JSON 'image_base64' or 'image_uri'")
    data = upload.read()
    if not data:
        raise MissingImageError("the uploaded file is empty")
    return data, body


def json_object(*, empty_ok: bool = False) -> dict[str, Any]:
    """The request body parsed as a JSON object, or a BadJsonError that says what is wrong
    with it (empty, where the syntax breaks, not UTF-8, not an object); ``empty_ok``: no body
    at all reads as ``{}`` (an endpoint whose fields are all optional)."""
    data = request.get_data(cache=True)
    if request.content_length is None and request.max_content_length and len(data) >= request.max_content_length:
        raise RequestEntityTooLarge()  # a chunked body is cut at the limit, not refused, by werkzeug's reader
    if empty_ok and not data.strip():
        return {}
    if not data.strip():
        raise BadJsonError('the request body is empty: send a JSON object such as {"image_base64": "..."}')
    try:
        body = json.loads(data)
    except json.JSONDecodeError as exc:
        raise BadJsonError(f"the body is not valid JSON at line {exc.lineno} column {exc.colno}: {exc.msg}") from None
    except UnicodeDecodeError:
        raise BadJsonError("the body is not valid JSON: it is not UTF-8 text") from None
    except RecursionError:
        raise BadJsonError("the body is not valid JSON: it is nested too deeply") from None
    except ValueError as exc:  # a number past Python's digit limit for int()
        raise BadJsonError(f"the body holds a number that cannot be read: {str(exc)[:120]}") from None
    if not isinstance(body, dict):
        raise BadJsonError(f"the JSON body must be an object, not {_json_type(body)}")
    _check_text(body)
    return body


def _check_text(body: dict[str, Any]) -> None:
    """Every string of ``body`` (keys too) is text: JSON's ``\\ud800`` escapes can spell a lone
    UTF-16 surrogate, which no UTF-8 store (Redis, a callback URL, a result) can hold."""
    pending: list[Any] = [body]
    while pending:
        value = pending.pop()
        if isinstance(value, dict):
            pending.extend(value.keys())
            pending.extend(value.values())
        elif isinstance(value, list):
            pending.extend(value)
        elif isinstance(value, str) and not value.isascii():
            try:
                value.encode("utf-8")
            except UnicodeEncodeError:
                raise BadJsonError("the body holds a lone UTF-16 surrogate escape (\\ud800-\\udfff), "
                                   "which is not a character") from None


def _json_type(value: object) -> str:
    names = {list: "an array", str: "a string", bool: "a boolean", int: "a number", float: "a number"}
    return names.get(type(value), "null")


def decode_base64(encoded: object) -> bytes:
    """The image of a JSON ``image_base64``: plain base64, or a ``data:`` URL (what browsers
    and many clients send), whose declared media type must match the image's magic bytes."""
    if not encoded:
        raise MissingImageError("send an image as multipart field 'file', JSON 'image_base64' or 'image_uri'")
    if not isinstance(encoded, str):
        raise BadBase64Error("image_base64 must be a string")
    media_type = ""
    if encoded[:5].lower() == "data:":
        media_type, encoded = _split_data_url(encoded)
    try:
        data = base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError):
        raise BadBase64Error("image_base64 is not valid base64") from None
    if not data:
        raise MissingImageError("image_base64 holds no data (a data URL with nothing after its comma?)")
    if media_type:
        check_media_type(media_type, data)
    return data


def _split_data_url(url: str) -> tuple[str, str]:
    """``data:[<media type>][;param=value]*;base64,<data>`` -> (lower-cased media type, data).
    A URL that names no media type ("data:;base64,...") leaves the check to the magic bytes."""
    header, comma, payload = url.partition(",")
    if not comma:
        raise BadBase64Error("image_base64 is a data URL without the comma that starts its data")
    params = header[5:].split(";")
    if len(params) < 2 or params[-1].strip().lower() != "base64":
        raise BadBase64Error("image_base64 is a data URL that is not base64-encoded (no ';base64,')")
    return params[0].strip().lower(), payload


def _flag(value: object) -> bool:
    return value is True or str(value).lower() in ("1", "true", "yes", "on")


@bp.post("/v1/jobs")
def submit_job():
    """Enqueue a job. With a ``job_id`` (a UUID) submitting is idempotent: an existing job with
    that id is answered with 200 and its status instead of being enqueued again."""
    image, fields = _read_submission()
    header = request.headers.get("X-Model-Version", "").strip()
    if header:
        if fields.get("model") and fields["model"] != header:
            raise BadOptionError("X-Model-Version and the model option disagree")
        fields["model"] = header
    job_id = fields.pop("job_id", None) or None
    retry_failed = _flag(fields.pop("retry_failed", False))
    callback_url = str(fields.pop("callback_url", "") or "").strip()
    collection = str(fields.pop("collection", "") or "").strip()
    for name in IMAGE_FIELDS:
        fields.pop(name, None)
    if collection:  # its options are the defaults; another key's collection is not found
        fields = job_collections.job_defaults(job_collections.fetch(_redis(), collection, g.owner)) | fields
    options = JobOptions.parse(fields, _settings())
    submission = jobs.submit(_redis(), _settings(), image, options, job_id=job_id, retry_failed=retry_failed,
                             owner=g.owner, objects=_objects(), callback_url=callback_url, collection=collection)
    job = submission.job
    links = {"self": url_for("v1.get_job", job_id=job.id)}
    if not submission.created:
        status = job.get_status(refresh=True)
        body = {"id": job.id, "status": status.value if status else "unknown", "created": False, "links": links}
        return jsonify(body), 200, {"Location": links["self"]}
    return jsonify({"id": job.id, "status": "queued", "created": True, "links": links}), 202, {"Location": links["self"]}


@bp.get("/v1/jobs/<job_id>")
def get_job(job_id: str):
    """A job's status and result. ``?result=url`` answers a result kept in S3 with a presigned
    ``result_url`` instead of the document itself (for large results). ``?wait=N`` (seconds,
    at most 30) answers as soon as the job has ended or N seconds have passed
    (``shared.job_control``); past this process's waiting slots it answers at once."""
    form = request.args.get("result", "inline")
    if form not in ("inline", "url"):
        raise BadOptionError("result must be 'inline' or 'url'")
    wait = query_values.seconds(request.args.get("wait", ""), "wait", job_control.MAX_WAIT_S)
    job = jobs.fetch(_redis(), job_id, owner=g.owner)
    slots = current_app.extensions["batchocr.wait_slots"]
    if wait and slots.acquire(blocking=False):
        try:
            job_control.wait_until_done(_redis(), job, wait)
        finally:
            slots.release()
        job = jobs.fetch(_redis(), job_id, owner=g.owner)  # read again whole: the wait refreshed only its status
    view = job_views.describe(job, _objects(), inline=form == "inline")
    view["links"] = {"self": url_for("v1.get_job", job_id=job_id)}
    return jsonify(view)


@bp.delete("/v1/jobs/<job_id>")
def cancel_job(job_id: str):
    """Cancel a queued job: ``canceled`` true, or false with its status and why (a running job
    finishes; an ended one stays as it ended)."""
    job = jobs.fetch(_redis(), job_id, owner=g.owner)
    answer = job_control.cancel(_redis(), job, jobs.queue_of(_redis(), job), _objects())
    answer["links"] = {"self": url_for("v1.get_job", job_id=job_id)}
    return jsonify(answer)


@bp.get("/v1/callbacks/secret")
def callback_secret():
    """This key's secret for checking callback signatures (``shared.callbacks``)."""
    if not _settings().callback_secret:
        raise BadOptionError("callbacks are not enabled on this deployment (OCR_CALLBACK_SECRET is not set)")
    return jsonify({"secret": callbacks.key_secret(_settings(), g.owner), "header": "X-BatchOCR-Signature",
                    "scheme": "t=<unix seconds>,v1=<hex HMAC-SHA256 of '<t>.' + body>"})


@bp.get("/v1/callbacks/dead")
def dead_callbacks():
    """This key's callbacks that ran out of tries, newest first (``?limit=``, at most 1000)."""
    limit = query_values.whole_number(request.args.get("limit", "100"), "limit", 1, callbacks.DEAD_LETTERS_KEPT)
    return jsonify({"dead": callbacks.dead_letters(_redis(), g.owner, limit)})


@bp.get("/v1/models")
def list_models():
    """The registered model versions, whether each is installed here, and the canary split."""
    return jsonify(canary.describe(_redis(), _settings()))


@bp.get("/healthz")
def healthz():
    """ok while Redis answers and may not evict keys (``shared.redis_memory``); 503 otherwise."""
    check_no_eviction(RedisMemory.read(_redis()), _settings(), "batchocr")
    return jsonify({"status": "ok"})
