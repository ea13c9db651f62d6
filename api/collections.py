"""HTTP routes of collections (``shared.job_collections``): create one, read its counts and
progress, list it and its jobs, cancel it. Jobs join one with ``collection`` on ``POST /v1/jobs``."""

from __future__ import annotations

from flask import Blueprint, current_app, g, jsonify, request

from api.routes import json_object
from api.security import authenticate
from shared import collection_views, job_collections
from shared.errors import BadOptionError
from shared.payload import JobOptions

bp = Blueprint("collections", __name__)
bp.before_request(authenticate)

FIELDS = ("id", "name", "options", "callback_url")


def _redis():
    return current_app.extensions["batchocr.redis"]


def _found(collection_id: str) -> dict[str, str]:
    return job_collections.fetch(_redis(), collection_id, g.owner)


@bp.post("/v1/collections")
def create_collection():
    """A new collection (201), or with the ``id`` of an existing one of this key, that one
    (200): a re-run finds its collection. ``options`` are the defaults of its jobs."""
    body = json_object(empty_ok=True)
    unknown = set(body) - set(FIELDS)
    if unknown:
        raise BadOptionError(f"unknown field(s): {', '.join(sorted(unknown))}")
    options = body.get("options") or {}
    if not isinstance(options, dict):
        raise BadOptionError("options must be an object of job options")
    options = {k: str(v) for k, v in options.items() if v not in (None, "")}  # as stored, and as each join reads them
    JobOptions.parse(options, current_app.extensions["batchocr.settings"])  # checked now, not at each join
    callback_url = body.get("callback_url") or ""
    if not isinstance(callback_url, str):
        raise BadOptionError("callback_url must be a string")
    found, created = job_collections.create(
        _redis(), current_app.extensions["batchocr.settings"], owner=g.owner, name=body.get("name") or "",
        options=options, callback_url=callback_url.strip(),
        collection_id=body.get("id") or None)
    view = collection_views.describe(found)
    return jsonify(view | {"created": created}), 201 if created else 200, {"Location": view["links"]["self"]}


@bp.get("/v1/collections")
def list_collections():
    """This key's collections, newest first (``offset``, ``limit``)."""
    offset, limit = collection_views.paging(request.args)
    return jsonify(collection_views.owned(_redis(), g.owner, offset, limit))


@bp.get("/v1/collections/<collection_id>")
def get_collection(collection_id: str):
    return jsonify(collection_views.describe(_found(collection_id)))


@bp.get("/v1/collections/<collection_id>/jobs")
def collection_jobs(collection_id: str):
    """Its jobs in the order they joined, with their statuses (``offset``, ``limit``)."""
    offset, limit = collection_views.paging(request.args)
    return jsonify(collection_views.jobs_page(_redis(), _found(collection_id), offset, limit))


@bp.delete("/v1/collections/<collection_id>")
def cancel_collection(collection_id: str):
    """Cancel it: no job joins it any more, its queued jobs are cancelled as workers reach them,
    its running ones finish."""
    found = _found(collection_id)
    return jsonify(collection_views.cancel_reply(_redis(), found, job_collections.cancel(_redis(), found)))
