"""Fixtures: one real Redis server per session, a loaded model, the Flask app, burst workers."""

from __future__ import annotations

import functools

import pytest
from redis import Redis

from api import create_app
from ops.redis_server import RedisServer
from shared.settings import Settings
from worker.__main__ import build_worker, load_pipelines


@pytest.fixture(scope="session")
def redis_server():
    with RedisServer() as server:
        yield server


@pytest.fixture(scope="session")
def base_settings(redis_server) -> Settings:
    # The session's in-process models run the reference backend, on which bench/gates.json's edit
    # counts are measured; OpenVINO (what OCR_BACKEND=auto picks on a bf16 CPU) is held to it by
    # worker/backend_gates.json and runs in worker processes (tests/test_backends.py and every
    # test that starts `batchocr-worker`).
    return Settings(redis_url=redis_server.url, queue_name="test-ocr", intra_op_threads=2, backend="onnxruntime")


@pytest.fixture
def settings(base_settings) -> Settings:
    return base_settings


@pytest.fixture
def redis(redis_server):
    connection = Redis.from_url(redis_server.url)
    connection.flushall()
    yield connection
    connection.flushall()
    connection.close()


@pytest.fixture(scope="session")
def pipelines(base_settings):
    """The models, loaded once for the whole session (as a worker process does)."""
    return load_pipelines(base_settings)


@pytest.fixture(scope="session")
def read_page(pipelines, base_settings):
    """(page set, page id, clockwise degrees) -> (PageResult of the eval page turned so, the
    upright image, its labels), each read once a session with the default model."""
    from tests.helpers import eval_page
    from worker.offline.evaluation import turn
    from worker.pipeline import PageTask
    from worker.preprocess import decode_image

    pipeline = pipelines[base_settings.default_model]

    @functools.cache
    def run(name: str, page_id: str, degrees: int = 0):
        data, labels = eval_page(name, page_id)
        image = decode_image(data, base_settings)
        (result,) = pipeline.run([PageTask(turn(image, degrees), "page")])
        assert not isinstance(result, BaseException), result
        return result, image, labels

    return run


@pytest.fixture
def app(settings, redis):
    return create_app(settings, connection=redis)


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def make_worker(redis, pipelines, settings):
    """Build a BatchWorker sharing the session's models; batching settings may be overridden."""

    def make(**overrides):
        return build_worker(settings.replace(**overrides), redis, pipelines=pipelines)

    return make


@pytest.fixture(scope="session")
def s3_server():
    from tests.s3_server import S3Server

    with S3Server() as server:
        yield server


@pytest.fixture
def s3(s3_server, base_settings):
    """Fresh buckets 'results' and 'scans' (inputs allowed from 'scans') on the loopback S3
    server; yields (settings for it, boto3 client)."""
    from shared.s3 import ObjectStore

    settings = base_settings.replace(**s3_server.settings_overrides("results", inputs="scans"))
    client = ObjectStore(settings).client
    for bucket in ("results", "scans", "private"):
        for item in client.list_objects_v2(Bucket=bucket).get("Contents", []) if _exists(client, bucket) else []:
            client.delete_object(Bucket=bucket, Key=item["Key"])
        if not _exists(client, bucket):
            client.create_bucket(Bucket=bucket)
    return settings, client


def _exists(client, bucket: str) -> bool:
    return any(b["Name"] == bucket for b in client.list_buckets().get("Buckets", []))
