"""Where an OpenVINO page worker's memory goes: resident memory after load, warm-up and each
batch of 8 pages, and the detector alone compiled for any input shape (as the worker compiles
it) against compiled for one fixed shape.

    .venv/bin/python -m bench.openvino_memory [--set sroie_receipts] [--precision fp32|bf16]

Each measurement runs in a child process of its own, so one's memory never counts in another's.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time

import numpy as np

from bench.accuracy import EVAL
from shared.settings import Settings
from worker.offline.evaluation import page_items
from worker.pipeline import OcrPipeline, PageTask
from worker.preprocess import decode_image
from worker.warm_up import warm_up

PAGE_SHAPES = ((1600, 1184), (1600, 800), (1248, 1600))  # A4 portrait, a narrow receipt, landscape


def rss_mb() -> tuple[int, int]:
    """(resident now, peak resident) of this process, in MB."""
    fields = dict(line.split(":", 1) for line in open("/proc/self/status", encoding="ascii"))
    return int(fields["VmRSS"].split()[0]) // 1024, int(fields["VmHWM"].split()[0]) // 1024


def page_worker(set_name: str, precision: str) -> dict:
    """A page worker's pipeline on OpenVINO, read over the set in batches of 8."""
    settings = Settings(intra_op_threads=2, backend="openvino", precision=precision)
    pipeline = OcrPipeline.load(settings.default_model, settings)
    steps = {"loaded": rss_mb()}
    warm_up(pipeline, settings.warm_up_width)
    steps["warmed up"] = rss_mb()
    items = page_items(EVAL / set_name)
    start = time.perf_counter()
    for first in range(0, len(items), 8):
        pipeline.run([PageTask(decode_image(item[0].read_bytes(), settings), "page", "") for item in items[first:first + 8]])
        steps[f"after batch {first // 8 + 1}"] = rss_mb()
    return {"steps": steps, "seconds": round(time.perf_counter() - start, 1), "label": pipeline.model.choice.label}


def detector(static: bool, precision: str) -> dict:
    """The detector alone on each of ``PAGE_SHAPES`` (twice: the second call is the one timed):
    one model for any shape, or (``static``) one model compiled per shape, all kept."""
    import openvino as ov

    from worker.model_loading import model_files

    core, path = ov.Core(), model_files(Settings().default_model)[0]
    config = {"INFERENCE_NUM_THREADS": 2, "NUM_STREAMS": 1, "PERFORMANCE_HINT": "LATENCY",
              "INFERENCE_PRECISION_HINT": "bf16" if precision == "bf16" else "f32"}
    kept, steps = [], {"start": rss_mb()}
    request = None if static else core.compile_model(core.read_model(str(path)), "CPU", config).create_infer_request()
    for height, width in PAGE_SHAPES:
        began = time.perf_counter()
        if static:
            model = core.read_model(str(path))
            model.reshape([1, 3, height, width])
            compiled = core.compile_model(model, "CPU", config)
            kept.append(compiled)
            request = compiled.create_infer_request()
        page = np.zeros((1, 3, height, width), np.float32)
        request.infer([page])
        first = time.perf_counter() - began
        began = time.perf_counter()
        request.infer([page])
        steps[f"{height}x{width}"] = {"rss": rss_mb(), "first_s": round(first, 2),
                                      "then_s": round(time.perf_counter() - began, 2)}
    return steps


def child(*args: str) -> dict:
    done = subprocess.run([sys.executable, "-m", "bench.openvino_memory", "--child", *args], capture_output=True,
                          text=True, timeout=1800, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--set", default="sroie_receipts")
    parser.add_argument("--precision", default="fp32", choices=("fp32", "bf16"))
    parser.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        kind, *rest = args.child
        out = page_worker(rest[0], rest[1]) if kind == "worker" else detector(kind == "static", rest[0])
        print(json.dumps(out))
        return
    worker = child("worker", args.set, args.precision)
    print(f"page worker on {worker['label']}, {args.set}, {worker['seconds']} s reading:")
    print("| step | resident MB | peak MB |\n|---|---|---|")
    for step, (now, peak) in worker["steps"].items():
        print(f"| {step} | {now} | {peak} |")
    print("\ndetector alone (resident MB after each shape; seconds: first call, then a second call):")
    print("| shape | any shape (as the worker) | one model per shape, all kept |\n|---|---|---|")
    dynamic, static = child("dynamic", args.precision), child("static", args.precision)
    print(f"| start | {dynamic['start'][0]} | {static['start'][0]} |")
    for shape in (f"{h}x{w}" for h, w in PAGE_SHAPES):
        cells = [f"{d['rss'][0]} MB, {d['first_s']} / {d['then_s']} s" for d in (dynamic[shape], static[shape])]
        print(f"| {shape} | {cells[0]} | {cells[1]} |")


if __name__ == "__main__":
    main()
