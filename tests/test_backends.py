"""The OpenVINO backend reads what ONNX Runtime reads: same files, same pre- and post-processing.

The comparison runs in a child process, as a worker would: OpenVINO's thread pools are never
loaded into the test process, whose session-scoped ONNX Runtime models and signal-driven
timeouts other tests rely on (the two runtimes in one long-lived process with those timeouts
crashed once in CI; a worker process loads one backend for its big models).
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from shared.errors import ConfigError
from shared.settings import Settings
from tests.helpers import ROOT, clean_env

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
from shared.settings import Settings
from worker.pipeline import OcrPipeline
try:
    OcrPipeline.load(Settings().default_model, Settings(backend="openvino", intra_op_threads=1))
except ModelError as exc:
    print(exc.message)
"""


def child(code: str) -> str:
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=clean_env(), capture_output=True, text=True,
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
        Settings(precision="bf16")
    with pytest.raises(ConfigError, match="OCR_BACKEND must be one of"):
        Settings(backend="tensorrt")
    assert "pip install 'batchocr[openvino]'" in child(MISSING)
