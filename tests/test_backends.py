"""The OpenVINO backend reads what ONNX Runtime reads: same files, same pre- and post-processing;
``OCR_BACKEND=auto`` chooses it only where the CPU and the recorded accuracy gate allow; a real
worker process on it runs jobs, meets a job timeout and lives on.

OpenVINO runs in child processes, as in a worker: it is never loaded into the test process,
whose session-scoped ONNX Runtime models other tests rely on (the two runtimes in one pytest
process crashed once in CI, in a later test that forks rq work horses; a worker loads one
runtime and never forks).
"""

from __future__ import annotations

import base64
import json
import subprocess
import sys

import pytest

from api import create_app
from shared.errors import ConfigError
from shared.settings import Settings
from tests.helpers import ROOT, clean_env
from worker.backend_choice import choose, gate_passed

COMPARE = """
import json, sys
from shared.settings import Settings
from tests.helpers import eval_lines
from worker.offline.scoring import ErrorCount
from worker.pipeline import OcrPipeline, PageTask
from worker.preprocess import decode_image

base = Settings(intra_op_threads=2)
lines = [(decode_image(data, base), label) for data, label in eval_lines("uw3_lines", 40)]
out = {}
for backend, precision in (("onnxruntime", "fp32"), ("openvino", "fp32"), ("openvino", "bf16")):
    pipeline = OcrPipeline.load(base.default_model, base.replace(backend=backend, precision=precision))
    results = pipeline.run([PageTask(image, "line", "") for image, _ in lines])
    count = ErrorCount()
    for result, (_, label) in zip(results, lines):
        count.add(result.text, label)
    out[backend + ":" + precision] = {"texts": [r.text for r in results], "cer": count.cer,
                                      "engine": [pipeline.model.det.backend, pipeline.model.rec.precision]}
json.dump(out, sys.stdout)
"""

MISSING = """
import sys
sys.modules["openvino"] = None
from shared.errors import ModelError
from worker.backend_choice import choose
print(choose("auto", "auto", "ppocrv6-small").reason)
try:
    choose("openvino", "auto", "ppocrv6-small")
except ModelError as exc:
    print(exc.message)
"""

SIGNALS = """
import gc, signal, time
import numpy as np
from shared.settings import Settings
from worker.pipeline import OcrPipeline
settings = Settings(intra_op_threads=1, backend="openvino")
for _ in range(2):  # models loaded and released, as OCR_MAX_LOADED_MODELS evicts them
    pipeline = OcrPipeline.load(settings.default_model, settings)
    pipeline.model.rec(np.zeros((1, 3, 48, 320), np.float32))
    del pipeline
    gc.collect()
class Timeout(Exception):
    pass
def alarm(*_):
    raise Timeout()
signal.signal(signal.SIGALRM, alarm)
signal.alarm(1)
try:
    time.sleep(30)
except Timeout:
    print("interrupted")
"""

AUTO = """
from worker.backend_choice import choose, openvino_bf16
print(openvino_bf16(), choose("auto", "auto", "ppocrv6-small").label)
"""

LINE = (ROOT / "samples" / "lines" / "address.png").read_bytes()
PAGE = (ROOT / "samples" / "pages" / "quarterly_report.jpg").read_bytes()


