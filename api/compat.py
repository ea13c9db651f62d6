"""``POST /api/v1/ocr``: the synchronous endpoint the seed services offered, on top of the queue.

``{"image_base64": ...}`` (optionally ``mode``, ``lang``, ``model``, ``priority``: interactive
unless given) -> the job is enqueued like any other (so it batches with everything else), the request waits for it up to
``OCR_SYNC_TIMEOUT_S``, and answers ``{"status": "success", "text": [lines], "time_cost": s}``.
A failed job answers 422 with the reason; a job still running at the timeout answers 504 with
its id, so the client can poll ``GET /v1/jobs/<id>`` instead.
"""

from __future__ import annotations

import time

from flask import Blueprint, current_app, g, jsonify, request

from api.routes import decode_base64, json_object
from api.security import authenticate
from shared import job_views, jobs
from shared.document import ResultDocument
from shared.errors import BadJsonError, MissingImageError, ServiceBusyError
from shared.payload import JobOptions

bp = Blueprint("compat", __name__)
bp.before_request(authenticate)


@bp.post("/api/v1/ocr")
def ocr_sync():
    """Waiting requests hold server threads: at most half of them per process may wait (the
    rest keep serving polls and health checks); beyond that, 503."""
    slots = current_app.extensions["batchocr.sync_slots"]
    if not slots.acquire(blocking=False):
        raise ServiceBusyError("every synchronous slot of this API process is waiting on a job; retry, "
                               "or use POST /v1/jobs and poll")
    try:
        return _run_sync()
    finally:
        slots.release()


def _run_sync():
    started = time.perf_counter()
    settings = current_app.extensions["batchocr.settings"]
    connection = current_app.extensions["batchocr.redis"]
    if not request.is_json:
        raise BadJsonError(f"send a JSON body (Content-Type: application/json, not {request.mimetype or 'none'}): "
                           '{"image_base64": "..."}')
    body = json_object()
    if not body.get("image_base64"):
        raise MissingImageError('send the image as JSON {"image_base64": "..."} (this endpoint takes no uploads or URIs)')
    image = decode_base64(body.pop("image_base64"))
    options = JobOptions.parse(body, settings, priority="interactive")
    job = jobs.submit(connection, settings, image, options, owner=g.owner,
                      objects=current_app.extensions["batchocr.objects"]).job
    deadline = time.monotonic() + settings.sync_timeout_s
    while time.monotonic() < deadline and job.get_status(refresh=True).value not in jobs.TERMINAL:
        time.sleep(0.02)
    job = jobs.fetch(connection, job.id, owner=g.owner)  # read again whole: the loop refreshed only its status
    view = job_views.describe(job, current_app.extensions["batchocr.objects"])
    cost = round(time.perf_counter() - started, 3)
    if view["status"] == "finished":
        lines = [line.text for line in ResultDocument.from_json(view["result"]).lines]
        return jsonify({"status": "success", "text": lines, "time_cost": cost, "id": job.id})
    if view["status"] in jobs.TERMINAL:
        return jsonify({"status": "error", "error": view["error"], "time_cost": cost, "id": job.id}), 422
    return jsonify({"status": "timeout", "id": job.id, "time_cost": cost,
                    "error": {"kind": "timeout", "message": f"not done within {settings.sync_timeout_s} s; "
                              f"poll /v1/jobs/{job.id}"}}), 504
