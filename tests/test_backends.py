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
from types import SimpleNamespace

import pytest

from api import create_app
from shared.errors import ConfigError
from shared.settings import Settings
from tests.helpers import ROOT, clean_env
from worker.backend_choice import choose, fingerprint, gate_passed, gate_table
from worker.model_loading import model_files
from worker.warm_up import warm_up

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
                                      "engine": [pipeline.model.det.backend, pipeline.model.rec.precision],
                                      "streams": pipeline.model.rec.streams}
from worker.backend_choice import openvino_bf16
out["native_bf16"] = openvino_bf16()
json.dump(out, sys.stdout)
"""

MISSING = """
import sys
sys.modules["openvino"] = None
from shared.errors import ModelError
from worker.backend_choice import choose
from worker.model_loading import model_files
print(choose("auto", "auto", "ppocrv6-small", model_files("ppocrv6-small")).reason)
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
from worker.model_loading import model_files
print(openvino_bf16(), choose("auto", "auto", "ppocrv6-small", model_files("ppocrv6-small")).label)
asked = choose("openvino", "bf16", "ppocrv6-small")
print(asked.label, asked.reason.replace(" ", "_"))
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
    assert figures["openvino:bf16"]["engine"] == ["openvino", "bf16" if figures["native_bf16"] else "fp32"]
    assert figures["openvino:fp32"]["streams"] == 2  # 40 lines in overlapping chunks, read in order
    assert figures["openvino:fp32"]["texts"] == reference["texts"]
    assert figures["openvino:bf16"]["cer"] <= reference["cer"] + 0.002  # the backend gate's tolerance


def test_bf16_needs_openvino_and_a_missing_package_is_a_clear_error():
    with pytest.raises(ConfigError, match="OCR_PRECISION=bf16 needs OCR_BACKEND=openvino"):
        Settings(backend="onnxruntime", precision="bf16")
    with pytest.raises(ConfigError, match="OCR_BACKEND must be one of"):
        Settings(backend="tensorrt")
    with pytest.raises(ConfigError, match="OCR_PRECISION=bf16 needs OCR_BACKEND=openvino"):
        Settings(precision="bf16")  # auto picks bf16 itself where it may
    without = child(MISSING)
    assert "auto: the openvino package is not installed or does not start" in without  # ONNX Runtime runs
    assert "pip install 'batchocr[openvino]'" in without


def test_a_signal_after_openvino_models_were_released_is_handled():
    """OpenVINO's CPU plugin swaps the thread's signal stack; with a Core per engine, releasing
    models left it pointing at freed memory and the next signal was a SIGSEGV (faulthandler,
    which pytest and PYTHONFAULTHANDLER enable, made it certain). One Core per process."""
    assert child(SIGNALS, "-X", "faulthandler").strip() == "interrupted"


TABLE = {"tolerance": 0.002, "sets": ["a", "b"],
         "models": {"m": {"openvino:bf16": {"fingerprint": "f1", "sets": {"a": {"cer": 0.012, "reference": 0.010},
                                                                           "b": {"cer": 0.050, "reference": 0.051}}},
                          "openvino:int8": {"fingerprint": "f1", "sets": {"a": {"cer": 0.013, "reference": 0.010},
                                                                           "b": {"cer": 0.050, "reference": 0.051}}},
                          "openvino:fp32": {"fingerprint": "f1", "sets": {"a": {"cer": 0.010, "reference": 0.010}}}}}}


def test_the_gate_passes_only_within_tolerance_on_every_recorded_set_of_the_same_files():
    assert gate_passed(TABLE, "m", "openvino:bf16", "f1")
    assert not gate_passed(TABLE, "m", "openvino:bf16", "f2")  # other model files or OpenVINO release
    assert not gate_passed(TABLE, "m", "openvino:int8", "f1")  # +0.003 on one set
    assert not gate_passed(TABLE, "m", "openvino:fp32", "f1")  # a set never measured
    assert not gate_passed(TABLE, "other", "openvino:bf16", "f1")  # a version never measured
    assert not gate_passed({}, "m", "openvino:bf16", "f1")


def test_the_recorded_gate_is_for_the_installed_default_model_files():
    settings = Settings()
    assert gate_passed(gate_table(), settings.default_model, "openvino:bf16",
                       fingerprint(model_files(settings.default_model)))


