"""The Web UI at ``/``: a static page (``api/static``, plain HTML/JS, no build step) that uses
the public API from the browser, with the API key the user types (kept in sessionStorage).
Its icon (``static/favicon.svg``) is also served at ``/favicon.ico``, where browsers and
tools look for one whatever the page links, so that request is never a 404."""

from __future__ import annotations

from flask import Blueprint, send_from_directory

bp = Blueprint("ui", __name__, static_folder="static", static_url_path="/static")


@bp.get("/")
def index():
    return send_from_directory(bp.static_folder, "index.html")


@bp.get("/favicon.ico")
def favicon():
    return send_from_directory(bp.static_folder, "favicon.svg", mimetype="image/svg+xml", max_age=86400)
