"""``batchocr-quantize``: an INT8 version of a recognition model, registered only if it keeps
its accuracy.

    batchocr-quantize --base ppocrv6-small --method dynamic --model-dir models/ \\
        --calib ../shared/eval/uw3_lines --gate ../shared/eval/uw3_lines,../shared/eval/omnidocbench_zh_lines

``dynamic``: weights of MatMul/Gemm to INT8, activations quantized on the fly (no data needed).
``static``: QDQ INT8 weights (per channel) and activations, with ranges calibrated on real line
crops from ``--calib``. The detector stays FP32 (it is the smaller share of the time on lines).
The gate runs FP32 and INT8 side by side on every ``--gate`` line set (line mode, same batching);
the version is added to ``<model-dir>/manifest.json`` only if its CER is within
``--max-cer-loss`` (absolute, default 0.012 = 1.2 points) of FP32's on every set.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
from dataclasses import replace
from pathlib import Path

import numpy as np

from shared import logs
from shared.entry import console_script
from shared.models import FileRef, load_versions, register, unregister
from shared.settings import Settings
from worker.offline.evaluation import evaluate_lines, line_items, read_image
from worker.pipeline import OcrPipeline
from worker.preprocess import rec_normalize, rec_width


class LineReader:
    """Calibration data for static quantization: real line crops, preprocessed as in serving
    (one line per batch, its own width): ``{input: [1, 3, 48, W] float32}``."""

    def __init__(self, input_name: str, paths: list[Path], height: int, width_scale: float) -> None:
        self.input_name = input_name
        self.paths = iter(paths)
        self.height = height
        self.width_scale = width_scale

    def get_next(self) -> dict[str, np.ndarray] | None:
        path = next(self.paths, None)
        if path is None:
            return None
        image = read_image(path, Settings())
        width = rec_width(image.shape, self.height, 4096, self.width_scale)
        return {self.input_name: rec_normalize(image, self.height, width)[None]}

    def rewind(self) -> None:  # pragma: no cover - the API asks for it; one pass is enough
        pass


def quantize(source: Path, target: Path, method: str, calib: list[Path], height: int, width_scale: float = 1.0) -> None:
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_dynamic, \
        quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    if method == "dynamic":
        quantize_dynamic(str(source), str(target), weight_type=QuantType.QInt8, op_types_to_quantize=["MatMul", "Gemm"])
        return
    with tempfile.TemporaryDirectory() as tmp:
        prepared = Path(tmp) / "prepared.onnx"
        _to_opset(source, Path(tmp) / "opset.onnx", 13)
        quant_pre_process(str(Path(tmp) / "opset.onnx"), str(prepared), skip_symbolic_shape=True)
        import onnxruntime as ort

        name = ort.InferenceSession(str(prepared), providers=["CPUExecutionProvider"]).get_inputs()[0].name
        reader = LineReader(name, calib, height, width_scale)
        CalibrationDataReader.register(LineReader)
        quantize_static(str(prepared), str(target), reader, quant_format=QuantFormat.QDQ, per_channel=True,
                        weight_type=QuantType.QInt8, activation_type=QuantType.QUInt8)


def _to_opset(source: Path, target: Path, opset: int) -> None:
    """Per-channel QDQ needs DequantizeLinear's ``axis`` (ONNX opset 13); PP-OCR exports opset 11."""
    import onnx
    from onnx import version_converter

    model = onnx.load(str(source))
    current = max(o.version for o in model.opset_import if o.domain in ("", "ai.onnx"))
    if current < opset:
        model = version_converter.convert_version(model, opset)
    onnx.save(model, str(target))


def gate(settings: Settings, names: tuple[str, str], sets: list[Path], lines: int) -> dict[str, dict]:
    """CER and lines/s of both versions on every set (first ``lines`` of each, same order)."""
    figures: dict[str, dict] = {}
    pipelines = {n: OcrPipeline.load(n, settings) for n in names}
    for data in sets:
        items = line_items(data)[:lines]
        for name in names:
            figures.setdefault(data.name, {})[name] = evaluate_lines(pipelines[name], items, 8, False)
    return figures


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="batchocr-quantize", description=__doc__.split("\n\n")[0])
    parser.add_argument("--base", default="ppocrv6-small")
    parser.add_argument("--method", choices=("dynamic", "static"), default="dynamic")
    parser.add_argument("--name", help="new version name (default: <base>-int8-<method>)")
    parser.add_argument("--model-dir", required=True, type=Path)
    parser.add_argument("--calib", help="comma-separated line sets for static calibration")
    parser.add_argument("--calib-lines", type=int, default=200, help="lines taken from each calibration set")
    parser.add_argument("--gate", required=True, help="comma-separated line sets")
    parser.add_argument("--gate-lines", type=int, default=400)
    parser.add_argument("--max-cer-loss", type=float, default=0.012)
    parser.add_argument("--json", type=Path, help="write the gate's figures here")
    parser.add_argument("--replace", action="store_true", help="replace an existing version of that name")
    return parser


@console_script("batchocr-quantize")
def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    logs.configure("WARNING")
    # Both versions on the reference backend: the gate measures what INT8 costs, not a backend change.
    settings = Settings.from_env(model_dir=str(args.model_dir.resolve()), backend="onnxruntime", precision="auto")
    base = load_versions(settings.model_dir)[args.base]
    name = args.name or f"{args.base}-int8-{args.method}"
    if name in load_versions(settings.model_dir) and not args.replace:
        parser.error(f"version {name} exists; choose another --name or pass --replace")
    final = args.model_dir.resolve() / name
    folder = args.model_dir.resolve() / f".{name}.candidate"  # the served version is untouched until it passes
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    calib = [p for data in (args.calib or "").split(",") if data
             for p, _ in line_items(Path(data))[: args.calib_lines]]
    if args.method == "static" and not calib:
        parser.error("--method static needs --calib")
    quantize(base.path(base.rec), folder / "rec.onnx", args.method, calib, base.rec_height, base.rec_width_scale)
    spec = replace(base, name=name, rec=FileRef(f"{name}/rec.onnx"), status="experimental", base_dir="",
                   vocab_from_metadata_of=base.vocab_from_metadata_of or (base.rec if base.vocab is None else None),
                   description=f"{args.base}, recogniser INT8 ({args.method})")
    trial = replace(spec, name=f"{name}.candidate", rec=FileRef(f".{name}.candidate/rec.onnx"), status="candidate")
    register(settings.model_dir, trial)
    try:
        figures = gate(settings, (args.base, trial.name), [Path(p) for p in args.gate.split(",")], args.gate_lines)
    finally:
        unregister(settings.model_dir, trial.name)
    losses = {s: f[trial.name]["cer"] - f[args.base]["cer"] for s, f in figures.items()}
    report = {"name": name, "method": args.method, "figures": figures, "cer_loss": losses,
              "size_mb": {"fp32": base.path(base.rec).stat().st_size / 1e6, "int8": (folder / "rec.onnx").stat().st_size / 1e6}}
    print(json.dumps(report, indent=1))
    if args.json:
        args.json.write_text(json.dumps(report, indent=1))
    if max(losses.values()) > args.max_cer_loss:
        shutil.rmtree(folder, ignore_errors=True)
        print(f"not registered: CER loss {max(losses.values()):.4f} > {args.max_cer_loss}", file=sys.stderr)
        return 1
    shutil.rmtree(final, ignore_errors=True)
    os.replace(folder, final)
    register(settings.model_dir, spec)
    print(f"registered {name} in {settings.model_dir}/manifest.json", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
