"""The local topology as real processes: embedded Redis, API server, two workers, HTTP client."""

from __future__ import annotations

import os
import subprocess
import sys

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


def test_the_readme_demo_command_prints_every_sample_s_text():
    """``./scripts/demo`` ends in ``batchocr-demo``: embedded Redis, API, two workers, samples."""
    env = {k: v for k, v in os.environ.items() if k not in ("REDIS_URL", "OCR_REDIS_URL")}
    done = subprocess.run([sys.executable, "-m", "ops.demo"], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    for text in ("42 Wallaby Way, Sydney NSW 2000", "Total due: EUR 1,284.50",
                 "The archive digitised 18,450 pages this quarter,", "4/4 jobs finished"):
        assert text in done.stdout
