"""INT8 on OpenVINO (NNCF post-training quantisation of the recogniser), against the backend
gate: is it within +0.002 CER of ONNX Runtime FP32 on the line sets, and how fast?

    PYTHONPATH=<nncf installed there> .venv/bin/python -m bench.openvino_int8 [--calib-lines 100]

NNCF is not a dependency of batchocr: install it beside the venv to run this (pip install
--target DIR nncf). The recogniser is calibrated on the first ``--calib-lines`` lines of each
line set (the same sets it is then scored on: a leak in its favour, so a refusal is
conclusive), quantised with NNCF's defaults (``preset=MIXED``; ``--transformer`` keeps more of
the attention in bf16), and scored in line mode beside ONNX Runtime FP32 and OpenVINO bf16 on the
same lines; speed is model-only on the gate's line tensors, interleaved, medians.
"""

from __future__ import annotations

import argparse
import dataclasses
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

from bench.accuracy import EVAL
from shared.settings import Settings
from worker.backend_choice import openvino_core
from worker.engine import OpenVinoEngine
from worker.offline.evaluation import evaluate_lines, line_items
from worker.pipeline import OcrPipeline
from worker.preprocess import decode_image, pad_stack, rec_normalize, rec_width
from worker.recognize import slot_width

SETS = ("uw3_lines", "omnidocbench_zh_lines")


def tensors(pipeline: OcrPipeline, paths: list[Path]) -> list[np.ndarray]:
    """Each line as the worker feeds it to the recogniser: 1 x 3 x 48 x slot width."""
    model, settings = pipeline.model, pipeline.settings
    out = []
    for path in paths:
        crop = decode_image(path.read_bytes(), settings)
        width = rec_width(crop.shape, model.spec.rec_height, settings.rec_max_width, pipeline.width_scale)
        out.append(pad_stack([rec_normalize(crop, model.spec.rec_height, width)],
                             slot_width(width, pipeline.tail_pad, settings.rec_width_bucket)))
    return out


def quantize(pipeline: OcrPipeline, calib: list[np.ndarray], transformer: bool, folder: Path) -> Path:
    import nncf
    import openvino as ov

    model = openvino_core().read_model(str(pipeline.model.spec.path(pipeline.model.spec.rec)))
    extra = {"model_type": nncf.ModelType.TRANSFORMER} if transformer else {}
    quantized = nncf.quantize(model, nncf.Dataset(calib), subset_size=len(calib), **extra)
    path = folder / "rec_int8.xml"
    ov.save_model(quantized, str(path))
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--calib-lines", type=int, default=100)
    parser.add_argument("--transformer", action="store_true")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    settings = Settings.from_env(intra_op_threads=2)
    reference = OcrPipeline.load(settings.default_model, settings.replace(backend="onnxruntime"))
    bf16 = OcrPipeline.load(settings.default_model, settings.replace(backend="openvino", precision="bf16"))
    items = {name: line_items(EVAL / name) for name in SETS}
    calib = [t for name in SETS for t in tensors(reference, [p for p, _ in items[name][: args.calib_lines]])]
    with tempfile.TemporaryDirectory() as folder:
        rec = OpenVinoEngine(quantize(reference, calib, args.transformer, Path(folder)), settings.threads, "bf16")
        int8 = OcrPipeline(dataclasses.replace(bf16.model, rec=rec), bf16.settings)
        systems = {"onnxruntime:fp32": reference, "openvino:bf16": bf16, "openvino:int8": int8}
        for name in SETS:
            figures = {label: evaluate_lines(p, items[name], 8, False)["cer"] for label, p in systems.items()}
            print(name, " ".join(f"{label} {cer:.4f}" for label, cer in figures.items()), flush=True)
        lines = [t for name in SETS for t in tensors(reference, [p for p, _ in items[name]])]
        times: dict[str, list[float]] = {label: [] for label in systems}
        for round_no in range(args.rounds):
            for label, pipeline in (systems.items() if round_no % 2 == 0 else reversed(systems.items())):
                start = time.perf_counter()
                for tensor in lines:
                    pipeline.model.rec(tensor)
                times[label].append(time.perf_counter() - start)
        for label, seconds in times.items():
            print(f"{label}: {len(lines) / statistics.median(seconds):.1f} lines/s model-only (median of {args.rounds})")


if __name__ == "__main__":
    main()
