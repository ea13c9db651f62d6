"""HTTP routes: submit a job, read its status and result, health."""

from __future__ import annotations

import base64
import binascii

from flask import Blueprint, current_app, jsonify, request, url_for

from shared import jobs
from shared.errors import BadBase64Error, BadOptionError, MissingImageError

bp = Blueprint("v1", __name__)


def _settings():
    return current_app.extensions["batchocr.settings"]


def _redis():
    return current_app.extensions["batchocr.redis"]


def _read_upload() -> tuple[bytes, dict]:
    """Image bytes and raw options from a multipart ``file`` or a JSON ``image_base64``."""
    if request.is_json:
        body = request.get_json(silent=True)
        if not isinstance(body, dict):
            raise BadOptionError("the JSON body must be an object")
        encoded = body.pop("image_base64", None)
        if not encoded:
            raise MissingImageError("send an image as multipart field 'file' or JSON 'image_base64'")
        if not isinstance(encoded, str):
            raise BadBase64Error("image_base64 must be a string")
        try:
            data = base64.b64decode(encoded, validate=True)
        except (binascii.Error, ValueError):
            raise BadBase64Error("image_base64 is not valid base64") from None
        return data, body
    upload = request.files.get("file")
    if upload is None:
        raise MissingImageError("send an image as multipart field 'file' or JSON 'image_base64'")
    data = upload.read()
    if not data:
        raise MissingImageError("the uploaded file is empty")
    return data, {k: v for k, v in request.form.items()}


@bp.post("/v1/jobs")
def submit_job():
    data, raw_options = _read_upload()
    options = jobs.JobOptions.parse(raw_options, _settings())
    job = jobs.submit(_redis(), _settings(), data, options)
    links = {"self": url_for("v1.get_job", job_id=job.id)}
    return jsonify({"id": job.id, "status": "queued", "links": links}), 202, {"Location": links["self"]}


@bp.get("/v1/jobs/<job_id>")
def get_job(job_id: str):
    view = jobs.describe(jobs.fetch(_redis(), job_id))
    view["links"] = {"self": url_for("v1.get_job", job_id=job_id)}
    return jsonify(view)


@bp.get("/healthz")
def healthz():
    _redis().ping()
    return jsonify({"status": "ok"})
