"""API keys and per-key rate limits for the ``/v1`` routes.

Authentication: ``Authorization: Bearer <key>`` or ``X-API-Key: <key>``, checked against the
configured keys (``shared.auth``); the key's id becomes ``g.owner``, which scopes jobs. Rate
limits: flask-limiter with its counters in the same Redis, keyed by key id (client address when
the API is open), answered with 429, a reason and ``Retry-After``.
"""

from __future__ import annotations

import logging

from flask import Flask, current_app, g, request
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address

from shared import auth
from shared.errors import UnauthorizedError
from shared.redis_connection import limiter_storage_uri
from shared.settings import Settings

logger = logging.getLogger(__name__)


def _presented_key() -> str | None:
    header = request.headers.get("Authorization", "")
    if header.lower().startswith("bearer "):
        return header[7:].strip()
    return request.headers.get("X-API-Key")


def authenticate() -> None:
    """Set ``g.owner`` to the caller's key id; 401 without a valid key (when keys are set)."""
    keys = current_app.extensions["batchocr.keys"]
    if not keys or request.endpoint == "v1.healthz":  # health checks carry no key
        g.owner = ""
        return
    presented = _presented_key()
    owner = auth.identify(presented, keys)
    if owner is None:
        reason = "a wrong API key" if presented else "no API key (send Authorization: Bearer <key>)"
        raise UnauthorizedError(f"unauthorized: {reason}")
    g.owner = owner


def _rate_key() -> str:
    return getattr(g, "owner", "") or get_remote_address()


def install(app: Flask, settings: Settings) -> None:
    """Keys from settings (ConfigError if unreadable) and limits on the ``/v1`` views.
    ``authenticate`` itself runs before every ``/v1`` request (registered by ``api.routes``)."""
    keys = auth.load_keys(settings)
    app.extensions["batchocr.keys"] = keys
    if not keys:
        logger.warning("no API keys configured (OCR_API_KEYS / OCR_API_KEYS_FILE): the API is open to anyone")
    limiter = Limiter(key_func=_rate_key, app=app, storage_uri=limiter_storage_uri(settings), headers_enabled=True,
                      swallow_errors=True, storage_options={"socket_connect_timeout": 2, "socket_timeout": 5})
    app.extensions["batchocr.limiter"] = limiter
    for endpoint, limit in (("v1.submit_job", settings.rate_limit_submit), ("compat.ocr_sync", settings.rate_limit_submit),
                            ("v1.get_job", settings.rate_limit_read)):
        if limit:
            app.view_functions[endpoint] = limiter.limit(limit)(app.view_functions[endpoint])
