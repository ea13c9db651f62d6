"""The backend accuracy gate: a backend and precision may be chosen by ``OCR_BACKEND=auto`` only
if it reads every dev set within ``TOLERANCE`` CER of ONNX Runtime FP32 (line sets: CER; page
sets: gt-region CER, as in docs/BENCHMARKS.md).

    .venv/bin/python -m bench.backend_gate                         # openvino:bf16, print only
    .venv/bin/python -m bench.backend_gate --candidate openvino:bf16 --write

Both run on the same images in one process, the reference first, with the deployment's other
``OCR_*`` settings; ``--write`` records the figures in ``worker/backend_gates.json``, which
``worker.backend_choice`` reads at worker start (the pass/fail is recomputed from the figures,
so a hand-edited verdict cannot slip through).
"""

from __future__ import annotations

import argparse
import json
from datetime import date
from pathlib import Path

from bench.accuracy import EVAL
from shared.settings import Settings
from worker.backend_choice import GATES_FILE, REFERENCE, fingerprint, gate_passed
from worker.model_loading import model_files
from worker.offline.evaluation import evaluate_lines, evaluate_pages, line_items, page_items
from worker.pipeline import OcrPipeline

TABLE = Path(__file__).resolve().parent.parent / "worker" / GATES_FILE
TOLERANCE = 0.002
SETS = {  # dev set -> (mode, labels upper-cased: ../shared/eval/README.md)
    "uw3_lines": ("line", False), "omnidocbench_zh_lines": ("line", False), "sroie_receipts": ("page", True),
    "omnidocbench_pages": ("page", False), "funsd_forms": ("page", False), "tapuscorpus_fr": ("page", False),
}
BATCH = 8


def cer(pipeline: OcrPipeline, name: str) -> float:
    """The gate's figure for one dev set: CER of a line set, gt-region CER of a page set."""
    mode, upper = SETS[name]
    if mode == "line":
        return evaluate_lines(pipeline, line_items(EVAL / name), BATCH, upper)["cer"]
    return evaluate_pages(pipeline, page_items(EVAL / name), BATCH, upper)["cer_gt_region"]


def measure(settings: Settings, model: str, label: str) -> dict[str, float]:
    backend, _, precision = label.partition(":")
    pipeline = OcrPipeline.load(model, settings.replace(backend=backend, precision=precision))
    if pipeline.model.choice.label != label:
        raise SystemExit(f"{label} is not available here: it loads as {pipeline.model.choice.label}")
    figures = {}
    for name in SETS:
        figures[name] = round(cer(pipeline, name), 5)
        print(f"{label:18} {name:24} {figures[name]:.4f}", flush=True)
    return figures


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.backend_gate", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--candidate", default="openvino:bf16", help="BACKEND:PRECISION to gate")
    parser.add_argument("--model", help="model version (default: OCR_DEFAULT_MODEL)")
    parser.add_argument("--machine", default="", help="where it ran, for the record")
    parser.add_argument("--write", action="store_true", help=f"record the figures in worker/{GATES_FILE}")
    args = parser.parse_args(argv)
    settings = Settings.from_env()
    model = args.model or settings.default_model
    reference = measure(settings, model, REFERENCE)
    candidate = measure(settings, model, args.candidate)
    table = json.loads(TABLE.read_text("utf-8")) if TABLE.is_file() else {}
    table.update({"tolerance": TOLERANCE, "reference": REFERENCE, "sets": list(SETS)})
    entry = {"fingerprint": fingerprint(model_files(model, settings.model_dir)),
             "sets": {name: {"cer": candidate[name], "reference": reference[name]} for name in SETS}}
    table.setdefault("models", {}).setdefault(model, {})[args.candidate] = entry
    table.setdefault("measured", {})[f"{model} {args.candidate}"] = {"date": date.today().isoformat(),
                                                                     "machine": args.machine}
    passed = gate_passed(table, model, args.candidate, entry["fingerprint"])
    for name in SETS:
        print(f"{name:24} {reference[name]:.4f} -> {candidate[name]:.4f} ({candidate[name] - reference[name]:+.4f})")
    print(f"{model} {args.candidate}: {'PASSED' if passed else 'FAILED'} (tolerance +{TOLERANCE})")
    if args.write:
        TABLE.write_text(json.dumps(table, indent=2) + "\n", "utf-8")
    return 0 if passed else 1


if __name__ == "__main__":
    raise SystemExit(main())