def test_auto_runs_the_default_version_on_openvino_bf16_where_the_cpu_has_it():
    bf16, label, asked, reason = child(AUTO).split()
    assert label == ("openvino:bf16" if bf16 == "True" else "onnxruntime:fp32")  # its gate is recorded
    assert asked == ("openvino:bf16" if bf16 == "True" else "openvino:fp32")  # never emulated bf16
    assert bf16 == "True" or "no_native_bf16" in reason


def test_auto_runs_onnx_runtime_for_a_version_without_a_passed_gate():
    choice = choose("auto", "auto", "no-such-version", [])  # decided before OpenVINO is ever loaded
    assert choice.label == "onnxruntime:fp32" and "no passed openvino:bf16 accuracy gate" in choice.reason
    assert choose("onnxruntime", "auto", "ppocrv6-small").label == "onnxruntime:fp32"
    assert choose("auto", "fp32", "ppocrv6-small").label == "onnxruntime:fp32"  # the reference, asked for


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
    assert "its batch ran past the job timeout; it runs alone" in first.stderr
    views = [client.get(f"/v1/jobs/{i}").get_json() for i in slow]  # alone, a page may make it in 1 s
    assert all(v["status"] == "finished" or v["error"]["kind"] == "timeout" for v in views), views
    quick = [client.post("/v1/jobs", json={"image_base64": base64.b64encode(image).decode(), "mode": mode})
             .get_json()["id"] for image, mode in ((LINE, "line"), (PAGE, "page"))]
    second = burst(settings.redis_url)
    assert second.returncode == 0, second.stderr[-3000:]
    line, page = (client.get(f"/v1/jobs/{i}").get_json() for i in quick)
    assert line["result"]["text"] == "42 Wallaby Way, Sydney NSW 2000"
    assert line["result"]["inference"].startswith("openvino:")
    assert "The archive digitised 18,450 pages this quarter," in page["result"]["text"].splitlines()


class Recording:
    """An engine that records the shapes it is given."""

    def __init__(self) -> None:
        self.shapes, self.calls = [], 0

    def __call__(self, batch):
        self.shapes.append(batch.shape)
        self.calls += 1
        return batch


def test_warm_up_runs_each_line_width_bucket_one_page_and_the_classifier_then_forgets_the_calls():
    model = SimpleNamespace(rec=Recording(), det=Recording(), cls=Recording(),
                            spec=SimpleNamespace(name="m", rec_height=48))
    pipeline = SimpleNamespace(model=model, settings=Settings(det_max_side=1600), tail_pad=16)
    assert warm_up(pipeline, 640) > 0
    assert model.rec.shapes == [(n, 3, 48, width) for width in range(32, 513, 32) for n in (1, 2, 4, 8)] + \
        [(1, 3, 48, 544), (1, 3, 48, 576), (1, 3, 48, 608), (1, 3, 48, 640)]
    assert model.det.shapes == [(1, 3, 1600, 1184)]  # A4-shaped, in the detector's steps of 32
    assert model.cls.shapes == [(1, 3, 48, 192), (8, 3, 48, 192)]
    assert model.rec.calls == model.det.calls == model.cls.calls == 0  # calls count jobs' work only
    assert warm_up(pipeline, 0) == 0.0 and model.rec.calls == 0


def test_onnx_runtime_sessions_share_one_arena_and_read_as_without_it():
    """Every arena session of a process draws on the one environment arena (a page worker's
    peak memory: docs/BENCHMARKS.md); its outputs are those of a session without an arena."""
    import numpy as np

    from worker.engine import Engine, build_session, shared_arena

    rec = model_files("ppocrv6-small")[1]
    pooled, alone = build_session(rec, 1), build_session(rec, 1, mem_arena=False)
    assert shared_arena()
    assert pooled.get_session_options().get_session_config_entry("session.use_env_allocators") == "1"
    assert not pooled.get_session_options().enable_mem_pattern
    batch = np.random.default_rng(0).uniform(-1, 1, (2, 3, 48, 160)).astype(np.float32)
    np.testing.assert_array_equal(Engine(pooled)(batch), Engine(alone)(batch))
