"""The OpenVINO backend reads what ONNX Runtime reads: same files, same pre- and post-processing."""

from __future__ import annotations

import sys

import pytest

from shared.errors import ConfigError, ModelError
from shared.settings import Settings
from tests.helpers import eval_lines
from worker.offline.scoring import ErrorCount
from worker.pipeline import OcrPipeline, PageTask
from worker.preprocess import decode_image


@pytest.fixture(scope="module")
def lines(base_settings):
    return [(decode_image(data, base_settings), label) for data, label in eval_lines("uw3_lines", 40)]


def read(pipeline: OcrPipeline, lines) -> tuple[list[str], float]:
    results = pipeline.run([PageTask(image, "line", "") for image, _ in lines])
    count = ErrorCount()
    for result, (_, label) in zip(results, lines):
        count.add(result.text, label)
    return [result.text for result in results], count.cer


@pytest.mark.parametrize("precision", ["fp32", "bf16"])
def test_openvino_reads_the_lines_onnx_runtime_reads(base_settings, pipelines, lines, precision):
    reference, reference_cer = read(pipelines[base_settings.default_model], lines)
    settings = base_settings.replace(backend="openvino", precision=precision)
    pipeline = OcrPipeline.load(settings.default_model, settings)
    assert (pipeline.model.det.backend, pipeline.model.rec.precision) == ("openvino", precision)
    texts, cer = read(pipeline, lines)
    if precision == "fp32":
        assert texts == reference
    assert cer <= reference_cer + 0.002  # the backend gate's tolerance


def test_bf16_needs_openvino_and_a_missing_package_is_a_clear_error(base_settings, monkeypatch):
    with pytest.raises(ConfigError, match="OCR_PRECISION=bf16 needs OCR_BACKEND=openvino"):
        Settings(precision="bf16")
    with pytest.raises(ConfigError, match="OCR_BACKEND must be one of"):
        Settings(backend="tensorrt")
    monkeypatch.setitem(sys.modules, "openvino", None)
    with pytest.raises(ModelError, match=r"pip install 'batchocr\[openvino\]'"):
        OcrPipeline.load(base_settings.default_model, base_settings.replace(backend="openvino"))
