"""``GET /v1/openapi.json``: the API described (OpenAPI 3.1), from ``api/openapi.json``; ``GET
/v1/docs``: that document rendered by Swagger UI 5, its assets served from the ``swagger-ui-py``
wheel's static folder (offline: nothing is fetched from elsewhere; its Python code is not used).

The document is written by hand and held to the code by ``tests/test_openapi.py`` (it
validates, and every route, option, result field and error kind of the code appears in it);
``info.version`` is filled with the installed batchocr version when served.
"""

from __future__ import annotations

import functools
import importlib.metadata
import importlib.util
import json
from pathlib import Path

from flask import Blueprint, abort, jsonify, send_from_directory

DOCUMENT = Path(__file__).with_name("openapi.json")
STATIC = Path(__file__).with_name("static")
# What the docs page loads from Swagger UI's bundle; anything else there is not served.
SWAGGER_ASSETS = frozenset({"swagger-ui.css", "swagger-ui-bundle.js", "favicon-32x32.png"})

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


@bp.get("/v1/docs")
def docs():
    return send_from_directory(STATIC, "docs.html")


@bp.get("/v1/docs/<name>")
def docs_asset(name: str):
    """Swagger UI's assets, and the page's own start-up script (``docs.js``)."""
    if name == "docs.js":
        return send_from_directory(STATIC, name, max_age=3600)
    if name not in SWAGGER_ASSETS:
        abort(404)
    return send_from_directory(swagger_assets(), name, max_age=86400)


@functools.cache
def swagger_assets() -> Path:
    """Swagger UI's static folder in the ``swagger-ui-py`` wheel, found without importing it."""
    spec = importlib.util.find_spec("swagger_ui")
    if spec is None or not spec.submodule_search_locations:
        abort(404)
    return Path(next(iter(spec.submodule_search_locations))) / "static"
