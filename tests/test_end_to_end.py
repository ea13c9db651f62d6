"""Real scans through the API, a real Redis, rq and the batching worker, then polled back."""

from __future__ import annotations

import base64

from rq.job import Job
from rq.serializers import JSONSerializer

from shared.document import ResultDocument
from tests.helpers import eval_lines, eval_page
from worker.offline.scoring import cer

# Measured on these exact items: UW3 0 errors in 288 characters, Chinese 0 in 87, the SROIE
# receipt 3 in 507 (case-folded). Each limit allows about one character more (two on the
# receipt), for CPUs whose kernels round differently; a real regression fails.
UW3_CER_MAX = 0.004
ZH_CER_MAX = 0.012
SROIE_CER_MAX = 0.01


def submit(client, image: bytes, mode: str) -> str:
    response = client.post("/v1/jobs", json={"image_base64": base64.b64encode(image).decode(), "mode": mode})
    assert response.status_code == 202, response.get_json()
    return response.get_json()["id"]


def test_real_scans_end_to_end(client, redis, make_worker):
    uw3 = eval_lines("uw3_lines", 6, start=10)
    zh = eval_lines("omnidocbench_zh_lines", 6, start=10)
    page, page_gt = eval_page("sroie_receipts", "096")
    uw3_ids = [submit(client, image, "line") for image, _ in uw3]
    zh_ids = [submit(client, image, "line") for image, _ in zh]
    page_id = submit(client, page, "page")

    make_worker().work(burst=True)

    views = {job_id: client.get(f"/v1/jobs/{job_id}").get_json() for job_id in [*uw3_ids, *zh_ids, page_id]}
    for job_id, view in views.items():
        assert view["status"] == "finished", view
        # rq's own API sees the same state and the same result.
        rq_job = Job.fetch(job_id, connection=redis, serializer=JSONSerializer)
        assert rq_job.get_status().value == view["status"]
        assert rq_job.return_value() == view["result"]
        timings = view["result"]["timings_ms"]
        assert set(timings) == {"queue_wait", "decode", "detection", "recognition", "total"}

    assert cer([views[i]["result"]["text"] for i in uw3_ids], [label for _, label in uw3]) <= UW3_CER_MAX
    assert cer([views[i]["result"]["text"] for i in zh_ids], [label for _, label in zh]) <= ZH_CER_MAX

    result = views[page_id]["result"]
    assert len(result["lines"]) > 20 and all(len(line["box"]) == 4 for line in result["lines"])
    reference = "".join(item["text"] for item in page_gt)
    # SROIE labels are upper case; lines come back in reading order, the labels are in it too.
    assert cer([result["text"]], [reference], ignore_case=True) <= SROIE_CER_MAX


def test_result_document_shape(client, make_worker):
    image, label = eval_lines("uw3_lines", 1)[0]
    job_id = submit(client, image, "line")
    make_worker().work(burst=True)
    result = client.get(f"/v1/jobs/{job_id}").get_json()["result"]
    assert result["mode"] == "line" and result["model"] == "ppocrv6-small" and result["batch_size"] == 1
    (line,) = result["lines"]
    assert line["text"] == result["text"] and 0.5 < line["confidence"] <= 1.0
    assert cer([result["text"]], [label]) <= 1 / len(label), "measured 0; at most one character off"
    assert ResultDocument.from_json(result).to_json() == result, "the document is exactly its declared contract"
