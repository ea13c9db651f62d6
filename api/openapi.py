"""``GET /v1/openapi.json``: the API described (OpenAPI 3.1), from ``api/openapi.json``.

The document is written by hand and held to the code by ``tests/test_openapi.py`` (it
validates, and every route, option, result field and error kind of the code appears in it);
``info.version`` is filled with the installed batchocr version when served.
"""

from __future__ import annotations

import functools
import importlib.metadata
import json
from pathlib import Path

from flask import Blueprint, jsonify

DOCUMENT = Path(__file__).with_name("openapi.json")

bp = Blueprint("openapi", __name__)


@functools.cache
def document() -> dict:
    """The OpenAPI document, its version set to the installed package's."""
    spec = json.loads(DOCUMENT.read_text("utf-8"))
    try:
        spec["info"]["version"] = importlib.metadata.version("batchocr")
    except importlib.metadata.PackageNotFoundError:
        spec["info"]["version"] = "unknown"
    return spec


@bp.get("/v1/openapi.json")
def openapi():
    return jsonify(document())
