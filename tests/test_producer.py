"""The producer end to end: >= 100 real pages through two worker processes, killed midway and
re-run; then the same kind of run with inputs and results in S3 (moto's server on loopback)."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from redis import Redis
from rq import Worker
from rq.job import Job
from rq.serializers import JSONSerializer

from ops.launcher import Topology
from shared import collection_views, job_collections
from tests.helpers import clean_env, wait_until
from tests.producer_helpers import (build_tree, check_alto, check_hocr, check_pdf, documents, multipage,
                                    receipts, summary)

FORMATS = "json,txt,hocr,alto,pdf"
SUFFIXES = (".json", ".txt", ".hocr", ".alto.xml", ".pdf")


def producer(source, out: Path, api: str, *extra: str, env=None) -> subprocess.Popen:
    command = [sys.executable, "-m", "producer.cli", str(source), "--out", str(out), "--api", api,
               "--formats", FORMATS, "--no-progress", *extra]
    return subprocess.Popen(command, env=env or clean_env(), stderr=subprocess.PIPE, text=True)


@pytest.fixture(scope="module")
def killed_and_resumed(tmp_path_factory):
    """Run the producer over the tree, SIGKILL it after 20 documents, run it again to the end."""
    tree, out = tmp_path_factory.mktemp("tree"), tmp_path_factory.mktemp("out")
    pages = build_tree(tree)
    with Topology(workers=2, env=clean_env(), log_level="WARNING") as topology:
        redis = Redis.from_url(topology.settings.redis_url)
        first = producer(tree, out, topology.api_url, "--max-in-flight", "8")
        wait_until(lambda: len(documents(out, ".pdf")) >= 20 or first.poll() is not None, 600, "20 documents")
        first.send_signal(signal.SIGKILL)
        first.wait()
        first_stderr = first.stderr.read()
        jobs_after_kill = len(redis.keys("rq:job:*"))
        done_after_kill = len(documents(out, ".pdf"))
        second = producer(tree, out, topology.api_url)
        _, stderr = second.communicate(timeout=900)
        job_ids = [key.decode().split(":", 2)[2] for key in redis.keys("rq:job:*")]
        jobs = [Job.fetch(i, connection=redis, serializer=JSONSerializer) for i in job_ids]
        executions = {job.id: len(job.results()) for job in jobs}
        statuses = {job.get_status().value for job in jobs}
        successes = sum(w.successful_job_count for w in Worker.all(connection=redis))
        opened = [_collection(first_stderr), _collection(stderr)]
        collection = collection_views.describe(job_collections.fetch(redis, opened[1], ""))
    return {"collections": opened, "collection": collection,"pages": pages, "out": out, "tree": tree, "returncode": second.returncode, "stderr": stderr,
            "jobs_after_kill": jobs_after_kill, "done_after_kill": done_after_kill, "executions": executions,
            "statuses": statuses, "successes": successes}


def _collection(stderr: str) -> str:
    """The collection id the producer printed ("collection: <id> (...)")."""
    return next(line.split()[1] for line in stderr.splitlines() if line.startswith("collection: "))


def test_the_run_has_one_collection_that_a_rerun_finds_and_that_counts_every_page(killed_and_resumed):
    run = killed_and_resumed
    assert run["collections"][0] == run["collections"][1], "the re-run found the first run's collection"
    collection = run["collection"]
    assert (collection["total"], collection["counts"]["finished"]) == (run["pages"], run["pages"])
    assert collection["status"] == "finished" and collection["progress"] == 1.0
    assert collection["name"].startswith("batchocr-submit ") and collection["options"]["priority"] == "bulk"


def test_every_page_gets_exactly_one_output_after_a_kill_and_a_rerun(killed_and_resumed):
    run = killed_and_resumed
    assert run["returncode"] == 0, run["stderr"]
    assert run["pages"] >= 100
    sources = sorted(p.relative_to(run["tree"]).as_posix() for p in run["tree"].rglob("*") if p.is_file())
    for suffix in SUFFIXES:
        written = [p.relative_to(run["out"]).as_posix() for p in documents(run["out"], suffix)]
        assert written == [name + suffix for name in sources]
    assert not list(run["out"].rglob("*.part"))
    pages = sum(len(json.loads(p.read_text())["pages"]) for p in documents(run["out"], ".json"))
    assert pages == run["pages"]


def test_the_rerun_submits_only_what_never_reached_the_queue(killed_and_resumed):
    run = killed_and_resumed
    stats = summary(run["out"])
    assert 20 <= run["done_after_kill"] < stats["documents"], "the kill must land midway"
    assert 0 < run["jobs_after_kill"] < run["pages"]
    assert stats["already_done"] == run["done_after_kill"]
    assert stats["submitted"] == run["pages"] - run["jobs_after_kill"]
    assert stats["pages_failed"] == 0 and stats["failed_documents"] == 0
    # Nothing OCRed twice: one job per page, each run once, all finished.
    assert len(run["executions"]) == run["pages"]
    assert set(run["executions"].values()) == {1}
    assert run["statuses"] == {"finished"}
    assert run["successes"] == run["pages"]


def test_outputs_are_valid_hocr_alto_and_searchable_pdf(killed_and_resumed):
    out = killed_and_resumed["out"]
    for name in ("bound/register.tif", "bound/minutes.pdf", "receipts/box 2/000.jpg"):
        doc = json.loads((out / f"{name}.json").read_text())
        assert all(page["text"].strip() for page in doc["pages"])
        check_hocr(out / f"{name}.hocr", doc)
        check_alto(out / f"{name}.alto.xml", doc)
        check_pdf(out / f"{name}.pdf", doc)
        text = (out / f"{name}.txt").read_text()
        assert text.count("\f") == len(doc["pages"])


def test_a_run_with_inputs_and_results_in_s3(s3, tmp_path):
    """Scans listed from an S3 prefix go to the workers as s3:// references; results land in S3;
    a broken scan is reported in failures.tsv and only retried with --retry-failed."""
    settings, client = s3
    scans = receipts()[:3]
    for stem, data in scans:
        client.put_object(Bucket="scans", Key=f"run/a/{stem}.jpg", Body=data)
    client.put_object(Bucket="scans", Key="run/b/bound.tif",
                      Body=multipage([d for _, d in receipts()[3:5]], "TIFF", compression="tiff_deflate"))
    client.put_object(Bucket="scans", Key="run/broken.png", Body=b"\x89PNG\r\n\x1a\n" + b"\0" * 64)
    env = clean_env(OCR_RESULT_STORE="s3", OCR_S3_ENDPOINT_URL=settings.s3_endpoint_url, OCR_S3_BUCKET="results",
                    OCR_S3_REGION=settings.s3_region, OCR_S3_ACCESS_KEY_ID=settings.s3_access_key_id,
                    OCR_S3_SECRET_ACCESS_KEY=settings.s3_secret_access_key, OCR_S3_INPUT_BUCKETS="scans")
    out = tmp_path / "out"
    with Topology(workers=2, env=env, log_level="WARNING") as topology:
        def run(*extra):
            process = producer("s3://scans/run/", out, topology.api_url, *extra, env=env)
            _, stderr = process.communicate(timeout=600)
            assert "SECRET" not in stderr and settings.s3_secret_access_key not in stderr
            return process.returncode, summary(out)

        code, first = run()
        assert code == 1 and (first["written"], first["failed_documents"], first["submitted"]) == (4, 1, 6)
        failures = (out / "_batchocr" / "failures.tsv").read_text().splitlines()
        assert len(failures) == 2 and failures[1].startswith("broken.png\t1\t")
        code, second = run()
        assert (code, second["already_done"], second["submitted"], second["reused"]) == (1, 4, 0, 1)
        code, third = run("--retry-failed")
        assert (code, third["submitted"], third["pages_failed"]) == (1, 1, 1)
        # Straight to Redis, into a new folder: every job is found and reused, results read from S3.
        direct = subprocess.run([sys.executable, "-m", "producer.cli", "s3://scans/run/", "--out",
                                 str(tmp_path / "direct"), "--redis", topology.settings.redis_url,
                                 "--formats", "json", "--no-progress"], env=env, capture_output=True, timeout=300)
        assert direct.returncode == 1, direct.stderr
        fourth = summary(tmp_path / "direct")
        assert (fourth["written"], fourth["submitted"], fourth["reused"]) == (4, 0, 6)
        assert json.loads((tmp_path / "direct" / "b" / "bound.tif.json").read_text()) == json.loads(
            (out / "b" / "bound.tif.json").read_text())
    keys = sorted(item["Key"] for item in client.list_objects_v2(Bucket="results").get("Contents", []))
    docs = [json.loads(p.read_text()) for p in documents(out, ".json")]
    assert keys == sorted(f"batchocr/results/{page['job_id']}.json" for doc in docs for page in doc["pages"])
    assert len(keys) == 5
    assert [p.relative_to(out).as_posix() for p in documents(out, ".pdf")] == [
        f"a/{stem}.jpg.pdf" for stem, _ in scans] + ["b/bound.tif.pdf"]
