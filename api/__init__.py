"""The batchocr HTTP API: a thin Flask app that validates uploads and enqueues rq jobs."""

from __future__ import annotations

import logging
import threading

from flask import Flask
from redis import Redis
from redis.exceptions import RedisError

from shared import models, redis_connection
from shared.redis_memory import RedisMemory, check_no_eviction
from shared.s3 import ObjectStore
from shared.settings import Settings

logger = logging.getLogger(__name__)


def create_app(settings: Settings | None = None, connection: Redis | None = None) -> Flask:
    """Build the app. ``settings`` default to ``Settings.from_env()``; Redis to its URL."""
    from api import collections, compat, openapi, queue_metrics, security, ui
    from api.error_handlers import register_error_handlers
    from api.routes import bp

    settings = settings or Settings.from_env()
    models.check_default(settings.default_model, settings.model_dir)
    app = Flask(__name__, static_folder=None)
    # base64 inflates by 4/3; leave room for the JSON or multipart envelope.
    app.config["MAX_CONTENT_LENGTH"] = settings.max_image_bytes * 4 // 3 + 64 * 1024
    app.extensions["batchocr.settings"] = settings
    app.extensions["batchocr.redis"] = connection or redis_connection.connect(
        settings, socket_connect_timeout=2, socket_timeout=5
    )
    _refuse_evicting_redis(app.extensions["batchocr.redis"], settings)
    app.extensions["batchocr.objects"] = ObjectStore(settings, patient=False)  # a client waits on its answer
    app.extensions["batchocr.sync_slots"] = threading.BoundedSemaphore(max(1, settings.api_threads // 2))
    app.extensions["batchocr.wait_slots"] = threading.BoundedSemaphore(max(1, settings.api_threads // 2))
    app.register_blueprint(bp)
    app.register_blueprint(queue_metrics.bp)
    app.register_blueprint(compat.bp)
    app.register_blueprint(collections.bp)
    app.register_blueprint(ui.bp)
    app.register_blueprint(openapi.bp)
    security.install(app, settings)
    register_error_handlers(app)
    return app


def _refuse_evicting_redis(connection: Redis, settings: Settings) -> None:
    """EvictingRedisError on a Redis that may evict keys; an unreachable one is checked again at
    every submission and health check instead (the API starts, and answers 503 meanwhile)."""
    try:
        memory = RedisMemory.read(connection)
    except RedisError as exc:
        logger.warning("Redis unreachable at start (%s): its maxmemory-policy is checked when it answers",
                       type(exc).__name__)
        return
    check_no_eviction(memory, settings, "batchocr-api")
