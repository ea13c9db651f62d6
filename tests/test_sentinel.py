"""Redis Sentinel for real, on loopback: a master, a replica and three sentinels (the same
Redis-compatible server binary the tests use, in sentinel mode). The API (its app, in process)
and a worker process find the master through the sentinels; the master is SIGKILLed; both follow
the promoted replica within seconds, jobs submitted before it read back and jobs submitted
after it finish."""

from __future__ import annotations

import io
import subprocess
import sys
import time

import pytest
from redis import Redis

from api import create_app
from ops.redis_server import FailoverCluster, terminate
from shared import redis_connection
from shared.errors import ConfigError
from shared.settings import Settings
from tests.helpers import ROOT, clean_env, wait_until

LINE = (ROOT / "samples" / "lines" / "address.png").read_bytes()
MASTER = "mymaster"


@pytest.fixture
def cluster():
    with FailoverCluster(MASTER, timeout=15) as running:
        yield running.master, running.replica, running.sentinels


def test_sentinel_addresses_are_checked():
    with pytest.raises(ConfigError, match="not host:port"):
        redis_connection.connect(Settings(redis_sentinels="127.0.0.1"))


def test_api_and_worker_follow_a_failover(cluster, tmp_path):
    master, replica, sentinels = cluster
    env = clean_env(OCR_REDIS_URL="redis://127.0.0.1:1/0", OCR_REDIS_SENTINELS=sentinels.addresses,
                    OCR_REDIS_SENTINEL_MASTER=MASTER, OCR_QUEUE_NAME="sentinel", OCR_WORKERS_PER_HOST="1",
                    OCR_WARM_UP_WIDTH="0", OCR_BACKEND="onnxruntime")
    settings = Settings.from_env(env)
    client = create_app(settings).test_client()
    log = (tmp_path / "worker.log").open("ab")
    worker = subprocess.Popen([sys.executable, "-m", "worker", "--name", "sentinel-a"], env=env,
                              stdout=log, stderr=subprocess.STDOUT)
    try:
        before = [submit(client) for _ in range(3)]
        wait_until(lambda: all(status(client, job) == "finished" for job in before), 120, "jobs before the failover")
        Redis.from_url(master.url).execute_command("WAIT", 1, 5000)  # the results reached the replica
        master.process.kill()
        killed = time.monotonic()
        wait_until(lambda: sentinels.master_port() == replica.port, 30, "the replica promoted")
        after = [submit(client, retry_for=30) for _ in range(3)]
        wait_until(lambda: all(status(client, job) == "finished" for job in after), 60,
                   "jobs after the failover", explain=lambda: (tmp_path / "worker.log").read_text()[-3000:])
        print(f"failover: jobs finishing again {time.monotonic() - killed:.1f} s after the master was killed")
        assert all(status(client, job) == "finished" for job in before)  # replicated before the kill
    finally:
        terminate(worker, grace=30)


def submit(client, retry_for: float = 0.0) -> str:
    """A line job's id; while the master is failing over, the API answers 503: retried."""
    deadline = time.monotonic() + retry_for
    while True:
        response = client.post("/v1/jobs", data={"file": (io.BytesIO(LINE), "a.png"), "mode": "line"})
        if response.status_code == 202:
            return response.get_json()["id"]
        assert response.status_code == 503 and time.monotonic() < deadline, response.get_json()
        time.sleep(0.5)


def status(client, job_id: str) -> str:
    response = client.get(f"/v1/jobs/{job_id}")
    return response.get_json().get("status", "") if response.status_code == 200 else ""


def test_a_durable_submit_waits_for_a_replica_and_says_when_none_confirms(cluster):
    master, replica, sentinels = cluster
    settings = Settings(redis_url=master.url, queue_name="durable", submit_replicas=1, submit_replica_wait_ms=2000)
    client = create_app(settings).test_client()
    job_id = submit(client)
    assert Redis.from_url(replica.url).exists(f"rq:job:{job_id}")  # on the replica before the 202
    strict = create_app(settings.replace(submit_replicas=2, submit_replica_wait_ms=200)).test_client()
    response = strict.post("/v1/jobs", data={"file": (io.BytesIO(LINE), "a.png"), "mode": "line"})
    body = response.get_json()
    assert response.status_code == 503 and body["error"]["kind"] == "not_replicated", body
    assert "1 of 2 replica(s)" in body["error"]["message"] and "may still run" in body["error"]["message"]
