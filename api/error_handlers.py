"""One place that maps errors to JSON HTTP responses: ``{"error": {"kind", "message"}}``."""

from __future__ import annotations

import logging

import redis
from flask import Flask, jsonify
from werkzeug.exceptions import HTTPException

from shared.errors import BatchOcrError, QueueFullError, StorageUnavailableError

logger = logging.getLogger(__name__)


def _body(kind: str, message: str, status: int):
    return jsonify({"error": {"kind": kind, "message": message}}), status


def register_error_handlers(app: Flask) -> None:
    @app.errorhandler(BatchOcrError)
    def batchocr_error(exc: BatchOcrError):
        body, status = _body(exc.kind, exc.message, exc.http_status)
        if isinstance(exc, (QueueFullError, StorageUnavailableError)):
            return body, status, {"Retry-After": str(exc.retry_after)}
        return body, status

    @app.errorhandler(redis.exceptions.OutOfMemoryError)
    def redis_full(exc: Exception):
        logger.error("redis out of memory: %s", exc)
        return _body("redis_full", "the job store (Redis) is out of memory (its maxmemory is reached, by this "
                     "deployment or another user of the same Redis); nothing was queued; retry later", 503) \
            + ({"Retry-After": "30"},)

    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException):
        if exc.code == 413:
            return _body("image_too_large", "the request body is larger than the image size limit allows", 413)
        kind = (exc.name or "error").lower().replace(" ", "_")
        return _body(kind, exc.description or exc.name, exc.code or 500)

    @app.errorhandler(redis.exceptions.RedisError)
    def redis_down(exc: Exception):
        logger.error("redis unavailable: %s", exc)
        return _body("unavailable", f"the job store (Redis) is unavailable ({type(exc).__name__}); retry later", 503)
