"""The local topology as real processes: embedded Redis, API server, two workers, HTTP client."""

from __future__ import annotations

import os

from shared.client import ApiClient
from ops.launcher import Topology
from tests.helpers import ROOT


def test_topology_serves_the_samples_over_http():
    env = {k: v for k, v in os.environ.items() if k not in ("REDIS_URL", "OCR_REDIS_URL")}
    with Topology(workers=2, env=env, log_level="WARNING") as topology:
        client = ApiClient(topology.api_url)
        samples = sorted((ROOT / "samples" / "lines").glob("*.png"))
        ids = [client.submit(path.read_bytes(), mode="line")["id"] for path in samples]
        page = client.submit((ROOT / "samples" / "pages" / "quarterly_report.jpg").read_bytes())["id"]
        texts = [client.wait(job_id, timeout=120)["result"]["text"] for job_id in ids]
        page_view = client.wait(page, timeout=120)
    assert "42 Wallaby Way, Sydney NSW 2000" in texts
    assert any("EUR 1,284.50" in text for text in texts)
    assert page_view["status"] == "finished"
    assert "The archive digitised 18,450 pages this quarter," in page_view["result"]["text"].splitlines()
    assert topology.processes == []