def child(code: str, *flags: str) -> str:
    done = subprocess.run([sys.executable, *flags, "-c", code], cwd=ROOT, env=clean_env(), capture_output=True, text=True,
                          timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


def test_openvino_reads_the_lines_onnx_runtime_reads():
    figures = json.loads(child(COMPARE))
    reference = figures["onnxruntime:fp32"]
    assert figures["openvino:fp32"]["engine"] == ["openvino", "fp32"]
    assert figures["openvino:bf16"]["engine"] == ["openvino", "bf16"]
    assert figures["openvino:fp32"]["texts"] == reference["texts"]
    assert figures["openvino:bf16"]["cer"] <= reference["cer"] + 0.002  # the backend gate's tolerance


def test_bf16_needs_openvino_and_a_missing_package_is_a_clear_error():
    with pytest.raises(ConfigError, match="OCR_PRECISION=bf16 needs OCR_BACKEND=openvino"):
        Settings(backend="onnxruntime", precision="bf16")
    with pytest.raises(ConfigError, match="OCR_BACKEND must be one of"):
        Settings(backend="tensorrt")
    with pytest.raises(ConfigError, match="OCR_BACKEND=auto chooses the precision too"):
        Settings(backend="auto", precision="fp32")
    without = child(MISSING)
    assert "auto: the openvino package is not installed" in without  # auto falls back to ONNX Runtime
    assert "pip install 'batchocr[openvino]'" in without


def test_a_signal_after_openvino_models_were_released_is_handled():
    """OpenVINO's CPU plugin swaps the thread's signal stack; with a Core per engine, releasing
    models left it pointing at freed memory and the next signal was a SIGSEGV (faulthandler,
    which pytest and PYTHONFAULTHANDLER enable, made it certain). One Core per process."""
    assert child(SIGNALS, "-X", "faulthandler").strip() == "interrupted"


TABLE = {"tolerance": 0.002, "sets": ["a", "b"],
         "models": {"m": {"openvino:bf16": {"a": {"cer": 0.012, "reference": 0.010},
                                            "b": {"cer": 0.050, "reference": 0.051}},
                          "openvino:int8": {"a": {"cer": 0.013, "reference": 0.010},
                                            "b": {"cer": 0.050, "reference": 0.051}},
                          "openvino:fp32": {"a": {"cer": 0.010, "reference": 0.010}}}}}


def test_the_gate_passes_only_within_tolerance_on_every_recorded_set():
    assert gate_passed(TABLE, "m", "openvino:bf16")
    assert not gate_passed(TABLE, "m", "openvino:int8")  # +0.003 on one set
    assert not gate_passed(TABLE, "m", "openvino:fp32")  # a set never measured
    assert not gate_passed(TABLE, "other", "openvino:bf16")  # a version never measured
    assert not gate_passed({}, "m", "openvino:bf16")


def test_auto_runs_the_default_version_on_openvino_bf16_where_the_cpu_has_it():
    bf16, label = child(AUTO).split()
    assert label == ("openvino:bf16" if bf16 == "True" else "onnxruntime:fp32")  # its gate is recorded


def test_auto_runs_onnx_runtime_for_a_version_without_a_passed_gate():
    choice = choose("auto", "auto", "no-such-version")
    assert choice.label == "onnxruntime:fp32" and "no passed openvino:bf16 accuracy gate" in choice.reason
    assert choose("onnxruntime", "auto", "ppocrv6-small").label == "onnxruntime:fp32"


def test_results_and_metrics_name_the_backend(client, make_worker):
    worker = make_worker()
    response = client.post("/v1/jobs", json={"image_base64": base64.b64encode(LINE).decode(), "mode": "line"})
    worker.work(burst=True)
    view = client.get(f"/v1/jobs/{response.get_json()['id']}").get_json()
    assert view["result"]["inference"] == "onnxruntime:fp32"
    worker.metrics.loaded(worker.pipelines.get(worker.settings.default_model))
    assert worker.metrics.registry.get_sample_value(
        "batchocr_worker_inference", {"model": worker.settings.default_model, "backend": "onnxruntime",
                                      "precision": "fp32"}) == 1


def burst(redis_url: str, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "worker", "--burst", "--log-level", "INFO"], cwd=ROOT,
                          env=clean_env(REDIS_URL=redis_url, OCR_QUEUE_NAME="test-ocr", OCR_INTRA_OP_THREADS="2",
                                        OCR_BACKEND="openvino", **env),
                          capture_output=True, text=True, timeout=600)


def test_a_worker_process_on_openvino_survives_a_job_timeout_and_reads_on(settings, redis, client):
    hurried = create_app(settings.replace(job_timeout_s=1), connection=redis).test_client()
    slow = [hurried.post("/v1/jobs", json={"image_base64": base64.b64encode(PAGE).decode()}).get_json()["id"]
            for _ in range(8)]  # one batch of 8 pages cannot finish in 1 s
    first = burst(settings.redis_url)
    assert first.returncode == 0, first.stderr[-3000:]
    assert "on openvino:" in first.stderr and "warmed up" in first.stderr
    assert {client.get(f"/v1/jobs/{i}").get_json()["error"]["kind"] for i in slow} == {"timeout"}
    quick = [client.post("/v1/jobs", json={"image_base64": base64.b64encode(image).decode(), "mode": mode})
             .get_json()["id"] for image, mode in ((LINE, "line"), (PAGE, "page"))]
    second = burst(settings.redis_url)
    assert second.returncode == 0, second.stderr[-3000:]
    line, page = (client.get(f"/v1/jobs/{i}").get_json() for i in quick)
    assert line["result"]["text"] == "42 Wallaby Way, Sydney NSW 2000"
    assert line["result"]["inference"].startswith("openvino:")
    assert "The archive digitised 18,450 pages this quarter," in page["result"]["text"].splitlines()
