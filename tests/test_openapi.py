"""The OpenAPI 3.1 document (api/openapi.json, served at /v1/openapi.json): valid, and unable to
drift from the code: every route the app serves, every job option, every result field and every
error kind the code can answer or fail a job with is in it."""

from __future__ import annotations

import re
from dataclasses import fields

from openapi_spec_validator import validate

from shared import errors
from shared.document import Line, ResultDocument, Word
from shared.payload import OPTION_NAMES
from tests.helpers import ROOT


def spec(client) -> dict:
    response = client.get("/v1/openapi.json")
    assert response.status_code == 200
    return response.get_json()


def test_the_document_is_valid_openapi_3_1_with_the_installed_version(client):
    document = spec(client)
    validate(document)
    assert document["openapi"].startswith("3.1") and document["info"]["version"] not in ("", "unknown")


def test_every_route_of_the_app_is_described(app, client):
    paths = spec(client)["paths"]
    for rule in app.url_map.iter_rules():
        if rule.endpoint == "static":
            continue
        path = re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", rule.rule)
        assert path in paths, f"{rule.rule} is not in api/openapi.json"
        for method in rule.methods - {"HEAD", "OPTIONS"}:
            assert method.lower() in paths[path], f"{method} {rule.rule} is not in api/openapi.json"


def test_every_option_and_result_field_is_described(client):
    schemas = spec(client)["components"]["schemas"]
    assert set(OPTION_NAMES) <= set(schemas["JobOptions"]["properties"])
    assert {f.name for f in fields(ResultDocument)} <= set(schemas["Result"]["properties"])
    assert {f.name for f in fields(Line)} <= set(schemas["Line"]["properties"])
    assert {f.name for f in fields(Word)} <= set(schemas["Word"]["properties"])


def _subclasses(cls):
    for sub in cls.__subclasses__():
        yield sub
        yield from _subclasses(sub)


def test_every_error_kind_in_the_code_is_described(client):
    described = set(spec(client)["components"]["schemas"]["ErrorKind"]["enum"])
    kinds = {errors.BatchOcrError.kind} | {cls.kind for cls in _subclasses(errors.BatchOcrError)}
    literal = re.compile(r'(?:"kind": |_body\()"(\w+)"')  # kinds written out in the API and worker
    for package in ("api", "worker", "shared"):
        for path in (ROOT / package).rglob("*.py"):
            kinds |= set(literal.findall(path.read_text("utf-8")))
    assert kinds <= described, sorted(kinds - described)


def test_the_docs_page_and_its_assets_are_served_from_here(client):
    page = client.get("/v1/docs")
    assert page.status_code == 200 and page.mimetype == "text/html"
    html = page.get_data(as_text=True)
    assert "http" not in html, "nothing is loaded from elsewhere"
    for asset in re.findall(r'(?:src|href)="(docs/[^"]+)"', html):
        answer = client.get(f"/v1/{asset}")
        assert answer.status_code == 200 and len(answer.get_data()) > 50, asset
    assert 'url: "openapi.json"' in client.get("/v1/docs/docs.js").get_data(as_text=True)
    assert client.get("/v1/docs/index.html").status_code == 404, "only the page's own assets"
    assert client.get("/v1/docs/..%2Fopenapi.json").status_code == 404
