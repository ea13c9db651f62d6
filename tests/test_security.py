"""API keys, job ownership, rate limits, and secrets kept out of logs."""

from __future__ import annotations

import base64
import logging
import uuid

import pytest

from api import create_app
from shared.auth import identify, key_id, load_keys
from shared.errors import ConfigError
from tests.helpers import ROOT

ALICE, BOB = "alice-key-0123456789abcdef", "bob-key-fedcba9876543210xyz"
LINE = base64.b64encode((ROOT / "samples" / "lines" / "address.png").read_bytes()).decode()


@pytest.fixture
def keyed(settings, redis, tmp_path):
    secrets = tmp_path / "keys"
    secrets.write_text(f"# issued 2026-11\n{BOB}\n")
    app = create_app(settings.replace(api_keys=ALICE, api_keys_file=str(secrets)), connection=redis)
    return app.test_client()


def submit(client, key: str | None, **extra):
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    return client.post("/v1/jobs", json={"image_base64": LINE, "mode": "line", **extra}, headers=headers)


OPEN = ["/healthz", "/metrics", "/metrics/queues", "/", "/v1/openapi.json", "/v1/docs"]
KEYED = ["/v1/models", "/v1/jobs/00000000-0000-4000-8000-000000000000", "/v1/collections", "/v1/callbacks/dead"]


def test_only_the_documented_routes_answer_without_a_key(keyed):
    """README, "API keys": probes, scrapers and the docs are open; every other route needs a key."""
    assert [keyed.get(path).status_code for path in OPEN] == [200] * len(OPEN)
    assert [keyed.get(path).status_code for path in KEYED] == [401] * len(KEYED)


def test_keys_are_required_and_compared_exactly(keyed):
    assert submit(keyed, None).status_code == 401
    wrong = submit(keyed, ALICE[:-1] + "X")
    assert wrong.status_code == 401 and wrong.get_json()["error"]["kind"] == "unauthorized"
    assert submit(keyed, ALICE).status_code == 202
    other_header = keyed.post("/v1/jobs", json={"image_base64": LINE, "mode": "line"}, headers={"X-API-Key": BOB})
    assert other_header.status_code == 202
    assert keyed.get("/healthz").status_code == 200


def test_a_job_is_visible_only_to_the_key_that_created_it(keyed, make_worker):
    job_id = submit(keyed, ALICE).get_json()["id"]
    make_worker().work(burst=True)
    mine = keyed.get(f"/v1/jobs/{job_id}", headers={"Authorization": f"Bearer {ALICE}"})
    theirs = keyed.get(f"/v1/jobs/{job_id}", headers={"Authorization": f"Bearer {BOB}"})
    assert mine.status_code == 200 and mine.get_json()["status"] == "finished"
    # Someone else's job answers exactly as an unknown id does, so its existence is not revealed.
    unknown_id = str(uuid.uuid4())
    unknown = keyed.get(f"/v1/jobs/{unknown_id}", headers={"Authorization": f"Bearer {BOB}"})
    assert (theirs.status_code, theirs.get_json()["error"]["kind"]) == (unknown.status_code, "not_found") == (404, "not_found")
    assert theirs.get_data(as_text=True) == unknown.get_data(as_text=True).replace(unknown_id, job_id)
    chosen = str(uuid.uuid4())
    assert submit(keyed, ALICE, job_id=chosen).status_code == 202
    assert submit(keyed, BOB, job_id=chosen).status_code == 409


def test_random_job_ids_are_unguessable_uuid4(client):
    ids = {client.post("/v1/jobs", json={"image_base64": LINE, "mode": "line"}).get_json()["id"] for _ in range(5)}
    assert len(ids) == 5 and all(uuid.UUID(i).version == 4 for i in ids)


def test_rate_limits_answer_429_with_a_reason_and_retry_after(settings, redis):
    client = create_app(settings.replace(api_keys=ALICE, rate_limit_submit="3/minute"), connection=redis).test_client()
    codes = [submit(client, ALICE).status_code for _ in range(4)]
    assert codes == [202, 202, 202, 429]
    limited = submit(client, ALICE)
    assert limited.get_json()["error"]["kind"] == "too_many_requests"
    assert "3 per 1 minute" in limited.get_json()["error"]["message"]
    assert int(limited.headers["Retry-After"]) > 0


def test_key_loading_refuses_short_keys_and_unreadable_files(settings, tmp_path):
    with pytest.raises(ConfigError, match="at least 16"):
        load_keys(settings.replace(api_keys="short"))
    with pytest.raises(ConfigError, match="OCR_API_KEYS_FILE"):
        load_keys(settings.replace(api_keys_file=str(tmp_path / "missing")))
    assert identify(ALICE, [BOB, ALICE]) == key_id(ALICE) and identify("", [ALICE]) is None


def test_secrets_never_reach_the_logs(s3, redis, pipelines, caplog):
    """Paths that log while holding secrets: refused keys (a wrong one, a revoked one) and a
    worker whose S3 result write fails, signed with the configured secret (botocore logs the
    request and its signing at DEBUG). The secrets are absent; what those paths log is there."""
    from worker.__main__ import build_worker

    s3_settings, _ = s3
    secret = s3_settings.s3_secret_access_key
    keyed = s3_settings.replace(api_keys=ALICE, s3_bucket="no-such-bucket", result_store="s3")
    caplog.set_level(logging.DEBUG)
    client = create_app(keyed, connection=redis).test_client()
    job_id = submit(client, ALICE).get_json()["id"]
    assert submit(client, BOB).status_code == submit(client, ALICE[::-1]).status_code == 401
    build_worker(keyed, redis, pipelines=pipelines).work(burst=True)
    assert client.get(f"/v1/jobs/{job_id}", headers={"Authorization": f"Bearer {ALICE}"}).get_json()["error"][
        "kind"] == "storage"
    failure = [r for r in caplog.records if r.name == "worker.recording" and job_id in r.getMessage()]
    assert failure and "could not write s3://no-such-bucket/" in failure[0].getMessage(), "the failed write is logged"
    assert any(r.name.startswith("botocore") and "signature" in r.getMessage().lower() for r in caplog.records)
    for value in (ALICE, BOB, ALICE[::-1], secret):
        assert value not in caplog.text


def test_a_redis_password_is_kept_out_of_settings_reprs_and_printed_urls():
    from shared.redis_connection import display_url
    from shared.settings import Settings

    settings = Settings.from_env({"OCR_REDIS_URL": "redis://:pw-123-secret@redis.internal:6379/0"})
    assert "pw-123-secret" not in repr(settings)
    assert display_url(settings.redis_url) == "redis://:***@redis.internal:6379/0"
    assert display_url("rediss://ocr:pw-123-secret@[::1]:6380/2") == "rediss://ocr:***@[::1]:6380/2"
    assert display_url("redis://127.0.0.1:6379/0") == "redis://127.0.0.1:6379/0"
    assert display_url("redis://h:6379/0?password=pw-123-secret&socket_timeout=5") == \
        "redis://h:6379/0?password=***&socket_timeout=5"
